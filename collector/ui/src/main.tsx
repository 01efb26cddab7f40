/** The trail viewer's entry: sign-in, the URL as the state, and the view it names. */
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import './viewer.css';
import { pastedToken, type TokenSource } from './api.js';
import { readState, type ViewState, writeState } from './filters.js';
import { timeZoneLabel } from './format.js';
import { beginSignIn, completeSignIn, isSignInReturn, oidcToken, signInIssuers, type ViewerIssuer } from './oidc.js';
import { ApprovalView, IdentityView, SearchView, SessionView, type ViewProps } from './views.js';

function SignIn({
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

const VIEWS = { search: SearchView, session: SessionView, identity: IdentityView, approval: ApprovalView };

function App() {
  const [state, setState] = useState<ViewState>(() => readState(location.search));
  const [auth, setAuth] = useState<TokenSource | null>(() => (isSignInReturn() ? null : currentAuth()));
  const [returning, setReturning] = useState(isSignInReturn);
  const [authMessage, setAuthMessage] = useState(() =>
    oidcToken.active() && currentAuth() === null && !isSignInReturn() ? expiredMessage() : '',
  );
  const [issuers, setIssuers] = useState<ViewerIssuer[]>([]);
  const zone = timeZoneLabel();

  useEffect(() => {
    void signInIssuers().then(setIssuers);
    if (!returning) return;
    completeSignIn().then(
      () => {
        setState(readState(location.search));
        setAuthMessage('');
        setAuth(currentAuth());
        setReturning(false);
      },
      (e: Error) => {
        setAuthMessage(`Sign-in did not complete: ${e.message}`);
        setReturning(false);
      },
    );
  }, []);

  // An OIDC sign-in ends when its token does: then the person is asked to sign in again.
  useEffect(() => {
    if (auth !== oidcToken) return;
    const timer = setTimeout(
      () => {
        setAuthMessage(expiredMessage());
        setAuth(null);
      },
      Math.max(0, oidcToken.remainingMs()),
    );
    return () => clearTimeout(timer);
  }, [auth]);

  useEffect(() => {
    const onPop = () => setState(readState(location.search));
    // Links inside the viewer change the view without reloading the page.
    const onClick = (e: MouseEvent) => {
      const a = (e.target as Element).closest?.('a');
      if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || a.target) return;
      const url = new URL(a.href);
      if (url.origin !== location.origin || url.pathname !== location.pathname) return;
      e.preventDefault();
      // A reader limited to a namespace stays in it from view to view.
      const next = readState(url.search);
      const namespace = readState(location.search).filters.namespace;
      if (namespace && !next.filters.namespace) next.filters.namespace = namespace;
      history.pushState(null, '', writeState(next) || location.pathname);
      setState(next);
      window.scrollTo(0, 0);
    };
    addEventListener('popstate', onPop);
    document.addEventListener('click', onClick);
    return () => {
      removeEventListener('popstate', onPop);
      document.removeEventListener('click', onClick);
    };
  }, []);

  if (returning) {
    return (
      <main class="signin">
        <h1>Byline trail</h1>
        <p role="status">Signing in…</p>
      </main>
    );
  }
  if (auth === null) {
    return (
      <SignIn
        message={authMessage}
        issuers={issuers}
        onSignIn={() => {
          setAuthMessage('');
          setAuth(currentAuth());
        }}
      />
    );
  }
  const navigate = (next: ViewState) => {
    history.pushState(null, '', writeState(next) || location.pathname);
    setState(next);
  };
  const who = auth === oidcToken ? oidcToken.who() : null;
  const signOut = () => {
    oidcToken.signOut();
    pastedToken.signOut();
    setAuth(null);
  };
  const props: ViewProps = {
    auth,
    state,
    zone,
    navigate,
    onAuthError: (message) => {
      const expired = auth === oidcToken && oidcToken.token() === null;
      signOut();
      setAuthMessage(expired ? expiredMessage() : `The collector refused the token: ${message}`);
    },
  };
  const View = VIEWS[state.view];
  return (
    <>
      <header>
        <a class="brand" href="./?">
          Byline trail
        </a>
        <nav aria-label="Views">
          <a href="./?" aria-current={state.view === 'search' ? 'page' : undefined}>
            Search
          </a>
        </nav>
        <span class="zone-label">Times in {zone}</span>
        {who ? (
          <span class="who" title={who.issuer}>
            Signed in as {who.name}
          </span>
        ) : null}
        <button type="button" onClick={signOut}>
          Sign out
        </button>
      </header>
      <View key={writeState(state)} {...props} />
    </>
  );
}

render(<App />, document.getElementById('app')!);
