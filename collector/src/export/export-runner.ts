/**
 * Runs one exporter: follows the store in insertion order from the exporter's durable position,
 * delivers a batch, and saves the position after the batch only once the receiver took it. So
 * delivery is at least once (a crash between delivery and save sends the batch again; receivers
 * drop repeats by event `id`) and in store order, which within a stream is chain order.
 *
 * A batch the receiver cannot take now (down, 5xx, 429, timeout) is retried as is, with doubling
 * pauses up to `maxBackoffMs`, for as long as it takes: an outage delays export, it never drops
 * events. A batch the receiver refuses as such (4xx) is retried one event at a time; the events
 * refused on their own are recorded as dead letters (with the reason) and export moves on.
 */
import type { Logger } from 'pino';
import type { FollowPosition } from '../store/follow-types.js';
import type { EventStore, StoredEvent } from '../store/types.js';
import { DeliveryError, type Sink } from './sink.js';

export interface ExportRunnerOptions {
  name: string;
  store: EventStore;
  sink: Sink;
  logger: Logger;
  batchSize: number;
  startAt: 'start' | 'end';
  /** Pause when the store has nothing new (default 500 ms). */
  idleMs?: number;
  /** First retry pause (default 500 ms), doubled per failure up to maxBackoffMs. */
  initialBackoffMs?: number;
  maxBackoffMs: number;
  /** Told after each batch is delivered (for metrics). */
  onDelivered?: (count: number) => void;
  onDeadLetters?: (count: number) => void;
  onFailure?: () => void;
}

export class ExportRunner {
  private readonly stopping = new AbortController();
  private loop: Promise<void> | undefined;

  constructor(private readonly o: ExportRunnerOptions) {}

  start(): this {
    this.loop ??= this.run().catch((e) => {
      this.o.logger.error({ err: e, exporter: this.o.name }, 'exporter stopped on an unexpected error');
    });
    return this;
  }

  /** Stops after the request in flight (its batch is sent again next time if not yet saved). */
  async stop(): Promise<void> {
    this.stopping.abort();
    await this.loop;
    await this.o.sink.close();
  }

  private get stopped(): boolean {
    return this.stopping.signal.aborted;
  }

  private async run(): Promise<void> {
    const { store, name } = this.o;
    let position = await this.retrying('read the saved position', () => store.exportPosition(name));
    if (position === undefined) {
      if (this.stopped) return;
      position =
        this.o.startAt === 'end' ? await this.retrying('find the end', () => store.followEnd()) : { tx: '0', ord: 0 };
      // Saved at once, so retention knows from the start what this exporter still owes.
      const start = position;
      if (!start) return;
      const saved = await this.retrying('save the position', () =>
        store.saveExportPosition(name, start).then(() => true),
      );
      if (!saved) return;
    }
    while (!this.stopped && position) {
      const from: FollowPosition = position;
      const page = await this.retrying('read the store', () => store.follow({}, from, this.o.batchSize));
      if (!page) return;
      if (page.events.length > 0) {
        const delivered = await this.deliver(page.events);
        if (!delivered) return;
      } else if (page.position.ord === from.ord && page.position.tx === from.tx) {
        await this.pause(this.o.idleMs ?? 500);
        continue;
      }
      const saved = await this.retrying('save the position', () =>
        store.saveExportPosition(name, page.position).then(() => true),
      );
      if (!saved) return;
      position = page.position;
    }
  }

  /** Delivers the batch (dead-lettering what is refused for good); false when stopped first. */
  private async deliver(events: readonly StoredEvent[]): Promise<boolean> {
    const outcome = await this.attempt(events);
    if (outcome === 'stopped') return false;
    if (outcome === 'delivered') {
      this.o.onDelivered?.(events.length);
      return true;
    }
    // Refused as a whole: find the events refused on their own, deliver the rest in order.
    for (const e of events) {
      const one = events.length === 1 ? outcome : await this.attempt([e]);
      if (one === 'stopped') return false;
      if (one === 'delivered') {
        this.o.onDelivered?.(1);
        continue;
      }
      const error = one.message;
      const recorded = await this.retrying('record a dead letter', () =>
        this.o.store.recordDeadLetters(this.o.name, [e.key.id], error, 1).then(() => true),
      );
      if (!recorded) return false;
      this.o.onDeadLetters?.(1);
      this.o.logger.warn(
        { exporter: this.o.name, event: e.key.id, error },
        'the receiver refused an event; dead-lettered',
      );
    }
    return true;
  }

  /** Sends until taken or refused for good, retrying what may work later. */
  private async attempt(events: readonly StoredEvent[]): Promise<'delivered' | 'stopped' | DeliveryError> {
    let backoff = this.o.initialBackoffMs ?? 500;
    for (let attempt = 1; !this.stopped; attempt++) {
      try {
        await this.o.sink.deliver(events);
        return 'delivered';
      } catch (e) {
        const error = e instanceof DeliveryError ? e : new DeliveryError((e as Error).message, false);
        if (error.permanent) return error;
        this.o.onFailure?.();
        this.o.logger.warn(
          { exporter: this.o.name, attempt, events: events.length, error: error.message, retryInMs: backoff },
          'export delivery failed; retrying',
        );
        await this.pause(backoff);
        backoff = Math.min(backoff * 2, this.o.maxBackoffMs);
      }
    }
    return 'stopped';
  }

  /** Store calls retried while the store is away (undefined once stopped). */
  private async retrying<T>(what: string, work: () => Promise<T>): Promise<T | undefined> {
    let backoff = this.o.initialBackoffMs ?? 500;
    while (!this.stopped) {
      try {
        return await work();
      } catch (e) {
        this.o.logger.error({ err: e, exporter: this.o.name }, `exporter could not ${what}; retrying`);
        await this.pause(backoff);
        backoff = Math.min(backoff * 2, this.o.maxBackoffMs);
      }
    }
    return undefined;
  }

  private pause(ms: number): Promise<void> {
    const signal = this.stopping.signal;
    return new Promise((resolve) => {
      if (signal.aborted) return resolve();
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
    });
  }
}
