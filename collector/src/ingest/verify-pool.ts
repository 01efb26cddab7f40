/**
 * A few worker threads that run `parseBatch` (verify-worker.ts), so the ~14 µs per event of JSON
 * parsing, schema checks, canonical JSON and SHA-256 leave the event loop that serves HTTP and
 * inserts into the store. A whole batch goes to one worker; each worker holds one batch at a time.
 *
 * Backpressure: at most `maxWaiting` batches wait for a worker; past that `verify` fails at once
 * with VerifyBusy (the handler answers 503 with Retry-After), so memory stays bounded however many
 * sidecars post at once. A worker that crashes, exits or throws fails the batch it held with
 * VerifyFailed (a 500, nothing stored: a batch is never accepted unverified) and is replaced when
 * the next batch needs it. Workers start lazily and are unref'd: an idle pool holds no process open.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { ParsedBatch } from './parse-batch.js';
import {
  type VerifyBatch,
  VerifyBusy,
  VerifyFailed,
  type WorkerAnswer,
  type WorkerRequest,
} from './verify-protocol.js';

export interface VerifyPoolOptions {
  /** Worker threads (default: the cores but one for the event loop, 1 to 4). */
  size?: number;
  /** Batches that may wait for a worker (default 8 per worker). */
  maxWaiting?: number;
  /** Starts one worker (default: verify-worker from the build or from sources). Tests pass others. */
  start?: () => Worker;
}

interface Job {
  request: WorkerRequest;
  resolve: (parsed: ParsedBatch) => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  ready: boolean;
  job: Job | undefined;
}

export const DEFAULT_VERIFY_WORKERS = Math.max(1, Math.min(4, availableParallelism() - 1));

export class VerifyPool {
  readonly size: number;
  readonly maxWaiting: number;
  private readonly start: () => Worker;
  private readonly slots: (Slot | undefined)[];
  private readonly waiting: Job[] = [];
  private nextId = 1;
  private closed = false;

  constructor(options: VerifyPoolOptions = {}) {
    this.size = options.size ?? DEFAULT_VERIFY_WORKERS;
    this.maxWaiting = options.maxWaiting ?? 8 * this.size;
    if (!Number.isInteger(this.size) || this.size < 1)
      throw new Error(`VerifyPool: size must be ≥ 1, not ${this.size}`);
    if (!Number.isInteger(this.maxWaiting) || this.maxWaiting < 0)
      throw new Error(`VerifyPool: maxWaiting must be ≥ 0, not ${this.maxWaiting}`);
    this.start = options.start ?? startVerifyWorker;
    this.slots = new Array(this.size).fill(undefined);
  }

  /** The batch's verdict from a worker; rejects with VerifyBusy or VerifyFailed. */
  readonly verify: VerifyBatch = (body, writer, maxEvents) =>
    new Promise<ParsedBatch>((resolve, reject) => {
      if (this.closed) {
        reject(new VerifyFailed('the collector is shutting down'));
        return;
      }
      const job: Job = { request: { id: this.nextId++, body, writer, maxEvents }, resolve, reject };
      const free = this.freeSlot();
      if (free !== -1) this.dispatch(free, job);
      else if (this.waiting.length < this.maxWaiting) this.waiting.push(job);
      else
        reject(
          new VerifyBusy(
            `all ${this.size} verification worker(s) are busy and ${this.maxWaiting} batch(es) are waiting`,
          ),
        );
    });

  /** Stops every worker; batches still waiting or in a worker are refused. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const job of this.waiting.splice(0)) job.reject(new VerifyFailed('the collector is shutting down'));
    const stopping: Promise<number>[] = [];
    for (let i = 0; i < this.slots.length; i++) {
      const slot = this.slots[i];
      if (!slot) continue;
      this.slots[i] = undefined; // its 'exit' then finds it retired
      slot.job?.reject(new VerifyFailed('the collector is shutting down'));
      slot.job = undefined;
      stopping.push(slot.worker.terminate());
    }
    await Promise.all(stopping);
  }

  /** A slot without a batch, started if it has no worker yet; -1 when all are busy. */
  private freeSlot(): number {
    for (let i = 0; i < this.slots.length; i++) {
      const slot = this.slots[i];
      if (slot === undefined || slot.job === undefined) return i;
    }
    return -1;
  }

  private dispatch(i: number, job: Job): void {
    let slot = this.slots[i];
    if (slot === undefined) {
      try {
        slot = this.spawn(i);
      } catch (e) {
        job.reject(new VerifyFailed(`a verification worker could not be started: ${(e as Error).message}`));
        return;
      }
    }
    try {
      slot.worker.postMessage(job.request);
    } catch (e) {
      job.reject(new VerifyFailed(`the batch could not be handed to a verification worker: ${(e as Error).message}`));
      this.next();
      return;
    }
    slot.job = job;
    slot.worker.ref();
  }

  private spawn(i: number): Slot {
    const worker = this.start();
    const slot: Slot = { worker, ready: false, job: undefined };
    worker.unref();
    worker.on('message', (answer: WorkerAnswer) => {
      if (this.slots[i] !== slot) return;
      if ('ready' in answer) {
        slot.ready = true;
        return;
      }
      const job = slot.job;
      if (job === undefined || answer.id !== job.request.id) {
        this.retire(i, slot, 'answered a batch it was not given');
        return;
      }
      slot.job = undefined;
      worker.unref();
      if ('error' in answer) job.reject(new VerifyFailed(`the verification worker failed: ${answer.error}`));
      else job.resolve(answer.parsed);
      this.next();
    });
    worker.on('error', (e) => this.retire(i, slot, `failed: ${e.message}`));
    worker.on('exit', (code) => this.retire(i, slot, `exited with code ${code}`));
    worker.on('messageerror', (e) => this.retire(i, slot, `sent an answer that could not be read: ${e.message}`));
    this.slots[i] = slot;
    return slot;
  }

  /** Drops a worker that broke: its batch is refused, the next batch gets a new worker. */
  private retire(i: number, slot: Slot, what: string): void {
    if (this.slots[i] !== slot) return; // already retired ('error' is followed by 'exit')
    this.slots[i] = undefined;
    // Its listeners stay (they find it retired): an 'error' without a listener would throw.
    void slot.worker.terminate();
    const when = slot.ready ? '' : ' while starting';
    slot.job?.reject(new VerifyFailed(`the verification worker ${what}${when}`));
    slot.job = undefined;
    this.next();
  }

  private next(): void {
    while (this.waiting.length > 0 && !this.closed) {
      const free = this.freeSlot();
      if (free === -1) return;
      this.dispatch(free, this.waiting.shift()!);
    }
  }
}

let workerEntry: URL | undefined;

/**
 * The worker from the compiled build (cli/dist/{chunks,commands}/x.js, or an entry at cli/dist/x.js,
 * → cli/dist/verify-worker.js) or, running from sources (tsx, vitest), verify-worker.ts through a
 * bootstrap that loads tsx. A build without the worker fails each batch naming the missing file.
 */
export function startVerifyWorker(): Worker {
  workerEntry ??= findWorkerEntry();
  return new Worker(workerEntry, { name: 'byline-verify' });
}

function findWorkerEntry(): URL {
  if (import.meta.url.endsWith('.ts')) return new URL('./verify-worker-dev.mjs', import.meta.url);
  const candidates = [new URL('../verify-worker.js', import.meta.url), new URL('./verify-worker.js', import.meta.url)];
  return candidates.find((url) => existsSync(url)) ?? candidates[0]!;
}
