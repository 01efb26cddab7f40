/**
 * Verifies an OIDC token from one of the trusted issuers: an ID token, or a JWT access token for a
 * configured audience. The gateway gets it as a client's password, the collector as a trail
 * reader's bearer token; both verify it exactly the same way. Discovery through
 * openid-client, keys and signatures through jose; nothing hand-written about JWTs.
 *
 * Caching, so that no connection costs a round trip to the issuer: each issuer's discovery
 * document is fetched once (retried at most every `retryMs` while it fails, so an issuer that is
 * down at start is picked up when it comes back); its JWKS is jose's remote key set, fetched once,
 * refetched when a token names an unknown `kid` (at most once per `jwksCooldownMs`) and when the
 * cached set is older than `jwksMaxAgeMs` — so the cached keys keep verifying while the issuer is
 * away until they expire, and after that no token is accepted until it answers again.
 */
import { readFileSync } from 'node:fs';
import {
  createRemoteJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  errors,
  customFetch as joseFetch,
  jwtVerify,
} from 'jose';
import * as client from 'openid-client';
import { DEFAULT_CLOCK_TOLERANCE_SECONDS, type OidcIssuerConfig, TOKEN_ALGORITHMS } from '../gateway-config.js';
import { caFetch, type FetchLike } from './ca-fetch.js';

/** What the verifier established about a token (everything here was checked, nothing is raw). */
export interface VerifiedClaims {
  issuer: string;
  subject: string;
  /** The email claim, only when the issuer vouches for it (email_verified, or trusted by config). */
  email: string | null;
  groups: readonly string[];
}

export interface VerifiedToken {
  claims: VerifiedClaims;
  /** The configured name claim's value (email, preferred_username or sub); the subject when it has none. */
  name: string;
  /** False when `name` is the subject standing in for a missing (or unverified) name claim. */
  nameFromClaim: boolean;
  jti: string | null;
  sid: string | null;
  /** The token's exp, in ms since the epoch. */
  expiresAtMs: number;
}

export type TokenRefusal = 'malformed' | 'untrusted-issuer' | 'issuer-unavailable' | 'invalid';

/** Why a token was not accepted; the message names the problem and never contains the token. */
export class OidcTokenError extends Error {
  constructor(
    readonly reason: TokenRefusal,
    message: string,
  ) {
    super(message);
    this.name = 'OidcTokenError';
  }
}

export interface VerifierOptions {
  clockToleranceSeconds?: number;
  jwksCooldownMs?: number;
  jwksMaxAgeMs?: number;
  /** Minimum time between two discovery attempts of an issuer that has not answered yet. */
  retryMs?: number;
  /** Read the CA file named by an issuer (injected for tests; the file system by default). */
  readCa?: (path: string) => Buffer;
  /** Who verifies, in refusals: "this gateway" (default), "this collector". */
  service?: string;
  /** What carried the token, in refusals: "the password" (default), "the bearer token". */
  carrier?: string;
}

const ACCEPTABLE = new Set<string>(TOKEN_ALGORITHMS);

interface Discovered {
  algorithms: string[];
  jwks: ReturnType<typeof createRemoteJWKSet>;
}

/** One trusted issuer: its discovery (once), its key set (jose's cache), its verification rules. */
class TrustedIssuer {
  private discovered: Discovered | undefined;
  private pending: Promise<Discovered> | undefined;
  private lastFailure: { at: number; message: string } | undefined;
  private readonly fetch: FetchLike | undefined;

  constructor(
    readonly config: OidcIssuerConfig,
    private readonly options: Required<VerifierOptions>,
  ) {
    let ca: Buffer | undefined;
    try {
      ca = config.caFile === undefined ? undefined : options.readCa(config.caFile);
    } catch (e) {
      throw new Error(`issuer "${config.issuer}": caFile ${config.caFile} cannot be read: ${(e as Error).message}`);
    }
    const bearer = config.bearerTokenFile === undefined ? {} : { bearerTokenFile: config.bearerTokenFile };
    this.fetch = ca === undefined && config.bearerTokenFile === undefined ? undefined : caFetch(ca, bearer);
  }

