/** The viewer's pages: search, a session, an identity, an approval; each loads its events and shows their chain status. */
import { useEffect, useState } from 'preact/hooks';
import {
  ApiError,
  loadEvents,
  MAX_ROWS,
  MAX_VERIFY_STREAMS,
  type TokenSource,
  type VerifyReport,
  verifyStreams,
} from './api.js';
import { type Row, sessionOrder, summarizeApproval, summarizeIdentity, toCsv, toJsonLines } from './events.js';
import {
  CLASSES,
  eventQuery,
  FILTERS,
  type FilterName,
  type Filters,
  IDENTITY_WINDOW_DAYS,
  instantToLocalInput,
  localInputToInstant,
  STATUSES,
  TYPES,
  type ViewState,
  writeState,
} from './filters.js';
import { formatDuration, formatTime, summary } from './format.js';
import { type Column, VirtualTable } from './table.js';

export const link = (state: ViewState) => `./${writeState(state) || '?'}`;
const to = (view: ViewState['view'], subject: string) => link({ view, subject, filters: {} });

const COL = {
  time: { title: 'Time', className: 'c-time', cell: (r) => formatTime(r.event.time), full: (r) => r.event.time },
  identity: {
    title: 'Identity',
    className: 'c-identity',
    cell: (r) => <a href={to('identity', r.event.identity.name)}>{r.event.identity.name}</a>,
    full: (r) => r.event.identity.name,
  },
  session: {
    title: 'Session',
    className: 'c-session',
    cell: (r) => <a href={to('session', r.event.session.id)}>{r.event.session.id.slice(0, 8)}</a>,
    full: (r) => r.event.session.id,
  },
  seq: { title: '#', className: 'c-seq', cell: (r) => String(r.event.session.seq) },
  route: { title: 'Route', className: 'c-route', cell: (r) => r.event.target.route },
  class: { title: 'Class', className: 'c-class', cell: (r) => r.event.statement?.class ?? '' },
  status: {
    title: 'Status',
    className: 'c-status',
    cell: (r) => <span class={`status s-${r.event.result?.status ?? 'none'}`}>{r.event.result?.status ?? ''}</span>,
  },
  rows: { title: 'Rows', className: 'c-rows', cell: (r) => (r.event.result?.rows ?? '').toString() },
  duration: { title: 'Duration', className: 'c-duration', cell: (r) => formatDuration(r.event.result?.durationUs) },
  statement: {
    title: 'Statement',
    className: 'c-statement',
    cell: (r) => summary(r.event),
    full: (r) => summary(r.event),
  },
  error: {
    title: 'Error',
    className: 'c-error',
    cell: (r) => r.event.result?.error ?? '',
    full: (r) => r.event.result?.error ?? '',
  },
  approval: {
    title: 'Approval',
    className: 'c-approval',
    cell: (r) => {
      const a = r.event.authz?.approval;
      return a ? <a href={to('approval', a.name)}>{a.name}</a> : '';
    },
  },
} satisfies Record<string, Column>;

const SEARCH_COLUMNS = [
  COL.time,
  COL.identity,
  COL.session,
  COL.route,
  COL.class,
  COL.status,
  COL.rows,
  COL.duration,
  COL.statement,
  COL.approval,
];
const SESSION_COLUMNS = [COL.seq, COL.time, COL.class, COL.status, COL.rows, COL.duration, COL.statement, COL.error];

interface Loaded {
  rows: Row[];
  done: boolean;
  truncated: boolean;
  error: ApiError | Error | null;
}

/** Loads a view's events, page by page, cancelling when the view changes. */
function useEvents(auth: TokenSource, state: ViewState, onAuthError: (message: string) => void): Loaded {
  const key = writeState(state);
  const [loaded, setLoaded] = useState<Loaded>({ rows: [], done: false, truncated: false, error: null });
  useEffect(() => {
    const abort = new AbortController();
    setLoaded({ rows: [], done: false, truncated: false, error: null });
    loadEvents(
      auth,
      eventQuery(state),
      (rows, done, truncated) => {
        if (!abort.signal.aborted) setLoaded({ rows: rows.slice(), done, truncated, error: null });
      },
      abort.signal,
    ).catch((e: Error) => {
      if (abort.signal.aborted) return;
      // 401: the token is no good (expired, revoked): sign in again. 403 is about this view (a
      // namespace RBAC does not grant): shown here, the sign-in stays.
      if (e instanceof ApiError && e.status === 401) onAuthError(e.message);
      setLoaded((l) => ({ ...l, done: true, error: e }));
    });
    return () => abort.abort();
  }, [key]);
  return loaded;
}

