/** `POST /v1/events`: authenticate, read within limits, validate every line, store all-or-nothing. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ReceiptSigner, SignedHead } from '@byline/api';
import type { Logger } from 'pino';
import type { Authenticator, IdentitiesIn, WriterIdentity } from '../auth/authenticator.js';
import { authenticate, requireWriter } from '../http/bearer.js';
import { readBody } from '../http/read-body.js';
import { HttpError, sendJson } from '../http/respond.js';
import { signedHeadOf } from '../http/signed-head-header.js';
import type { BatchOutcome, CollectorMetrics } from '../metrics.js';
import { type BatchWriter, type EventStore, StreamOwnerError } from '../store/types.js';
import { oidcAttributionProblem } from './oidc-issuer-check.js';
import { type GatewayLine, type LineProblem, type ParsedBatch, parseBatch } from './parse-batch.js';
import { streamOwner } from './stream-owner.js';
import { type VerifyBatch, VerifyBusy } from './verify-protocol.js';

export interface IngestDeps {
  auth: Authenticator;
  store: EventStore;
  metrics: CollectorMetrics;
  logger: Logger;
  maxBatchBytes: number;
  maxBatchEvents: number;
  receipts?: ReceiptSigner;
  /** Verifies a batch off the event loop (VerifyPool); without it, on the event loop. */
  verify?: VerifyBatch;
}

const MAX_REPORTED = 20;
const NDJSON = /^application\/x-ndjson\s*(;.*)?$/i;

export async function handleIngest(req: IncomingMessage, res: ServerResponse, deps: IngestDeps): Promise<void> {
  let outcome: BatchOutcome = 'accepted';
  try {
    const writer = requireWriter(await authenticate(req, deps.auth, 'write'));
    const type = req.headers['content-type'];
    if (type === undefined || !NDJSON.test(type)) {
      throw new HttpError(
        415,
        `Content-Type must be application/x-ndjson (one event per line), not ${type ?? 'missing'}`,
      );
    }
    const encoding = req.headers['content-encoding'];
    if (encoding !== undefined && encoding !== 'identity') {
      throw new HttpError(415, `Content-Encoding ${encoding} is not supported; send the body uncompressed`);
    }
    const body = await readBody(req, deps.maxBatchBytes);
    const parsed = await verifyBatch(body, writer.identity, deps);
    if (!parsed.ok) {
      for (const p of parsed.problems) {
        deps.metrics.rejected.inc({ reason: p.reason });
        if (p.field) deps.metrics.identityMismatches.inc({ field: p.field });
      }
      deps.logger.warn({ writer: writer.identity.name, status: parsed.status, error: parsed.error }, 'batch refused');
      throw new HttpError(parsed.status, parsed.error, { problems: parsed.problems });
    }
    if (writer.identitiesIn) await checkAttributions(parsed.gatewayLines, writer.identitiesIn, deps);
    const signedHead = signedHeadOf(req, parsed.events);
    const owner = streamOwner(writer.identity);
    let result: Awaited<ReturnType<EventStore['insertBatch']>>;
    try {
      result = await deps.store.insertBatch(parsed.events, new Date(), batchWriter(owner, signedHead, deps.receipts));
    } catch (e) {
      if (e instanceof StreamOwnerError) {
        deps.metrics.rejected.inc({ reason: 'stream-owner' }, parsed.events.length);
        deps.logger.warn({ writer: owner, stream: e.stream, owner: e.owner }, 'batch refused: not the stream owner');
        throw new HttpError(403, `batch refused, nothing stored: ${e.message}`, { reason: 'stream-owner' });
      }
      deps.metrics.storeErrors.inc({ operation: 'insert' });
      deps.logger.error({ err: e, writer: writer.identity.name }, 'storing a batch failed');
      throw new HttpError(
        503,
        'the store could not take the batch; nothing was stored, retry later',
        {},
        { 'Retry-After': '1' },
      );
    }
    const m = deps.metrics;
    m.batchEvents.observe(parsed.events.length);
    m.batchBytes.observe(body.length);
    m.eventsStored.inc(result.accepted);
    m.duplicates.inc(result.duplicates);
    m.gapsResolved.inc(result.resolved);
    if (result.retired > 0) {
      m.resentAfterRetirement.inc(result.retired);
      deps.logger.info(
        { writer: writer.identity.name, retired: result.retired },
        'events resent after their retention checkpoint: acknowledged, not stored',
      );
    }
    if (!signedHead) m.unsignedBatches.inc();
    for (const marker of result.markers) {
      m.chainProblems.inc({ kind: marker.kind });
      deps.logger.warn({ marker }, `chain ${marker.kind} in stream ${marker.stream} at seq ${marker.seq}`);
    }
    deps.logger.debug({ writer: writer.identity.name, ...result, markers: result.markers.length }, 'batch stored');
    sendJson(res, 200, {
      accepted: result.accepted,
      duplicates: result.duplicates,
      // Only when there were some, so the answer of an ordinary batch keeps its shape.
      ...(result.retired > 0 ? { retired: result.retired } : {}),
    });
  } catch (e) {
    outcome = outcomeOf(e);
    throw e;
  } finally {
    deps.metrics.batches.inc({ outcome });
  }
}