  /** Discovery, once; concurrent callers share one attempt, and failures are retried only after retryMs. */
  ready(): Promise<Discovered> {
    if (this.discovered) return Promise.resolve(this.discovered);
    if (this.pending) return this.pending;
    const failed = this.lastFailure;
    if (failed && Date.now() - failed.at < this.options.retryMs) {
      return Promise.reject(new OidcTokenError('issuer-unavailable', failed.message));
    }
    this.pending = this.discover().then(
      (d) => {
        this.discovered = d;
        this.lastFailure = undefined;
        this.pending = undefined;
        return d;
      },
      (e: unknown) => {
        const message = `cannot verify tokens of issuer "${this.config.issuer}": discovery failed (${reason(e)})`;
        this.lastFailure = { at: Date.now(), message };
        this.pending = undefined;
        throw new OidcTokenError('issuer-unavailable', message);
      },
    );
    return this.pending;
  }

  private async discover(): Promise<Discovered> {
    const url = new URL(
      this.config.discoveryUrl ?? `${this.config.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`,
    );
    const options: Parameters<typeof client.discovery>[4] = { timeout: 10 };
    const fetch = this.fetch;
    // openid-client's body type is narrower than the DOM's RequestInit (seen when a browser build type-checks this).
    if (fetch) options[client.customFetch] = (url, init) => fetch(url, init as RequestInit);
    const configuration = await client.discovery(url, this.config.audiences[0]!, undefined, undefined, options);
    const metadata = configuration.serverMetadata();
    // openid-client checks the issuer only when it builds the well-known URL itself; check it always.
    if (metadata.issuer !== this.config.issuer) {
      throw new Error(`the discovery document names issuer "${metadata.issuer}", not "${this.config.issuer}"`);
    }
    if (!metadata.jwks_uri) throw new Error('the discovery document has no jwks_uri');
    // Keys fetched in clear could be swapped on the way: the verification would prove nothing.
    if (new URL(metadata.jwks_uri).protocol !== 'https:') {
      throw new Error(`the discovery document's jwks_uri ${metadata.jwks_uri} is not https`);
    }
    const advertised = (metadata.id_token_signing_alg_values_supported ?? []).filter((a) => ACCEPTABLE.has(a));
    const algorithms: string[] = this.config.algorithms ?? (advertised.length > 0 ? advertised : ['RS256']);
    const jwksOptions: Parameters<typeof createRemoteJWKSet>[1] = {
      cooldownDuration: this.options.jwksCooldownMs,
      cacheMaxAge: this.options.jwksMaxAgeMs,
    };
    if (this.fetch) jwksOptions[joseFetch] = this.fetch;
    return { algorithms, jwks: createRemoteJWKSet(new URL(metadata.jwks_uri), jwksOptions) };
  }

  async verify(token: string): Promise<VerifiedToken> {
    const { algorithms, jwks } = await this.ready();
    let payload: Awaited<ReturnType<typeof jwtVerify>>['payload'];
    try {
      ({ payload } = await jwtVerify(token, jwks, {
        issuer: this.config.issuer,
        audience: this.config.audiences,
        algorithms,
        clockTolerance: this.options.clockToleranceSeconds,
        requiredClaims: ['sub', 'exp', 'aud'],
      }));
    } catch (e) {
      throw refusal(this.config.issuer, this.options.service, e);
    }
    const subject = payload.sub!;
    const emailClaim = typeof payload.email === 'string' ? payload.email : null;
    const vouched = this.config.requireVerifiedEmail === false || payload.email_verified === true;
    const email = vouched ? emailClaim : null;
    const rawGroups = payload[this.config.groupsClaim ?? 'groups'];
    const groups = Array.isArray(rawGroups) ? rawGroups.filter((g): g is string => typeof g === 'string') : [];
    const nameClaim = this.config.nameClaim ?? 'email';
    const named = nameClaim === 'email' ? email : nameClaim === 'sub' ? subject : payload.preferred_username;
    return {
      claims: { issuer: this.config.issuer, subject, email, groups },
      name: typeof named === 'string' && named !== '' ? named : subject,
      nameFromClaim: typeof named === 'string' && named !== '',
      jti: typeof payload.jti === 'string' ? payload.jti : null,
      sid: typeof payload.sid === 'string' ? payload.sid : null,
      expiresAtMs: (payload.exp as number) * 1000,
    };
  }
}

