/**
 * Ships finished events from the spool to the collector: batches read back from disk, POSTed as
 * NDJSON, retried with exponential backoff and full jitter, and the spool's checkpoint advanced
 * only once the collector has acknowledged a batch. At least once; the collector stores each
 * event id once.
 */
import { readFileSync } from 'node:fs';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { SIGNED_HEAD_HEADER } from '@byline/api';
import type { Logger } from 'pino';
import { StreamSigner } from '../audit/stream-signer.js';
import type { SidecarMetrics } from '../metrics.js';
import type { Spool } from '../spool/spool.js';

export interface ShipperOptions {
  url: string;
  tokenFile: string;
  caFile?: string;
  /** Largest batch, in bytes of spool records (halved while the collector answers 413). */
  maxBatchBytes?: number;
  requestTimeoutMs?: number;
}

const BACKOFF_BASE_MS = 250;
// Capped low: while the spool is full, statements are refused until the collector is back, so
// the shipper must notice its return within seconds.
const BACKOFF_CAP_MS = 5_000;
const IDLE_POLL_MS = 1000;

export class Shipper {
  private stopped = false;
  private wake: (() => void) | null = null;
  private running: Promise<void> | null = null;
  private failures = 0;
  private maxBatchBytes: number;
  private readonly endpoint: URL;
  private readonly agent: HttpAgent | HttpsAgent;
  /** Signs each batch's head with this process's key for the stream. */
  private readonly signer = new StreamSigner();
  /** The last error, for logs and tests. */
  lastError: string | null = null;

  constructor(
    private readonly spool: Spool,
    private readonly options: ShipperOptions,
    private readonly metrics: SidecarMetrics,
    private readonly logger: Logger,
  ) {
    this.endpoint = new URL('/v1/events', options.url);
    this.maxBatchBytes = options.maxBatchBytes ?? 1024 * 1024;
    this.agent =
      this.endpoint.protocol === 'https:'
        ? new HttpsAgent({ keepAlive: true, ...(options.caFile ? { ca: readFileSync(options.caFile) } : {}) })
        : new HttpAgent({ keepAlive: true });
  }

  start(): void {
    this.spool.onEvents = () => this.wake?.();
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
      const { lines } = this.spool.readEvents(this.spool.acknowledged, 1);
      if (lines.length === 0) return true;
      if (Date.now() > deadline) return false;
      this.wake?.();
      await sleep(20);
    }
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      const from = this.spool.acknowledged;
      const { lines, next, oldestWrittenAt } = this.spool.readEvents(from, this.maxBatchBytes);
      this.metrics.oldestUnshipped.set(oldestWrittenAt === null ? 0 : (Date.now() - oldestWrittenAt) / 1000);
      if (lines.length === 0) {
        // Only begin, session or chain records so far: nothing to send, but move past them.
        if (next.segment !== from.segment || next.offset !== from.offset) this.spool.acknowledge(next);
        await this.idle(IDLE_POLL_MS);
        continue;
      }
      this.metrics.shipAttempts.inc();
      const outcome = await this.post(lines);
      if (outcome === 'ok') {
        this.spool.acknowledge(next);
        this.metrics.eventsShipped.inc(lines.length);
        if (this.failures > 0)
          this.logger.info({ after: this.failures }, 'collector reachable again; shipping resumed');
        this.failures = 0;
        this.lastError = null;
        continue;
      }
      this.metrics.shipFailures.inc({ reason: outcome });
      if (outcome === 'too-large' && this.maxBatchBytes > 1) {
        this.maxBatchBytes = Math.max(1, Math.floor(this.maxBatchBytes / 2));
        continue;
      }
      this.failures += 1;
      const delay = Math.random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** Math.min(this.failures, 16));
      await this.idle(delay);
    }
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

  private post(lines: string[]): Promise<'ok' | 'unreachable' | 'rejected' | 'unauthorized' | 'too-large' | 'server'> {
    let token: string;
    try {
      token = readFileSync(this.options.tokenFile, 'utf8').trim();
    } catch (e) {
      this.fail(`cannot read the collector token file ${this.options.tokenFile}: ${(e as Error).message}`);
      return Promise.resolve('unauthorized');
    }
    const body = Buffer.from(`${lines.join('\n')}\n`, 'utf8');
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
            [SIGNED_HEAD_HEADER]: this.signer.headerFor(lines),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const status = res.statusCode ?? 0;
            if (status >= 200 && status < 300) return resolve('ok');
            const text = Buffer.concat(chunks).toString('utf8').slice(0, 500);
            this.fail(`collector answered ${status}: ${text}`);
            if (status === 413) return resolve('too-large');
            if (status === 401 || status === 403) return resolve('unauthorized');
            resolve(status >= 500 ? 'server' : 'rejected');
          });
          res.on('error', (e) => {
            this.fail(`collector response failed: ${e.message}`);
            resolve('unreachable');
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error('request timed out')));
      req.on('error', (e) => {
        this.fail(`cannot reach the collector at ${this.endpoint.origin}: ${e.message}`);
        resolve('unreachable');
      });
      req.end(body);
    });
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
