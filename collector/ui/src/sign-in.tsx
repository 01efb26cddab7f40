/**
 * Who the viewer is signed in as, and the page that signs a person in: "Sign in with <issuer>"
 * for each issuer the collector trusts (OIDC, oidc.ts) and a pasted reader token. `useSignIn`
 * completes an issuer's redirect back, renews an OIDC token before it expires when the issuer gave
 * a refresh token, and otherwise ends the sign-in then, asking the person to sign in again.
 */
import { useEffect, useState } from 'preact/hooks';
import { pastedToken, type TokenSource } from './api.js';
import {
  beginSignIn,
  completeSignIn,
  isSignInReturn,
  oidcToken,
  renew,
  signInIssuers,
  type ViewerIssuer,
} from './oidc.js';

/** Renew this long before the token may no longer be sent, so no request meets it expired. */
const RENEW_AHEAD_MS = 15_000;

export function SignIn({
  message,
  issuers,
  onSignIn,
}: {
  message: string;
  issuers: readonly ViewerIssuer[];
  onSignIn: () => void;
}) {
  const [token, setToken] = useState('');
  const [leaving, setLeaving] = useState('');
  return (
    <main class="signin">
      <h1>Byline trail</h1>
      {message ? (
        <p class="error" role="alert">
          {message}
        </p>
      ) : null}
      {issuers.length > 0 ? (
        <section aria-label="Sign in with your identity provider" class="issuers">
          {issuers.map((i) => (
            <button
              type="button"
              class="issuer"
              disabled={leaving !== ''}
              onClick={() => {
                setLeaving(i.issuer);
                beginSignIn(i).catch((e: Error) => {
                  setLeaving('');
                  alert(`Cannot reach ${i.issuer}: ${e.message}`);
                });
              }}
            >
              Sign in with {i.issuer}
            </button>
          ))}
          <p class="hint">
            Your identity provider's ID token is kept in this tab's session storage and sent only to this collector.
          </p>
        </section>
      ) : null}
      <form
        aria-label="Sign in with a reader token"
        onSubmit={(e) => {
          e.preventDefault();
          if (!token.trim()) return;
          oidcToken.signOut();
          pastedToken.set(token);
          onSignIn();
        }}
      >
        <label for="token">Reader token</label>
        <input
          id="token"
          type="password"
          autocomplete="off"
          value={token}
          onInput={(e) => setToken((e.target as HTMLInputElement).value)}
        />
        <p class="hint">
          Kept in this tab's session storage only, sent to this collector as a bearer token, never put in a link.
        </p>
        <button type="submit">Sign in</button>
      </form>
    </main>
  );
}

/** The token to send: a valid OIDC sign-in, else a pasted token, else none. */
function currentAuth(): TokenSource | null {
  if (oidcToken.token() !== null) return oidcToken;
  if (!oidcToken.active() && pastedToken.token() !== null) return pastedToken;
  return null;
}

/** Why a person who signed in with OIDC is asked to sign in again. */
function expiredMessage(): string {
  const who = oidcToken.who();
  return who
    ? `Your sign-in as ${who.name} with ${who.issuer} has expired. Sign in again to go on.`
    : 'Your sign-in has expired. Sign in again to go on.';
}

export interface SignInState {
  /** The token source to call the collector with; null: show the sign-in page. */
  auth: TokenSource | null;
  /** The issuer sent the browser back and the code is being traded for tokens. */
  returning: boolean;
  message: string;
  issuers: ViewerIssuer[];
  /** Who, for the header (OIDC sign-ins only). */
  who: { name: string; issuer: string } | null;
  signedIn(): void;
  signOut(): void;
  /** The collector answered 401: sign out, saying why (an expired sign-in, or the collector's reason). */
  refused(message: string): void;
}

export function useSignIn(onReturn: () => void): SignInState {
  const [auth, setAuth] = useState<TokenSource | null>(() => (isSignInReturn() ? null : currentAuth()));
  const [returning, setReturning] = useState(isSignInReturn);
  const [message, setMessage] = useState(() =>
    oidcToken.active() && currentAuth() === null && !isSignInReturn() ? expiredMessage() : '',
  );
  const [issuers, setIssuers] = useState<ViewerIssuer[]>([]);

  useEffect(() => {
    void signInIssuers().then(setIssuers);
    if (!returning) return;
    completeSignIn().then(
      () => {
        onReturn();
        setMessage('');
        setAuth(currentAuth());
        setReturning(false);
      },
      (e: Error) => {
        setMessage(`Sign-in did not complete: ${e.message}`);
        setReturning(false);
      },
    );
  }, []);

  // Shortly before an OIDC token expires it is renewed (a refresh token) or the person is asked
  // to sign in again. `renewals` re-arms the timer for the renewed token.
  const [renewals, setRenewals] = useState(0);
  useEffect(() => {
    if (auth !== oidcToken) return;
    let live = true;
    const timer = setTimeout(
      () => {
        void renew().then((renewed) => {
          if (!live) return;
          if (renewed) setRenewals((n) => n + 1);
          else {
            setMessage(expiredMessage());
            setAuth(null);
          }
        });
      },
      Math.max(0, oidcToken.remainingMs() - RENEW_AHEAD_MS),
    );
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [auth, renewals]);

  const signOut = () => {
    oidcToken.signOut();
    pastedToken.signOut();
    setAuth(null);
  };
  return {
    auth,
    returning,
    message,
    issuers,
    who: auth === oidcToken ? oidcToken.who() : null,
    signedIn: () => {
      setMessage('');
      setAuth(currentAuth());
    },
    signOut,
    refused: (reason) => {
      const expired = auth === oidcToken && oidcToken.token() === null;
      signOut();
      setMessage(expired ? expiredMessage() : `The collector refused the token: ${reason}`);
    },
  };
}