/** The batch's verdict; a batch the pool could not verify is refused (5xx), never taken unverified. */
async function verifyBatch(body: Uint8Array, writer: WriterIdentity, deps: IngestDeps): Promise<ParsedBatch> {
  if (!deps.verify) return parseBatch(body, writer, deps.maxBatchEvents);
  try {
    return await deps.verify(body, writer, deps.maxBatchEvents);
  } catch (e) {
    if (e instanceof VerifyBusy) {
      deps.logger.warn({ writer: writer.name, reason: e.message }, 'batch refused: verification is saturated');
      throw new HttpError(
        503,
        `the collector is busy verifying other batches (${e.message}); nothing was stored, retry later`,
        { reason: 'busy' },
        { 'Retry-After': '1' },
      );
    }
    deps.logger.error({ err: e, writer: writer.name }, 'verifying a batch failed');
    throw new HttpError(
      500,
      `batch refused, nothing stored: the collector could not verify it (${(e as Error).message}); retry later`,
      { reason: 'verify-failed' },
    );
  }
}

/** A gateway's events name AgentIdentities that claim their issuer, or the whole batch is refused (403). */
async function checkAttributions(lines: GatewayLine[], identitiesIn: IdentitiesIn, deps: IngestDeps): Promise<void> {
  const problems: LineProblem[] = [];
  let bad = 0;
  // One list per namespace per batch, whatever the authenticator's cache does.
  const byNamespace = new Map<string, Awaited<ReturnType<IdentitiesIn>>>();
  for (const { line, identity } of lines) {
    const ns = identity.namespace;
    let listed = ns === null ? [] : byNamespace.get(ns);
    if (listed === undefined && ns !== null) {
      listed = await listed503(identitiesIn, ns);
      byNamespace.set(ns, listed);
    }
    const problem = oidcAttributionProblem(identity, listed ?? []);
    if (problem) bad++;
    if (problem && problems.length < MAX_REPORTED) {
      problems.push({ line, reason: 'identity', message: `line ${line}: ${problem}`, field: 'oidc' });
    }
  }
  if (problems.length === 0) return;
  deps.metrics.rejected.inc({ reason: 'identity' }, bad);
  deps.metrics.identityMismatches.inc({ field: 'oidc' }, bad);
  const more = bad > 1 ? ` (and ${bad - 1} more)` : '';
  deps.logger.warn(
    { problems: problems.length },
    'gateway batch refused: events attributed to identities that do not claim their issuer',
  );
  throw new HttpError(403, `batch refused, nothing stored: ${problems[0]!.message}${more}`, { problems });
}

async function listed503(identitiesIn: IdentitiesIn, namespace: string) {
  try {
    return await identitiesIn(namespace);
  } catch (e) {
    throw new HttpError(
      503,
      `the collector cannot list the AgentIdentities in "${namespace}" to check the gateway's events; nothing was stored, retry later (${(e as Error).message})`,
      { reason: 'review-failed' },
      { 'Retry-After': '1' },
    );
  }
}

function outcomeOf(e: unknown): BatchOutcome {
  if (e instanceof HttpError && e.extra.reason === 'review-failed') return 'auth-unavailable';
  if (e instanceof HttpError && e.extra.reason === 'busy') return 'busy';
  if (e instanceof HttpError && e.extra.reason === 'verify-failed') return 'verify-failed';
  switch (e instanceof HttpError ? e.status : 500) {
    case 401:
      return 'unauthenticated';
    case 403:
      return 'forbidden';
    case 413:
      return 'too-large';
    case 415:
      return 'unsupported-media-type';
    case 400:
      return 'bad-request';
    default:
      return 'store-error';
  }
}

/** Who writes, the head the sidecar signed, and the collector's receipt for its key. */
function batchWriter(
  owner: string,
  signedHead: SignedHead | undefined,
  receipts: ReceiptSigner | undefined,
): BatchWriter {
  if (!signedHead) return { owner };
  const keyReceipt = receipts?.receipt(signedHead.stream, signedHead.key, owner);
  return { owner, signedHead, ...(keyReceipt ? { keyReceipt } : {}) };
}
