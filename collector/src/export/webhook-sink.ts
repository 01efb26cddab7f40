/**
 * The webhook sink: POSTs each batch to a SIEM's HTTP collector, the events exactly as stored
 * (canonical JSON, so a receiver can re-check the chain), as NDJSON or a JSON array. The request
 * says which events it carries (`X-Byline-First-Event`, `X-Byline-Last-Event`); each event's `id`
 * is the key a receiver drops repeats by.
 */
import type { StoredEvent } from '../store/types.js';
import { DeliveryError, isPermanentStatus, type Sink } from './sink.js';

export interface WebhookSinkOptions {
  url: string;
  headers: Record<string, string>;
  format: 'ndjson' | 'json';
  timeoutMs: number;
}

export class WebhookSink implements Sink {
  constructor(private readonly o: WebhookSinkOptions) {}

  async deliver(events: readonly StoredEvent[]): Promise<void> {
    const body =
      this.o.format === 'json'
        ? `[${events.map((e) => e.json).join(',')}]`
        : `${events.map((e) => e.json).join('\n')}\n`;
    let res: Response;
    try {
      res = await fetch(this.o.url, {
        method: 'POST',
        headers: {
          ...this.o.headers,
          'content-type': this.o.format === 'json' ? 'application/json' : 'application/x-ndjson',
          'x-byline-first-event': events[0]!.key.id,
          'x-byline-last-event': events[events.length - 1]!.key.id,
        },
        body,
        signal: AbortSignal.timeout(this.o.timeoutMs),
      });
    } catch (e) {
      const cause = (e as Error & { cause?: Error }).cause?.message ?? (e as Error).message;
      throw new DeliveryError(`cannot reach ${new URL(this.o.url).origin}: ${cause}`, false);
    }
    const text = await res.text().catch(() => '');
    if (res.ok) return;
    throw new DeliveryError(`HTTP ${res.status}: ${text.slice(0, 200).trim()}`, isPermanentStatus(res.status));
  }

  async close(): Promise<void> {}
}