function LoadStatus({ loaded }: { loaded: Loaded }) {
  const n = loaded.rows.length.toLocaleString('en');
  return (
    <p class="load-status" role="status" aria-live="polite">
      {loaded.error ? (
        <span class="error">Could not load events: {loaded.error.message}</span>
      ) : !loaded.done ? (
        `Loading… ${n} events so far`
      ) : loaded.truncated ? (
        `Showing the first ${n} events; more match. Narrow the search to see the rest.`
      ) : (
        `${n} ${loaded.rows.length === 1 ? 'event' : 'events'}`
      )}
    </p>
  );
}

/** The chain status of the streams behind what is on screen, checked by the collector. */
function ChainBadge({
  auth,
  rows,
  done,
  namespace,
}: {
  auth: TokenSource;
  rows: readonly Row[];
  done: boolean;
  namespace: string | undefined;
}) {
  const streams = done ? [...new Set(rows.map((r) => r.stream))].sort() : [];
  const key = streams.join('\n');
  const [report, setReport] = useState<VerifyReport | Error | null>(null);
  useEffect(() => {
    setReport(null);
    if (streams.length === 0) return;
    const abort = new AbortController();
    verifyStreams(auth, streams, abort.signal, namespace).then(setReport, (e: Error) => {
      if (!abort.signal.aborted) setReport(e);
    });
    return () => abort.abort();
  }, [key]);
  if (!done || streams.length === 0) return null;
  const partial =
    streams.length > MAX_VERIFY_STREAMS ? ` (the first ${MAX_VERIFY_STREAMS} of ${streams.length} streams)` : '';
  if (report === null) return <p class="badge checking">Checking the chain{partial}…</p>;
  if (report instanceof Error)
    return (
      <p class="badge unknown" role="alert">
        Chain not checked: {report.message}
      </p>
    );
  if (report.intact)
    return (
      <p class="badge intact" data-chain="intact">
        ✓ Chain intact: {report.events} events in {report.streams} {report.streams === 1 ? 'stream' : 'streams'}
        {partial}, covered by {report.signedHeads} signed {report.signedHeads === 1 ? 'head' : 'heads'}
      </p>
    );
  return (
    <div class="badge broken" role="alert" data-chain="broken">
      <p>
        ✗ Chain NOT intact{partial}: {report.problems.length} {report.problems.length === 1 ? 'problem' : 'problems'}
      </p>
      <ul>
        {report.problems.slice(0, 20).map((p) => (
          <li>{p.message}</li>
        ))}
      </ul>
    </div>
  );
}

function download(name: string, type: string, text: string) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

function Exports({ rows, done, name }: { rows: readonly Row[]; done: boolean; name: string }) {
  const disabled = !done || rows.length === 0;
  return (
    <div class="exports">
      <button
        type="button"
        disabled={disabled}
        onClick={() => download(`${name}.jsonl`, 'application/x-ndjson', toJsonLines(rows))}
      >
        Export JSON Lines
      </button>
      <button type="button" disabled={disabled} onClick={() => download(`${name}.csv`, 'text/csv', toCsv(rows))}>
        Export CSV
      </button>
    </div>
  );
}

const LABELS: Record<FilterName, string> = {
  identity: 'Identity',
  table: 'Table',
  since: 'From',
  until: 'Until (exclusive)',
  text: 'Statement text contains',
  class: 'Class',
  status: 'Status',
  approval: 'Approval',
  route: 'Route',
  database: 'Database',
  namespace: 'Namespace',
  type: 'Event type',
};
const CHOICES: Partial<Record<FilterName, string[]>> = { class: CLASSES, status: STATUSES, type: TYPES };

