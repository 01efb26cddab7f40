/**
 * `GET /v1/verify?stream=ID[&stream=ID…][&namespace=NS]`, for reader tokens: `byline verify`'s
 * checks run by the collector over whole streams (every stored event of each, its markers, keys and
 * signed heads), so the trail viewer can say whether the chains of what it shows are intact, and why
 * not. The same function, the same options as the command (signatures required, the configured
 * receipt key). A reader of some namespaces names one it may read, and then only streams whose every
 * event is of that namespace are checked (a stream that strays outside it is refused whole).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { describeProblem, type ReceiptSigner, type StoredPosition, verifyTrail } from '@byline/api';
import type { Authenticator } from '../auth/authenticator.js';
import type { CollectorMetrics } from '../metrics.js';
import type { CursorKey, EventStore } from '../store/types.js';
import { authenticate, requireAnyReader, requireNamespace } from './bearer.js';
import { HttpError, sendJson } from './respond.js';

const MAX_STREAMS = 100;
/** Beyond this the answer would take too long for a page: `byline verify` walks any size. */
export const MAX_VERIFY_EVENTS = 200_000;
const PAGE = 5000;

/** The identity's namespace of a stored event (null when it has none, or does not parse). */
function namespaceOf(json: string): string | null {
  try {
    const ns = (JSON.parse(json) as { identity?: { namespace?: unknown } }).identity?.namespace;
    return typeof ns === 'string' ? ns : null;
  } catch {
    return null;
  }
}

export async function handleVerify(
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  deps: { auth: Authenticator; store: EventStore; metrics: CollectorMetrics; receipts?: ReceiptSigner },
): Promise<void> {
  const reader = requireAnyReader(await authenticate(req, deps.auth, 'read'));
  for (const name of url.searchParams.keys()) {
    if (name !== 'stream' && name !== 'namespace') {
      throw new HttpError(400, `unknown query parameter "${name}" (only "stream" and "namespace" are taken)`);
    }
  }
  const namespace = url.searchParams.get('namespace') ?? undefined;
  if (namespace === '') throw new HttpError(400, 'namespace must not be empty');
  await requireNamespace(reader, namespace);
  const streams = [...new Set(url.searchParams.getAll('stream'))];
  if (streams.length === 0) throw new HttpError(400, 'name at least one stream (?stream=ID)');
  if (streams.length > MAX_STREAMS) throw new HttpError(400, `at most ${MAX_STREAMS} streams per request`);
  if (streams.some((s) => s === '')) throw new HttpError(400, 'stream must not be empty');

  const stored: StoredPosition[] = [];
  let evidence: Awaited<ReturnType<EventStore['evidence']>>;
  try {
    for (const stream of streams) {
      let after: CursorKey | undefined;
      do {
        const page = await deps.store.query({ stream }, PAGE, after);
        for (const e of page.events) {
          if (namespace !== undefined && namespaceOf(e.json) !== namespace) {
            throw new HttpError(403, `stream ${stream} holds events outside namespace "${namespace}"`, {
              reason: 'reader-denied',
            });
          }
          stored.push({ stream: e.key.stream, seq: e.key.seq, json: e.json });
        }
        if (stored.length > MAX_VERIFY_EVENTS) {
          throw new HttpError(
            413,
            `these streams hold more than ${MAX_VERIFY_EVENTS} events; verify them with "byline verify --stream"`,
          );
        }
        after = page.next ?? undefined;
      } while (after);
    }
    evidence = await deps.store.evidence(streams);
  } catch (e) {
    if (e instanceof HttpError) throw e;
    deps.metrics.storeErrors.inc({ operation: 'verify' });
    throw new HttpError(503, 'the store could not answer; retry later', {}, { 'Retry-After': '1' });
  }
  const receiptKey = deps.receipts?.key;
  const report = verifyTrail(stored, evidence, { requireSignatures: true, ...(receiptKey ? { receiptKey } : {}) });
  sendJson(
    res,
    200,
    {
      intact: report.problems.length === 0,
      streams: report.streams,
      events: report.events,
      signedHeads: report.signedHeads,
      receiptKey: receiptKey ?? null,
      problems: report.problems.map((p) => ({ ...p, message: describeProblem(p) })),
    },
    { 'Cache-Control': 'no-store' },
  );
}
