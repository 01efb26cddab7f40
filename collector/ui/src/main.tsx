/** The trail viewer's entry: sign-in, the URL as the state, and the view it names. */
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import './viewer.css';
import { readState, type ViewState, writeState } from './filters.js';
import { timeZoneLabel } from './format.js';
import { SignIn, useSignIn } from './sign-in.js';
import { ApprovalView, IdentityView, SearchView, SessionView, type ViewProps } from './views.js';

const VIEWS = { search: SearchView, session: SessionView, identity: IdentityView, approval: ApprovalView };

function App() {
  const [state, setState] = useState<ViewState>(() => readState(location.search));
  // Back from the issuer: the URL is the one before sign-in again.
  const signIn = useSignIn(() => setState(readState(location.search)));
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

  if (signIn.returning) {
    return (
      <main class="signin">
        <h1>Byline trail</h1>
        <p role="status">Signing in…</p>
      </main>
    );
  }
  if (signIn.auth === null) {
    return <SignIn message={signIn.message} issuers={signIn.issuers} onSignIn={signIn.signedIn} />;
  }
  const navigate = (next: ViewState) => {
    history.pushState(null, '', writeState(next) || location.pathname);
    setState(next);
  };
  const props: ViewProps = { auth: signIn.auth, state, zone, navigate, onAuthError: signIn.refused };
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
        {signIn.who ? (
          <span class="who" title={signIn.who.issuer}>
            Signed in as {signIn.who.name}
          </span>
        ) : null}
        <button type="button" onClick={signIn.signOut}>
          Sign out
        </button>
      </header>
      <View key={writeState(state)} {...props} />
    </>
  );
}

render(<App />, document.getElementById('app')!);
