/**
 * Ships finished events from the spool to the collector: batches taken from the spool (from memory
 * while the shipper keeps up, else read back from disk) as the bytes the spool holds, POSTed as
 * NDJSON, retried with exponential backoff and full jitter, and the spool's checkpoint advanced
 * only once the collector has acknowledged a batch. At least once; the collector stores each
 * event id once.
 *
 * A batch the collector refuses for good (schema, size, an identity it no longer vouches for) is
 * narrowed down to the events at fault (deliver.ts); those go to the dead-letter directory, a
 * chained `spool.deadLettered` event records each in the trail, and shipping goes on.
 */
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { type AuditIncident, SIGNED_HEAD_HEADER } from '@byline/api';
import type { Logger } from 'pino';
import { StreamSigner } from '../audit/stream-signer.js';
import { type CollectorTrust, collectorCa } from '../collector-ca.js';
import type { SidecarMetrics } from '../metrics.js';
import type { EventRun } from '../spool/event-run.js';
import type { Spool } from '../spool/spool.js';
import { DeadLetterStore } from './dead-letter.js';
import { type Answer, classifyAnswer, deliver, type RetryReason } from './deliver.js';
import { TokenFile } from './token-file.js';

export interface ShipperOptions {
  url: string;
  tokenFile: string;
  /** The collector's CA (caPem inline or caFile); the system's trust store when neither. */
  caFile?: string;
  caPem?: string;
  /** Largest request, in bytes (a single larger event still goes, alone). */
  maxBatchBytes?: number;
  /** Most events per request. */
  maxBatchEvents?: number;
  requestTimeoutMs?: number;
}

/** What the shipper needs from the rest of the sidecar. */
export interface ShipperHooks {
  /** Chains `incident` into the stream and resolves once it is in the spool. */
  record(incident: AuditIncident): Promise<void>;
  /** The collector refused events for their identity: ask again who this sidecar is. */
  refreshIdentity(): Promise<void>;
}

const BACKOFF_BASE_MS = 250;
// Capped low: while the spool is full, statements are refused until the collector is back, so
// the shipper must notice its return within seconds.
const BACKOFF_CAP_MS = 5_000;
const IDLE_POLL_MS = 1000;
/**
 * After a batch well under the size limit, events gather this long before the next request:
 * every request costs the sidecar CPU (read, HTTP, signature) on the cores the agent and Postgres
 * use, and the collector a transaction. Shipping is at least once from the spool, so waiting
 * loses nothing; the spool's begin records, not shipping, are what statements wait for.
 */
const LINGER_MS = 50;

export class Shipper {
  private stopped = false;
  private wake: (() => void) | null = null;
  private running: Promise<void> | null = null;
  private failures = 0;
  /** Events in the last batch shipped (the linger decision). */
  private lastBatchEvents = 0;
  /** Gathering events after a small batch: new events do not wake the shipper meanwhile. */
  private lingering = false;
  private readonly maxBatchBytes: number;
  private readonly maxBatchEvents: number;
  private readonly deadLetters: DeadLetterStore;
  private deadInBatch = 0;
  private refreshedInBatch = false;
  private readonly endpoint: URL;
  private readonly agent: HttpAgent | HttpsAgent;
  private readonly tokenFile: TokenFile;
  /** Signs each batch's head with this process's key for the stream. */
  private readonly signer = new StreamSigner();
  /** The last error, for logs and tests. */
  lastError: string | null = null;

  constructor(
    private readonly spool: Spool,
    private readonly options: ShipperOptions,
    private readonly metrics: SidecarMetrics,
    private readonly logger: Logger,
    private readonly hooks: ShipperHooks,
  ) {
    this.endpoint = new URL('/v1/events', options.url);
    this.maxBatchBytes = options.maxBatchBytes ?? 1024 * 1024;
    this.maxBatchEvents = options.maxBatchEvents ?? 1000;
    this.deadLetters = new DeadLetterStore(join(spool.dir, 'dead-letter'));
    this.tokenFile = new TokenFile(options.tokenFile);
    this.agent = this.endpoint.protocol === 'https:' ? httpsAgent(options) : new HttpAgent({ keepAlive: true });
  }

  start(): void {
    this.spool.onEvents = () => {
      if (!this.lingering) this.wake?.();
    };
    this.running = this.loop();
  }

