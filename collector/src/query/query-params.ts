/**
 * `GET /v1/events` query parameters → a filter, a page size and a position. Unknown or repeated
 * parameters are refused, so a typo never silently widens a query.
 */
import { HttpError } from '../http/respond.js';
import type { CursorKey, EventFilter } from '../store/types.js';
import { timeMicros } from '../time.js';
import { decodeCursor } from './cursor.js';

export const DEFAULT_LIMIT = 500;
export const MAX_LIMIT = 5000;

/** Filters an event matches by equality of one field (the trail's and the follow API's). */
export const EQUALITY = ['identity', 'table', 'route', 'database', 'session', 'approval', 'stream', 'type'] as const;
const KNOWN = [...EQUALITY, 'namespace', 'class', 'status', 'text', 'since', 'until', 'limit', 'cursor'];
/** The values AuditEvent v1 allows, so a misspelt class or status is an error rather than an empty page. */
const CLASSES = ['read', 'write', 'ddl', 'role', 'tcl', 'misc'];
const STATUSES = ['ok', 'error', 'cancelled', 'denied', 'unknown'];
const MAX_TEXT = 1000;

export interface EventQuery {
  filter: EventFilter;
  /** Only events whose identity.namespace is this (what a namespace's trail reader may ask). */
  namespace: string | undefined;
  limit: number;
  after: CursorKey | undefined;
}

/** The filters on what only the event holds (`class`, `status`, `text`), also taken by the follow API. */
export const STATEMENT_FILTERS = ['class', 'status', 'text'] as const;

/** Reads `class`, `status` and `text` from the parameters seen into `filter`, naming what is wrong. */
export function statementFilters(seen: ReadonlyMap<string, string>, filter: EventFilter, problems: string[]): void {
  const oneOf = (name: 'class' | 'status', allowed: string[]): string | undefined => {
    const v = seen.get(name);
    if (v !== undefined && !allowed.includes(v))
      problems.push(`${name}: expected one of ${allowed.join(', ')}, got ${JSON.stringify(v)}`);
    return v;
  };
  const statementClass = oneOf('class', CLASSES);
  const status = oneOf('status', STATUSES);
  if (statementClass !== undefined) filter.statementClass = statementClass;
  if (status !== undefined) filter.status = status;
  const text = seen.get('text');
  if (text !== undefined) {
    if (text.length > MAX_TEXT) problems.push(`text: at most ${MAX_TEXT} characters`);
    // No statement text holds one (the wire protocol ends strings with it), and PostgreSQL refuses it in text.
    else if (text.includes('\0')) problems.push('text: must not contain a NUL character');
    else filter.text = text;
  }
}

/**
 * A trail request's parameters: each of `known` at most once and with a value (else a problem
 * naming it), and the equality and statement filters they give.
 */
export function readFilterParams(
  params: URLSearchParams,
  known: readonly string[],
): { seen: Map<string, string>; filter: EventFilter; problems: string[] } {
  const problems: string[] = [];
  const seen = new Map<string, string>();
  for (const [name, value] of params) {
    if (!known.includes(name)) problems.push(`unknown query parameter "${name}" (known: ${known.join(', ')})`);
    else if (seen.has(name)) problems.push(`${name}: given more than once`);
    else if (value === '') problems.push(`${name}: expected a value`);
    else seen.set(name, value);
  }
  const filter: EventFilter = {};
  for (const name of EQUALITY) {
    const v = seen.get(name);
    if (v !== undefined) filter[name] = v;
  }
  statementFilters(seen, filter, problems);
  return { seen, filter, problems };
}

export function parseEventQuery(params: URLSearchParams): EventQuery {
  const { seen, filter, problems } = readFilterParams(params, KNOWN);
  const time = (name: 'since' | 'until'): number | undefined => {
    const v = seen.get(name);
    if (v === undefined) return undefined;
    const us = timeMicros(v);
    if (us === undefined)
      problems.push(`${name}: expected an RFC 3339 time like 2026-11-27T03:18:27Z, got ${JSON.stringify(v)}`);
    return us;
  };
  const since = time('since');
  const until = time('until');
  if (since !== undefined) filter.sinceUs = since;
  if (until !== undefined) filter.untilUs = until;

  let limit = DEFAULT_LIMIT;
  const rawLimit = seen.get('limit');
  if (rawLimit !== undefined) {
    limit = /^[0-9]{1,9}$/.test(rawLimit) ? Number(rawLimit) : Number.NaN;
    if (!(limit >= 1 && limit <= MAX_LIMIT)) {
      problems.push(`limit: expected an integer from 1 to ${MAX_LIMIT}, got ${JSON.stringify(rawLimit)}`);
    }
  }
  let after: CursorKey | undefined;
  const rawCursor = seen.get('cursor');
  if (rawCursor !== undefined) {
    after = decodeCursor(rawCursor);
    if (!after)
      problems.push('cursor: not a cursor this collector handed out (pass nextCursor from the previous page as is)');
  }
  if (problems.length > 0) throw new HttpError(400, problems.join('; '), { problems });
  return { filter, namespace: seen.get('namespace'), limit, after };
}
