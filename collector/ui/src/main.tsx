/** The trail viewer's entry: sign-in, the URL as the state, and the view it names. */
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import './viewer.css';
import { pastedToken } from './api.js';
import { readState, type ViewState, writeState } from './filters.js';
import { timeZoneLabel } from './format.js';
import { ApprovalView, IdentityView, SearchView, SessionView, type ViewProps } from './views.js';

function SignIn({ message, onSignIn }: { message: string; onSignIn: () => void }) {
  const [token, setToken] = useState('');
  return (
    <main class="signin">
      <h1>Byline trail</h1>
      <form
        aria-label="Sign in"
        onSubmit={(e) => {
          e.preventDefault();
          if (!token.trim()) return;
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
        {message ? (
          <p class="error" role="alert">
            {message}
          </p>
        ) : null}
        <button type="submit">Sign in</button>
      </form>
    </main>
  );
}

const VIEWS = { search: SearchView, session: SessionView, identity: IdentityView, approval: ApprovalView };

function App() {
  const [state, setState] = useState<ViewState>(() => readState(location.search));
  const [signedIn, setSignedIn] = useState(() => pastedToken.token() !== null);
  const [authMessage, setAuthMessage] = useState('');
  const zone = timeZoneLabel();

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

  if (!signedIn) {
    return (
      <SignIn
        message={authMessage}
        onSignIn={() => {
          setAuthMessage('');
          setSignedIn(true);
        }}
      />
    );
  }
  const navigate = (next: ViewState) => {
    history.pushState(null, '', writeState(next) || location.pathname);
    setState(next);
  };
  const props: ViewProps = {
    auth: pastedToken,
    state,
    zone,
    navigate,
    onAuthError: (message) => {
      pastedToken.signOut();
      setAuthMessage(`The collector refused the token: ${message}`);
      setSignedIn(false);
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
        <button
          type="button"
          onClick={() => {
            pastedToken.signOut();
            setSignedIn(false);
          }}
        >
          Sign out
        </button>
      </header>
      <View key={writeState(state)} {...props} />
    </>
  );
}

render(<App />, document.getElementById('app')!);