function SearchForm({ filters, onSearch, zone }: { filters: Filters; onSearch: (f: Filters) => void; zone: string }) {
  const [draft, setDraft] = useState<Filters>(filters);
  useEffect(() => setDraft(filters), [writeState({ view: 'search', subject: '', filters })]);
  const field = (name: FilterName) => {
    const id = `f-${name}`;
    const set = (v: string) => setDraft((d) => ({ ...d, [name]: v }));
    const choices = CHOICES[name];
    const isTime = name === 'since' || name === 'until';
    return (
      <div class={`field f-${name}`}>
        <label for={id}>
          {LABELS[name]}
          {isTime ? <span class="zone"> ({zone})</span> : null}
        </label>
        {choices ? (
          <select id={id} value={draft[name] ?? ''} onChange={(e) => set((e.target as HTMLSelectElement).value)}>
            <option value="">any</option>
            {choices.map((c) => (
              <option value={c}>{c}</option>
            ))}
          </select>
        ) : isTime ? (
          <input
            id={id}
            type="datetime-local"
            step={1}
            value={draft[name] ? instantToLocalInput(draft[name]!) : ''}
            onChange={(e) => set(localInputToInstant((e.target as HTMLInputElement).value))}
          />
        ) : (
          <input
            id={id}
            type="text"
            value={draft[name] ?? ''}
            onInput={(e) => set((e.target as HTMLInputElement).value)}
          />
        )}
      </div>
    );
  };
  return (
    <form
      class="search"
      aria-label="Search the trail"
      onSubmit={(e) => {
        e.preventDefault();
        const clean: Filters = {};
        for (const name of FILTERS) {
          const v = draft[name]?.trim();
          if (v) clean[name] = v;
        }
        onSearch(clean);
      }}
    >
      {FILTERS.map(field)}
      <div class="actions">
        <button type="submit">Search</button>
        <button type="button" onClick={() => onSearch({})}>
          Clear
        </button>
      </div>
    </form>
  );
}

export interface ViewProps {
  auth: TokenSource;
  state: ViewState;
  zone: string;
  navigate: (s: ViewState) => void;
  onAuthError: (message: string) => void;
}

export function SearchView(props: ViewProps) {
  const loaded = useEvents(props.auth, props.state, props.onAuthError);
  const open = (r: Row) => props.navigate({ view: 'session', subject: r.event.session.id, filters: {} });
  return (
    <main>
      <h1>Search the trail</h1>
      <SearchForm
        filters={props.state.filters}
        zone={props.zone}
        onSearch={(filters) => props.navigate({ view: 'search', subject: '', filters })}
      />
      <Toolbar loaded={loaded} auth={props.auth} namespace={props.state.filters.namespace} name="byline-trail" />
      <VirtualTable label="Events" rows={loaded.rows} columns={SEARCH_COLUMNS} onOpen={open} />
      <p class="hint">
        Rows: ↑ ↓ Page Up/Down Home End to move, Enter to open the session. At most {MAX_ROWS.toLocaleString('en')} rows
        load at once.
      </p>
    </main>
  );
}

function Toolbar({
  loaded,
  auth,
  name,
  namespace,
}: {
  loaded: Loaded;
  auth: TokenSource;
  name: string;
  namespace: string | undefined;
}) {
  return (
    <div class="toolbar">
      <LoadStatus loaded={loaded} />
      <ChainBadge auth={auth} rows={loaded.rows} done={loaded.done && !loaded.error} namespace={namespace} />
      <Exports rows={loaded.rows} done={loaded.done} name={name} />
    </div>
  );
}

export function SessionView(props: ViewProps) {
  const loaded = useEvents(props.auth, props.state, props.onAuthError);
  const rows = sessionOrder(loaded.rows);
  const first = rows[0]?.event;
  return (
    <main>
      <h1>
        Session <code>{props.state.subject}</code>
      </h1>
      {first ? (
        <dl class="facts">
          <dt>Identity</dt>
          <dd>
            <a href={to('identity', first.identity.name)}>{first.identity.name}</a> ({first.identity.kind},{' '}
            {first.identity.source})
          </dd>
          <dt>Target</dt>
          <dd>
            {first.target.route} → {first.target.database}
          </dd>
          <dt>Database user</dt>
          <dd>{first.session.dbUser ?? ''}</dd>
          <dt>Client</dt>
          <dd>{[first.session.applicationName, first.session.client].filter(Boolean).join(' from ')}</dd>
        </dl>
      ) : null}
      <Toolbar
        loaded={{ ...loaded, rows }}
        auth={props.auth}
        namespace={props.state.filters.namespace}
        name={`session-${props.state.subject}`}
      />
      <VirtualTable label="Statements of the session, in order" rows={rows} columns={SESSION_COLUMNS} />
    </main>
  );
}

