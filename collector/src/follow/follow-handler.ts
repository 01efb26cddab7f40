/**
 * `GET /v1/events/follow`: a long-poll over the store in insertion order. Answers at once when
 * events are stored after the cursor, otherwise checks again every `pollMs` until `wait` seconds
 * pass (then an empty page); every answer carries the cursor to resume from, so a reader that
 * reconnects sees each event exactly once, in the order the store committed them.
 *
 * The store is polled rather than woken by ingest so that replicas sharing a PostgreSQL store see
 * each other's events too.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { authenticate, requireReader } from '../http/bearer.js';
import { HttpError, sendText } from '../http/respond.js';
import type { QueryDeps } from '../query/query-handlers.js';
import { renderEventPage } from '../query/render.js';
import { encodeFollowCursor, type FollowPage } from '../store/follow-types.js';
import { parseFollowQuery } from './follow-params.js';

export interface FollowDeps extends QueryDeps {
  /** How often a waiting follow asks the store again (default 250 ms). */
  followPollMs?: number;
  /** Aborted when the collector shuts down: waiting follows answer at once. */
  shutdown?: AbortSignal;
}

export async function handleFollow(req: IncomingMessage, res: ServerResponse, url: URL, deps: FollowDeps) {
  requireReader(await authenticate(req, deps.auth, 'read'));
  const q = parseFollowQuery(url.searchParams);
  const after = q.after === 'end' ? await storeCall(deps, () => deps.store.followEnd()) : q.after;
  const deadline = Date.now() + q.waitMs;
  const pollMs = deps.followPollMs ?? 250;
  let closed = false;
  const onClose = () => {
    closed = true;
  };
  req.socket.once('close', onClose);
  try {
    let page: FollowPage;
    for (;;) {
      page = await storeCall(deps, () => deps.store.follow(q.filter, after, q.limit));
      if (page.events.length > 0 || closed || deps.shutdown?.aborted || Date.now() + pollMs > deadline) break;
      await sleep(pollMs, deps.shutdown);
    }
    if (closed) return;
    const streams = [...new Set(page.events.map((e) => e.key.stream))];
    const markers = await storeCall(deps, () => deps.store.markers(streams));
    sendText(res, 200, renderEventPage(page.events, markers, encodeFollowCursor(page.position)));
  } finally {
    req.socket.off('close', onClose);
  }
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

async function storeCall<T>(deps: QueryDeps, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (e) {
    deps.metrics.storeErrors.inc({ operation: 'follow' });
    deps.logger.error({ err: e }, 'store follow failed');
    throw new HttpError(503, 'the store could not answer the follow; retry later', {}, { 'Retry-After': '1' });
  }
}
