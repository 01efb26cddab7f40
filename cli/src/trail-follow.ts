/**
 * `byline trail --follow`: prints events as the collector stores them, in the order it stored
 * them, until interrupted (or `--limit` events). It holds the collector's resume cursor, so when
 * the collector restarts or is unreachable it retries with backoff and carries on from exactly
 * where it was: nothing printed twice, nothing missed.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { AuditEvent } from '@byline/api';
import { type CollectorClient, CollectorUnavailable } from './collector-client.js';

export interface FollowOptions {
  filters: Record<string, string | undefined>;
  /** Start at the first stored event (when a --since is given) or after everything stored now. */
  from: 'start' | 'end';
  limit: number;
  print: (event: AuditEvent) => void;
  /** Told about each outage and each retry. */
  warn: (message: string) => void;
  signal?: AbortSignal;
  waitSeconds?: number;
  /** Longest pause between retries (default 5 s). */
  maxBackoffMs?: number;
}

export async function followTrail(client: CollectorClient, o: FollowOptions): Promise<number> {
  let position: { cursor: string } | { from: 'start' | 'end' } = { from: o.from };
  let printed = 0;
  let backoff = 250;
  const maxBackoff = o.maxBackoffMs ?? 5000;
  while (printed < o.limit && !o.signal?.aborted) {
    let page: Awaited<ReturnType<CollectorClient['followPage']>>;
    try {
      page = await client.followPage(o.filters, position, o.waitSeconds ?? 25, o.signal);
    } catch (e) {
      if (o.signal?.aborted) break;
      if (!(e instanceof CollectorUnavailable)) throw e;
      o.warn(`${e.message}; retrying in ${(backoff / 1000).toFixed(1)} s`);
      await sleep(backoff, undefined, o.signal ? { signal: o.signal } : {}).catch(() => {});
      backoff = Math.min(backoff * 2, maxBackoff);
      continue;
    }
    backoff = 250;
    for (const item of page.events) {
      if (printed >= o.limit) break;
      o.print(item.event);
      printed++;
    }
    position = { cursor: page.nextCursor };
  }
  return printed;
}