export function IdentityView(props: ViewProps) {
  const loaded = useEvents(props.auth, props.state, props.onAuthError);
  const s = summarizeIdentity(loaded.rows);
  return (
    <main>
      <h1>
        Identity <code>{props.state.subject}</code>
      </h1>
      <p class="hint">
        {props.state.filters.since
          ? `Since ${formatTime(props.state.filters.since)}`
          : `The last ${IDENTITY_WINDOW_DAYS} days`}
        {props.state.filters.until ? `, until ${formatTime(props.state.filters.until)}` : ''} ({props.zone})
      </p>
      <Toolbar
        loaded={loaded}
        auth={props.auth}
        namespace={props.state.filters.namespace}
        name={`identity-${props.state.subject}`}
      />
      <div class="panels">
        <section aria-labelledby="h-sessions">
          <h2 id="h-sessions">Recent sessions</h2>
          <table class="small">
            <thead>
              <tr>
                <th scope="col">Session</th>
                <th scope="col">Started</th>
                <th scope="col">Last event</th>
                <th scope="col">Route</th>
                <th scope="col">Statements</th>
              </tr>
            </thead>
            <tbody>
              {s.sessions.slice(0, 50).map((x) => (
                <tr>
                  <td>
                    <a href={to('session', x.id)}>{x.id.slice(0, 8)}</a>
                  </td>
                  <td>{formatTime(x.first)}</td>
                  <td>{formatTime(x.last)}</td>
                  <td>{x.route}</td>
                  <td>{x.statements}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
        <section aria-labelledby="h-classes">
          <h2 id="h-classes">Statements by class</h2>
          <table class="small">
            <tbody>
              {s.byClass.map(([cls, n]) => (
                <tr>
                  <th scope="row">{cls}</th>
                  <td>{n}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
      </div>
      <section aria-labelledby="h-denials">
        <h2 id="h-denials">Denials ({s.denials.length})</h2>
        <VirtualTable label="Denied statements" rows={s.denials} columns={SEARCH_COLUMNS} />
      </section>
    </main>
  );
}

export function ApprovalView(props: ViewProps) {
  const loaded = useEvents(props.auth, props.state, props.onAuthError);
  const s = summarizeApproval(loaded.rows);
  return (
    <main>
      <h1>
        Approval <code>{props.state.subject}</code>
      </h1>
      <dl class="facts approval-facts">
        <dt>Requested by</dt>
        <dd data-testid="requested-by">{s.grants.map((g) => g.requestedBy ?? '—').join(', ') || '—'}</dd>
        <dt>Approved by</dt>
        <dd data-testid="approved-by">{s.grants.map((g) => g.approvedBy).join(', ') || '—'}</dd>
        <dt>Reason</dt>
        <dd>{s.grants.map((g) => g.reason ?? '—').join(', ') || '—'}</dd>
        <dt>Ticket</dt>
        <dd>{s.grants.map((g) => g.ticket ?? '—').join(', ') || '—'}</dd>
        <dt>Expires</dt>
        <dd>{s.grants.map((g) => (g.expiresAt ? formatTime(g.expiresAt) : '—')).join(', ') || '—'}</dd>
        <dt>Used by</dt>
        <dd data-testid="used-by">
          {s.usedBy.length
            ? s.usedBy.map((name, i) => (
                <>
                  {i > 0 ? ', ' : ''}
                  <a href={to('identity', name)}>{name}</a>
                </>
              ))
            : '—'}
        </dd>
      </dl>
      <Toolbar
        loaded={loaded}
        auth={props.auth}
        namespace={props.state.filters.namespace}
        name={`approval-${props.state.subject}`}
      />
      <h2>What ran under it ({s.statements.length})</h2>
      <VirtualTable label="Statements run under the approval" rows={s.statements} columns={SEARCH_COLUMNS} />
    </main>
  );
}
