/**
 * OIDC sign-in for the viewer: authorization code + PKCE with openid-client, as a public client
 * whose redirect is this page (`<collector>/ui/`). The collector lists the issuers it trusts for
 * readers in `sign-in.json`; the browser talks to the issuer directly (discovery and the token
 * endpoint; the page's CSP allows exactly those origins). The ID token is the reader's bearer token,
 * kept in this tab's session storage with its expiry; the collector verifies it on every call.
 * Before it expires the viewer renews it with the refresh token when the issuer gave one (`renew`);
 * otherwise, or when that fails, it asks the person to sign in again. An expired token is never sent.
 */
import * as client from 'openid-client';
import type { TokenSource } from './api.js';

export interface ViewerIssuer {
  issuer: string;
  clientId: string;
  scopes: string;
}

interface Session {
  issuer: string;
  clientId: string;
  scopes: string;
  idToken: string;
  /** Kept only when the issuer gave one (a client allowed the refresh_token grant). */
  refreshToken?: string;
  expiresAtMs: number;
  /** What the person is called (email, preferred_username or subject), for the header. */
  name: string;
  subject: string;
}

/** What a sign-in in flight needs back when the issuer redirects here. */
interface Pending extends ViewerIssuer {
  verifier: string;
  state: string;
  nonce: string;
  /** The viewer URL (filters included) to return to. */
  returnTo: string;
}

const SESSION = 'byline.oidcSession';
const PENDING = 'byline.oidcPending';
/** Tokens are not sent in their last seconds: the collector would refuse them on the way. */
const MARGIN_MS = 5_000;

/** The issuers this collector offers (none when it has no `auth.oidc` viewer client). */
export async function signInIssuers(): Promise<ViewerIssuer[]> {
  try {
    const res = await fetch('./sign-in.json', { cache: 'no-store' });
    if (!res.ok) return [];
    const body = (await res.json()) as { issuers?: ViewerIssuer[] };
    return Array.isArray(body.issuers) ? body.issuers : [];
  } catch {
    return [];
  }
}

function session(): Session | null {
  try {
    const s = JSON.parse(sessionStorage.getItem(SESSION) ?? 'null') as Session | null;
    return s && typeof s.idToken === 'string' && typeof s.expiresAtMs === 'number' ? s : null;
  } catch {
    return null;
  }
}

const redirectUri = () => `${location.origin}${location.pathname}`;

const discover = (i: ViewerIssuer) => client.discovery(new URL(i.issuer), i.clientId, undefined, client.None());

/** Sends the browser to the issuer's sign-in page; it comes back to this page with a code. */
export async function beginSignIn(issuer: ViewerIssuer): Promise<void> {
  const config = await discover(issuer);
  const verifier = client.randomPKCECodeVerifier();
  const pending: Pending = {
    ...issuer,
    verifier,
    state: client.randomState(),
    nonce: client.randomNonce(),
    returnTo: location.search,
  };
  sessionStorage.setItem(PENDING, JSON.stringify(pending));
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri(),
    scope: issuer.scopes,
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state: pending.state,
    nonce: pending.nonce,
  });
  location.assign(url.href);
}

/** Whether this page load is the issuer's redirect back (a code or an error for a sign-in we started). */
export function isSignInReturn(): boolean {
  const q = new URLSearchParams(location.search);
  return sessionStorage.getItem(PENDING) !== null && q.has('state') && (q.has('code') || q.has('error'));
}

/**
 * Trades the code for tokens (PKCE verifier, state and nonce checked by openid-client), keeps the
 * ID token, and puts the URL back as it was before sign-in. Throws with the issuer's reason.
 */
export async function completeSignIn(): Promise<void> {
  const pending = JSON.parse(sessionStorage.getItem(PENDING)!) as Pending;
  sessionStorage.removeItem(PENDING);
  const back = new URL(location.href);
  // Code and state leave the address bar (and history) whatever happens next.
  history.replaceState(null, '', `${location.pathname}${pending.returnTo}`);
  const config = await discover(pending);
  let tokens: Awaited<ReturnType<typeof client.authorizationCodeGrant>>;
  try {
    tokens = await client.authorizationCodeGrant(config, back, {
      pkceCodeVerifier: pending.verifier,
      expectedState: pending.state,
      expectedNonce: pending.nonce,
      idTokenExpected: true,
    });
  } catch (e) {
    // The issuer's own words when it sent an error back (the person cancelled, a client misconfigured).
    const { error, error_description: why } = e as { error?: unknown; error_description?: unknown };
    if (typeof error === 'string')
      throw new Error(`${pending.issuer} answered ${error}${why ? ` (${String(why)})` : ''}`);
    throw e;
  }
  keep({ issuer: pending.issuer, clientId: pending.clientId, scopes: pending.scopes }, tokens);
}

type Tokens = client.TokenEndpointResponse & client.TokenEndpointResponseHelpers;

function keep(issuer: ViewerIssuer, tokens: Tokens, previous?: Session): void {
  const claims = tokens.claims();
  if (!tokens.id_token || !claims) throw new Error(`${issuer.issuer} returned no ID token`);
  // A renewal is for the same person (openid-client has checked its issuer and audience).
  if (previous && claims.sub !== previous.subject) throw new Error(`${issuer.issuer} renewed another subject`);
  const name = [claims.email, claims.preferred_username, claims.sub].find((c) => typeof c === 'string' && c !== '');
  const refreshToken = tokens.refresh_token ?? previous?.refreshToken;
  const kept: Session = {
    ...issuer,
    idToken: tokens.id_token,
    expiresAtMs: claims.exp * 1000,
    name: String(name),
    subject: claims.sub,
    ...(refreshToken ? { refreshToken } : {}),
  };
  sessionStorage.setItem(SESSION, JSON.stringify(kept));
}

/**
 * A fresh ID token with the refresh token, without leaving the page. False when there is none or
 * the issuer refuses it (revoked, its session ended): the person is then asked to sign in again.
 */
export async function renew(): Promise<boolean> {
  const s = session();
  if (!s?.refreshToken) return false;
  try {
    const config = await discover(s);
    const tokens = await client.refreshTokenGrant(config, s.refreshToken);
    keep(s, tokens, s);
    return true;
  } catch {
    const { refreshToken: _, ...without } = s;
    sessionStorage.setItem(SESSION, JSON.stringify(without));
    return false;
  }
}

export const oidcToken = {
  /** The ID token while it is valid; null once it has (nearly) expired. */
  token(): string | null {
    const s = session();
    return s && s.expiresAtMs - MARGIN_MS > Date.now() ? s.idToken : null;
  },
  signOut(): void {
    sessionStorage.removeItem(SESSION);
  },
  /** Signed in with OIDC at all (valid or not). */
  active: (): boolean => session() !== null,
  /** Who, and with which issuer, for the header. */
  who: (): { name: string; issuer: string } | null => {
    const s = session();
    return s ? { name: s.name, issuer: s.issuer } : null;
  },
  /** Milliseconds until the token may no longer be sent (≤ 0: now). */
  remainingMs(): number {
    const s = session();
    return s ? s.expiresAtMs - MARGIN_MS - Date.now() : 0;
  },
} satisfies TokenSource & Record<string, unknown>;
