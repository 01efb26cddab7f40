/**
 * Talks to the collector that served the page (same origin). Every call carries the reader's
 * bearer token; the collector authorizes each one as it does for `byline trail`.
 *
 * Sign-in is a `TokenSource`: a reader token pasted once and kept in session storage (gone when
 * the tab closes, never in the URL), or an OIDC sign-in (authorization code + PKCE, oidc.ts).
 */
import type { Row } from './events.js';

export interface TokenSource {
  token(): string | null;
  signOut(): void;
}

const KEY = 'byline.readerToken';

export const pastedToken = {
  token: (): string | null => sessionStorage.getItem(KEY),
  set(token: string): void {
    sessionStorage.setItem(KEY, token.trim());
  },
  signOut(): void {
    sessionStorage.removeItem(KEY);
  },
} satisfies TokenSource & { set(token: string): void };

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

async function get<T>(auth: TokenSource, path: string, signal?: AbortSignal): Promise<T> {
  const token = auth.token();
  if (!token) throw new ApiError(401, 'not signed in');
  const res = await fetch(path, {
    headers: { Authorization: `Bearer ${token}`, Accept: 'application/json' },
    cache: 'no-store',
    ...(signal ? { signal } : {}),
  });
  const body = (await res.json().catch(() => ({}))) as { error?: string };
  if (!res.ok) throw new ApiError(res.status, body.error ?? `the collector answered ${res.status}`);
  return body as T;
}

export interface Marker {
  stream: string;
  seq: number;
  kind: string;
  detail: string;
  resolvedAt: string | null;
}

interface EventPage {
  events: Row[];
  markers: Marker[];
  nextCursor: string | null;
}

export const PAGE_SIZE = 5000;
/** The most a search loads into the table; past it the viewer says so and asks to narrow. */
export const MAX_ROWS = 100_000;

/** Loads every page of a query (up to MAX_ROWS), reporting progress after each. */
export async function loadEvents(
  auth: TokenSource,
  query: URLSearchParams,
  onPage: (rows: Row[], done: boolean, truncated: boolean) => void,
  signal: AbortSignal,
): Promise<void> {
  const rows: Row[] = [];
  let cursor: string | null = null;
  do {
    const q = new URLSearchParams(query);
    q.set('limit', String(PAGE_SIZE));
    if (cursor) q.set('cursor', cursor);
    const page: EventPage = await get<EventPage>(auth, `/v1/events?${q}`, signal);
    for (const r of page.events) rows.push(r);
    cursor = page.nextCursor;
    const truncated = cursor !== null && rows.length >= MAX_ROWS;
    onPage(rows, cursor === null || truncated, truncated);
    if (truncated) return;
  } while (cursor);
}

export interface VerifyProblem {
  kind: string;
  stream: string;
  message: string;
}

export interface VerifyReport {
  intact: boolean;
  streams: number;
  events: number;
  signedHeads: number;
  problems: VerifyProblem[];
}

export const MAX_VERIFY_STREAMS = 100;

/** A reader of some namespaces names the one it looks at: the collector checks only streams within it. */
export function verifyStreams(auth: TokenSource, streams: readonly string[], signal: AbortSignal, namespace?: string) {
  const q = new URLSearchParams();
  for (const s of streams.slice(0, MAX_VERIFY_STREAMS)) q.append('stream', s);
  if (namespace) q.set('namespace', namespace);
  return get<VerifyReport>(auth, `/v1/verify?${q}`, signal);
}