/** An error's message with its causes (openid-client wraps the real reason, e.g. a TLS failure). */
function reason(e: unknown): string {
  const parts: string[] = [];
  for (let x = e, depth = 0; x instanceof Error && depth < 4; x = x.cause, depth++) {
    if (!parts.includes(x.message)) parts.push(x.message);
  }
  return parts.join(': ') || String(e);
}

/** jose's errors, turned into a sentence for the client and the audit event. */
function refusal(issuer: string, service: string, e: unknown): OidcTokenError {
  const from = `token from issuer "${issuer}"`;
  if (e instanceof errors.JWTExpired) return new OidcTokenError('invalid', `the ${from} has expired`);
  if (e instanceof errors.JWTClaimValidationFailed) {
    if (e.claim === 'nbf') return new OidcTokenError('invalid', `the ${from} is not valid yet (nbf)`);
    if (e.claim === 'aud') return new OidcTokenError('invalid', `the ${from} is not meant for ${service} (aud)`);
    return new OidcTokenError('invalid', `the ${from} has an unacceptable "${e.claim}" claim (${e.reason})`);
  }
  if (e instanceof errors.JOSEAlgNotAllowed)
    return new OidcTokenError('invalid', `the ${from} uses a signature algorithm this issuer does not allow`);
  if (e instanceof errors.JWSSignatureVerificationFailed)
    return new OidcTokenError('invalid', `the ${from} has a bad signature`);
  if (e instanceof errors.JWKSNoMatchingKey)
    return new OidcTokenError('invalid', `the ${from} is signed by a key the issuer does not publish`);
  if (e instanceof errors.JWKSTimeout || (e instanceof Error && !(e instanceof errors.JOSEError))) {
    return new OidcTokenError(
      'issuer-unavailable',
      `cannot verify the ${from}: its keys could not be fetched (${reason(e)})`,
    );
  }
  return new OidcTokenError('invalid', `the ${from} is not acceptable (${(e as Error).message})`);
}

export class OidcVerifier {
  private readonly issuers = new Map<string, TrustedIssuer>();
  private readonly carrier: string;

  constructor(issuers: readonly OidcIssuerConfig[], options: VerifierOptions = {}) {
    const resolved = {
      clockToleranceSeconds: options.clockToleranceSeconds ?? DEFAULT_CLOCK_TOLERANCE_SECONDS,
      jwksCooldownMs: options.jwksCooldownMs ?? 30_000,
      jwksMaxAgeMs: options.jwksMaxAgeMs ?? 600_000,
      retryMs: options.retryMs ?? 5_000,
      readCa: options.readCa ?? ((path: string) => readFileSync(path)),
      service: options.service ?? 'this gateway',
      carrier: options.carrier ?? 'the password',
    };
    this.carrier = resolved.carrier;
    for (const config of issuers) this.issuers.set(config.issuer, new TrustedIssuer(config, resolved));
  }

  /** Discovers every issuer now; an issuer that is down is reported, not fatal (it is retried on use). */
  async start(): Promise<{ issuer: string; error: string | null }[]> {
    return Promise.all(
      [...this.issuers.values()].map((i) =>
        i.ready().then(
          () => ({ issuer: i.config.issuer, error: null }),
          (e: Error) => ({ issuer: i.config.issuer, error: e.message }),
        ),
      ),
    );
  }

  async verify(token: string): Promise<VerifiedToken> {
    let iss: unknown;
    try {
      const header = decodeProtectedHeader(token);
      if (header.alg === undefined || header.alg === 'none') throw new Error('unsigned');
      iss = decodeJwt(token).iss;
    } catch {
      throw new OidcTokenError(
        'malformed',
        `${this.carrier} is not a signed JWT (send an OIDC ID token or JWT access token)`,
      );
    }
    const issuer = typeof iss === 'string' ? this.issuers.get(iss) : undefined;
    if (!issuer) {
      throw new OidcTokenError(
        'untrusted-issuer',
        `tokens from issuer ${JSON.stringify(String(iss)).slice(0, 200)} are not trusted here`,
      );
    }
    return issuer.verify(token);
  }
}