  /** Stops after the batch in flight; what is not acknowledged stays in the spool for next time. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.running;
    this.agent.destroy();
  }

  /** Ships until everything written so far is acknowledged, or the deadline passes. */
  async drain(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const { events } = await this.spool.readEvents(this.spool.acknowledged, 1);
      if (events.count === 0) return true;
      if (Date.now() > deadline) return false;
      // Hurry an idle shipper along; one backing off from failures keeps its pace.
      if (this.failures === 0) this.wake?.();
      await sleep(20);
    }
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      let shipped: boolean;
      try {
        shipped = await this.shipOnce();
      } catch (e) {
        // The spool or the dead-letter directory could not be read or written (a full disk):
        // nothing is acknowledged, and it is tried again after a pause.
        this.fail(`shipping stopped on a local error: ${(e as Error).message}`);
        shipped = false;
      }
      if (shipped) {
        if (this.lastBatchEvents > 0 && this.lastBatchEvents < this.maxBatchEvents / 2 && !this.stopped) {
          this.lingering = true;
          await this.idle(LINGER_MS);
          this.lingering = false;
        }
        continue;
      }
      this.failures += 1;
      const delay = Math.random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** Math.min(this.failures, 16));
      await this.idle(delay);
    }
  }

  /** Ships the next batch: true when it was acknowledged, false to back off and retry. */
  private async shipOnce(): Promise<boolean> {
    const from = this.spool.acknowledged;
    const { events, next, oldestWrittenAt } = await this.spool.readEvents(from, this.maxBatchBytes);
    this.metrics.oldestUnshipped.set(oldestWrittenAt === null ? 0 : (Date.now() - oldestWrittenAt) / 1000);
    if (events.count === 0) {
      this.lastBatchEvents = 0;
      // Only begin, session or chain records so far: nothing to send, but move past them.
      if (next.segment !== from.segment || next.offset !== from.offset) this.spool.acknowledge(next);
      await this.idle(IDLE_POLL_MS);
      return true;
    }
    this.deadInBatch = 0;
    this.refreshedInBatch = false;
    const answer = await deliver(
      events,
      { maxBatchBytes: this.maxBatchBytes, maxBatchEvents: this.maxBatchEvents },
      { send: (batch) => this.post(batch), deadLetter: (line, refusal) => this.deadLetter(line, refusal) },
    );
    if (answer.kind !== 'ok') return false;
    this.spool.acknowledge(next, events.count);
    this.lastBatchEvents = events.count;
    this.metrics.eventsShipped.inc(events.count - this.deadInBatch);
    this.metrics.unshippedEvents.set(this.spool.unshipped);
    if (this.failures > 0) this.logger.info({ after: this.failures }, 'collector reachable again; shipping resumed');
    this.failures = 0;
    this.lastError = null;
    return true;
  }

  /**
   * One event the collector will never take: kept in the dead-letter directory and recorded in
   * the trail by a `spool.deadLettered` event (unless it is such an event itself: no endless loop).
   */
  private async deadLetter(line: string, refusal: Extract<Answer, { kind: 'refused' }>): Promise<void> {
    // Once per batch is enough: the answer holds for the events after it.
    if (refusal.identity && !this.refreshedInBatch) {
      this.refreshedInBatch = true;
      await this.hooks.refreshIdentity();
    }
    let key: { id: string; seq: number; hash: string; type: string } | null = null;
    try {
      const e = JSON.parse(line) as { id: string; type: string; chain: { seq: number; hash: string } };
      key = { id: e.id, seq: e.chain.seq, hash: e.chain.hash, type: e.type };
    } catch {
      // kept all the same, under a name that says so
    }
    const entry = this.deadLetters.put(line, { seq: key?.seq ?? null, id: key?.id ?? null }, refusal);
    this.deadInBatch += 1;
    if (!entry.fresh) return;
    const reason = refusal.identity ? 'identity' : refusal.status === 413 ? 'too-large' : 'invalid';
    this.metrics.deadLettered.inc({ reason });
    this.logger.error(
      { event: key, file: join(this.deadLetters.dir, entry.file), status: refusal.status, answer: refusal.message },
      'the collector refused an event for good; it is kept in the dead-letter directory and shipping goes on',
    );
    if (key?.type === 'spool.deadLettered') return;
    await this.hooks.record({
      events: key ? [{ hash: key.hash, id: key.id, seq: key.seq, type: key.type }] : [],
      file: entry.file,
      kind: 'spool.deadLettered',
      reason: refusal.message,
      status: refusal.status,
    });
  }

  private idle(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = () => {
        this.wake = null;
        done();
      };
    });
  }

  private async post(events: EventRun): Promise<Answer> {
    this.metrics.shipAttempts.inc();
    let token: string;
    try {
      token = await this.tokenFile.token();
    } catch (e) {
      return Promise.resolve(
        this.retry(
          'unauthorized',
          `cannot read the collector token file ${this.options.tokenFile}: ${(e as Error).message}`,
        ),
      );
    }
    const body = events.body;
    const send = this.endpoint.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve) => {
      const req = send(
        this.endpoint,
        {
          method: 'POST',
          agent: this.agent,
          timeout: this.options.requestTimeoutMs ?? 30_000,
          headers: {
            authorization: `Bearer ${token}`,
            'content-type': 'application/x-ndjson',
            'content-length': body.length,
            [SIGNED_HEAD_HEADER]: this.signer.headerFor([events.line(events.count - 1)]),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const answer = classifyAnswer(res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8'));
            if (res.statusCode === 401 || res.statusCode === 403) this.tokenFile.forget();
            if (answer.kind === 'retry') return resolve(this.retry(answer.reason, answer.message));
            if (answer.kind === 'refused') this.metrics.shipFailures.inc({ reason: 'refused' });
            resolve(answer);
          });
          res.on('error', (e) => resolve(this.retry('unreachable', `collector response failed: ${e.message}`)));
        },
      );
      req.on('timeout', () => req.destroy(new Error('request timed out')));
      req.on('error', (e) =>
        resolve(this.retry('unreachable', `cannot reach the collector at ${this.endpoint.origin}: ${e.message}`)),
      );
      req.end(body);
    });
  }

  private retry(reason: RetryReason, message: string): Answer {
    this.metrics.shipFailures.inc({ reason });
    this.fail(message);
    return { kind: 'retry', reason, message };
  }

  private fail(reason: string): void {
    // Log the first failure of a run loudly, then only when the reason changes.
    if (reason !== this.lastError)
      this.logger.warn({ reason, failures: this.failures }, 'shipping to the collector failed');
    this.lastError = reason;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** The keep-alive agent for an https collector; an unreadable caFile fails the sidecar's start, naming it. */
function httpsAgent(trust: CollectorTrust): HttpsAgent {
  const result = collectorCa(trust);
  if ('error' in result) throw new Error(`collector sink: ${result.error}`);
  return new HttpsAgent({ keepAlive: true, ...(result.ca !== undefined ? { ca: result.ca } : {}) });
}
