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

const EQUALITY = ['identity', 'table', 'route', 'database', 'session', 'approval', 'stream', 'type'] as const;
const KNOWN = [...EQUALITY, 'namespace', 'since', 'until', 'limit', 'cursor'];

export interface EventQuery {
  filter: EventFilter;
  /** Only events whose identity.namespace is this (what a namespace's trail reader may ask). */
  namespace: string | undefined;
  limit: number;
  after: CursorKey | undefined;
}

export function parseEventQuery(params: URLSearchParams): EventQuery {
  const problems: string[] = [];
  const seen = new Map<string, string>();
  for (const [name, value] of params) {
    if (!KNOWN.includes(name)) problems.push(`unknown query parameter "${name}" (known: ${KNOWN.join(', ')})`);
    else if (seen.has(name)) problems.push(`${name}: given more than once`);
    else if (value === '') problems.push(`${name}: expected a value`);
    else seen.set(name, value);
  }
  const filter: EventFilter = {};
  for (const name of EQUALITY) {
    const v = seen.get(name);
    if (v !== undefined) filter[name] = v;
  }
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
