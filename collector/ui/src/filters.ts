/**
 * The viewer's state lives in the URL, so a link shows what its sender saw: the view, its subject
 * (a session, identity or approval) and the search filters. Times travel as RFC 3339 instants, so
 * a link means the same in every time zone; the form shows them in the reader's own zone.
 */
export const FILTERS = [
  'identity',
  'table',
  'since',
  'until',
  'text',
  'class',
  'status',
  'approval',
  'route',
  'database',
  'namespace',
  'type',
] as const;
export type FilterName = (typeof FILTERS)[number];
export type Filters = Partial<Record<FilterName, string>>;

export const VIEWS = ['search', 'session', 'identity', 'approval'] as const;
export type ViewName = (typeof VIEWS)[number];

export interface ViewState {
  view: ViewName;
  /** The session id, identity name or approval name the view is about (not for search). */
  subject: string;
  filters: Filters;
}

export const CLASSES = ['read', 'write', 'ddl', 'role', 'tcl', 'misc'];
export const STATUSES = ['ok', 'error', 'cancelled', 'denied', 'unknown'];
export const TYPES = ['statement', 'session.start', 'session.end'];

export function readState(search: string): ViewState {
  const params = new URLSearchParams(search);
  const view = (VIEWS as readonly string[]).includes(params.get('view') ?? '')
    ? (params.get('view') as ViewName)
    : 'search';
  const filters: Filters = {};
  for (const name of FILTERS) {
    const v = params.get(name);
    if (v) filters[name] = v;
  }
  return { view, subject: view === 'search' ? '' : (params.get('of') ?? ''), filters };
}

export function writeState(state: ViewState): string {
  const params = new URLSearchParams();
  if (state.view !== 'search') {
    params.set('view', state.view);
    params.set('of', state.subject);
  }
  for (const name of FILTERS) {
    const v = state.filters[name];
    if (v) params.set(name, v);
  }
  const s = params.toString();
  return s ? `?${s}` : '';
}

/** How far back the identity view looks unless the link says `since`. */
export const IDENTITY_WINDOW_DAYS = 7;

/**
 * The collector query for a view: search uses the filters, the others their subject. Events come
 * oldest first, so the identity view ("recent sessions") is bounded to a recent window.
 */
export function eventQuery(state: ViewState, now = Date.now()): URLSearchParams {
  const params = new URLSearchParams();
  if (state.view === 'search') {
    for (const name of FILTERS) {
      const v = state.filters[name];
      if (v) params.set(name, v);
    }
  } else {
    params.set(state.view, state.subject);
    // A namespace's trail reader may only ask within its namespace, in every view.
    if (state.filters.namespace) params.set('namespace', state.filters.namespace);
  }
  if (state.view === 'identity') {
    params.set('since', state.filters.since ?? new Date(now - IDENTITY_WINDOW_DAYS * 86400_000).toISOString());
    if (state.filters.until) params.set('until', state.filters.until);
  }
  return params;
}

/** `datetime-local` value (the reader's zone) → RFC 3339 UTC instant, or '' when empty/invalid. */
export function localInputToInstant(value: string): string {
  if (!value) return '';
  const ms = new Date(value).getTime();
  return Number.isNaN(ms) ? '' : new Date(ms).toISOString();
}

/** RFC 3339 instant → `datetime-local` value in the reader's zone. */
export function instantToLocalInput(instant: string): string {
  const d = new Date(instant);
  if (Number.isNaN(d.getTime())) return '';
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}
