/** `GET /v1/events` and `GET /v1/streams`, for reader tokens. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Authenticator } from '../auth/authenticator.js';
import { authenticate, requireAnyReader, requireNamespace, requireReader } from '../http/bearer.js';
import { HttpError, sendJson, sendText } from '../http/respond.js';
import type { CollectorMetrics } from '../metrics.js';
import type { EventStore } from '../store/types.js';
import { encodeCursor } from './cursor.js';
import { parseEventQuery } from './query-params.js';
import { renderEventPage } from './render.js';

export interface QueryDeps {
  auth: Authenticator;
  store: EventStore;
  metrics: CollectorMetrics;
  logger: Logger;
}

export async function handleEventQuery(
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  deps: QueryDeps,
): Promise<void> {
  const reader = requireAnyReader(await authenticate(req, deps.auth, 'read'));
  const q = parseEventQuery(url.searchParams);
  await requireNamespace(reader, q.namespace);
  const page = await storeCall(deps, 'query', async () => {
    const found = await deps.store.query(q.filter, q.limit, q.after);
    // The store has no namespace column: filtered here, so a page may hold fewer than `limit`
    // events (even none) and still have a next page.
    const events =
      q.namespace === undefined ? found.events : found.events.filter((e) => inNamespace(e.json, q.namespace!));
    const streams = [...new Set(events.map((e) => e.key.stream))];
    return { events, next: found.next, markers: await deps.store.markers(streams) };
  });
  sendText(res, 200, renderEventPage(page.events, page.markers, page.next ? encodeCursor(page.next) : null));
}

export async function handleStreams(
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  deps: QueryDeps,
): Promise<void> {
  requireReader(await authenticate(req, deps.auth, 'read'));
  for (const name of url.searchParams.keys())
    throw new HttpError(400, `unknown query parameter "${name}" (none are taken)`);
  const streams = await storeCall(deps, 'streams', () => deps.store.streams());
  sendJson(res, 200, { streams });
}

function inNamespace(json: string, namespace: string): boolean {
  try {
    return (JSON.parse(json) as { identity?: { namespace?: unknown } }).identity?.namespace === namespace;
  } catch {
    return false;
  }
}

async function storeCall<T>(deps: QueryDeps, operation: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (e) {
    deps.metrics.storeErrors.inc({ operation });
    deps.logger.error({ err: e }, `store ${operation} failed`);
    throw new HttpError(503, `the store could not answer the ${operation}; retry later`, {}, { 'Retry-After': '1' });
  }
}
