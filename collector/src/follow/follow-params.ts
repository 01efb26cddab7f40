/**
 * `GET /v1/events/follow` parameters: the event query's filters, a resume cursor (or where to
 * start), how long to wait for new events, and a page size. Unknown or repeated parameters are
 * refused, as for `/v1/events`.
 */
import { HttpError } from '../http/respond.js';
import { EQUALITY, readFilterParams, STATEMENT_FILTERS } from '../query/query-params.js';
import { decodeFollowCursor, FOLLOW_START, type FollowPosition } from '../store/follow-types.js';
import type { EventFilter } from '../store/types.js';
import { timeMicros } from '../time.js';

export const FOLLOW_DEFAULT_LIMIT = 500;
export const FOLLOW_MAX_LIMIT = 5000;
/** Under common proxy idle timeouts, like the policy long-poll. */
export const FOLLOW_MAX_WAIT_SECONDS = 25;

const KNOWN: string[] = [...EQUALITY, ...STATEMENT_FILTERS, 'since', 'until', 'limit', 'cursor', 'from', 'wait'];

export interface FollowQuery {
  filter: EventFilter;
  limit: number;
  /** Resume after this position; `end` starts after everything stored now. */
  after: FollowPosition | 'end';
  waitMs: number;
}

export function parseFollowQuery(params: URLSearchParams): FollowQuery {
  const { seen, filter, problems } = readFilterParams(params, KNOWN);
  for (const name of ['since', 'until'] as const) {
    const v = seen.get(name);
    if (v === undefined) continue;
    const us = timeMicros(v);
    if (us === undefined)
      problems.push(`${name}: expected an RFC 3339 time like 2026-11-27T03:18:27Z, got ${JSON.stringify(v)}`);
    else if (name === 'since') filter.sinceUs = us;
    else filter.untilUs = us;
  }
  const int = (name: string, min: number, max: number, fallback: number): number => {
    const raw = seen.get(name);
    if (raw === undefined) return fallback;
    const n = /^[0-9]{1,9}$/.test(raw) ? Number(raw) : Number.NaN;
    if (!(n >= min && n <= max))
      problems.push(`${name}: expected an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`);
    return n;
  };
  const limit = int('limit', 1, FOLLOW_MAX_LIMIT, FOLLOW_DEFAULT_LIMIT);
  const wait = int('wait', 0, FOLLOW_MAX_WAIT_SECONDS, FOLLOW_MAX_WAIT_SECONDS);

  let after: FollowPosition | 'end' = FOLLOW_START;
  const cursor = seen.get('cursor');
  const from = seen.get('from');
  if (cursor !== undefined && from !== undefined) problems.push('give either cursor (to resume) or from, not both');
  if (cursor !== undefined) {
    const decoded = decodeFollowCursor(cursor);
    if (decoded) after = decoded;
    else
      problems.push(
        'cursor: not a follow cursor this collector handed out (pass cursor from the previous answer as is)',
      );
  } else if (from !== undefined) {
    if (from === 'end') after = 'end';
    else if (from !== 'start') problems.push(`from: expected start or end, got ${JSON.stringify(from)}`);
  }
  if (problems.length > 0) throw new HttpError(400, problems.join('; '), { problems });
  return { filter, limit, after, waitMs: wait * 1000 };
}
