/**
 * A work queue of keys, like client-go's: a key waiting is never queued twice; a key being worked
 * on is not handed to a second worker but marked dirty and run again after; a failed key comes back
 * after a per-key exponential backoff (with jitter) that resets when it succeeds.
 */
export interface WorkQueueOptions {
  concurrency?: number;
  backoff?: { initialMs?: number; maxMs?: number };
  random?: () => number;
  onError?: (key: string, err: unknown, retryInMs: number) => void;
}

export class WorkQueue {
  private readonly pending: string[] = [];
  private readonly queued = new Set<string>();
  private readonly active = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly retryTimers = new Map<string, ReturnType<typeof setTimeout>>();
  private readonly concurrency: number;
  private readonly initialMs: number;
  private readonly maxMs: number;
  private readonly random: () => number;
  private running = false;
  private workers = 0;
  private idleWaiters: Array<() => void> = [];

  constructor(
    private readonly work: (key: string) => Promise<void>,
    private readonly options: WorkQueueOptions = {},
  ) {
    this.concurrency = options.concurrency ?? 2;
    this.initialMs = options.backoff?.initialMs ?? 500;
    this.maxMs = options.backoff?.maxMs ?? 60_000;
    this.random = options.random ?? Math.random;
  }

  get depth(): number {
    return this.pending.length;
  }

  start(): void {
    this.running = true;
    this.pump();
  }

  /** Stops handing out keys and forgets everything queued; work already running finishes. */
  stop(): void {
    this.running = false;
    this.pending.length = 0;
    this.queued.clear();
    this.dirty.clear();
    this.failures.clear();
    for (const t of this.retryTimers.values()) clearTimeout(t);
    this.retryTimers.clear();
  }

  add(key: string): void {
    if (!this.running) return;
    if (this.active.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    this.queued.add(key);
    this.pending.push(key);
    this.pump();
  }

  /** Resolves when nothing is queued, running or waiting for a retry (tests). */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  retryDelay(failures: number): number {
    const cap = Math.min(this.maxMs, this.initialMs * 2 ** Math.max(0, failures - 1));
    return Math.floor(cap / 2 + (this.random() * cap) / 2);
  }

  private isIdle(): boolean {
    return this.pending.length === 0 && this.active.size === 0 && this.retryTimers.size === 0;
  }

  private pump(): void {
    while (this.running && this.workers < this.concurrency && this.pending.length > 0) {
      const key = this.pending.shift()!;
      this.queued.delete(key);
      this.active.add(key);
      this.workers++;
      void this.run(key);
    }
    if (this.isIdle()) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  private async run(key: string): Promise<void> {
    try {
      await this.work(key);
      this.failures.delete(key);
    } catch (err) {
      const failures = (this.failures.get(key) ?? 0) + 1;
      this.failures.set(key, failures);
      const delay = this.retryDelay(failures);
      this.options.onError?.(key, err, delay);
      if (this.running && !this.retryTimers.has(key)) {
        const timer = setTimeout(() => {
          this.retryTimers.delete(key);
          this.add(key);
          this.pump();
        }, delay);
        timer.unref?.();
        this.retryTimers.set(key, timer);
      }
    } finally {
      this.active.delete(key);
      this.workers--;
      if (this.dirty.delete(key)) this.add(key);
      this.pump();
    }
  }
}
