/**
 * `GET /v1/evidence?stream=ID[&stream=ID…]`, for reader tokens: what `byline verify` checks beside
 * a stream's events — the head seq the collector recorded, every chain marker (open or resolved),
 * the stream's registered keys and its signed heads — and the collector's receipt key.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ReceiptSigner } from '@byline/api';
import type { Authenticator } from '../auth/authenticator.js';
import type { CollectorMetrics } from '../metrics.js';
import type { EventStore } from '../store/types.js';
import { authenticate, requireReader } from './bearer.js';
import { HttpError, sendJson } from './respond.js';

const MAX_STREAMS = 100;

export async function handleEvidence(
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  deps: { auth: Authenticator; store: EventStore; metrics: CollectorMetrics; receipts?: ReceiptSigner },
): Promise<void> {
  requireReader(await authenticate(req, deps.auth, 'read'));
  for (const name of url.searchParams.keys()) {
    if (name !== 'stream') throw new HttpError(400, `unknown query parameter "${name}" (only "stream" is taken)`);
  }
  const streams = [...new Set(url.searchParams.getAll('stream'))];
  if (streams.length > MAX_STREAMS) throw new HttpError(400, `at most ${MAX_STREAMS} streams per request`);
  if (streams.some((s) => s === '')) throw new HttpError(400, 'stream must not be empty');
  let evidence: Awaited<ReturnType<EventStore['evidence']>> = [];
  try {
    if (streams.length > 0) evidence = await deps.store.evidence(streams);
  } catch {
    deps.metrics.storeErrors.inc({ operation: 'evidence' });
    throw new HttpError(503, 'the store could not answer; retry later', {}, { 'Retry-After': '1' });
  }
  // The receipt key comes from the collector's config, never from the store.
  sendJson(res, 200, { receiptKey: deps.receipts?.key ?? null, streams: evidence });
}
