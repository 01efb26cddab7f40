import type { EventRun } from '../spool/event-run.js';

/**
 * Delivering a run of events to the collector, as the shipper's pure core (the HTTP request and
 * the dead-letter store are passed in): chunks within the batch limits, and a refusal that
 * retrying cannot fix is narrowed down by splitting until the events at fault stand alone, and
 * only those are dead-lettered. One bad event never holds back, nor takes down, 499 good ones.
 */

/** What one request came to. */
export type Answer =
  | { kind: 'ok' }
  /** Nothing wrong with these events; try again later (collector away, overloaded, misconfigured). */
  | { kind: 'retry'; reason: RetryReason; message: string }
  /** The collector will never take this batch as it is (schema, hash, size, identity). */
  | { kind: 'refused'; status: number; message: string; identity: boolean };

export type RetryReason = 'unreachable' | 'unauthorized' | 'server' | 'rejected';

/**
 * Reads the collector's answer. Only the collector's own refusals are final: a 400 or 403 whose
 * JSON body lists the lines at fault (`problems`; for 403 every one an identity the writer may not
 * write), or a 413 in its JSON. Anything else — 401, a 403 for the token itself, 5xx, or an answer
 * that is not the collector's (a proxy's HTML error page) — is retried, never dead-lettered.
 */
export function classifyAnswer(status: number, body: string): Answer {
  if (status >= 200 && status < 300) return { kind: 'ok' };
  const message = `collector answered ${status}: ${body.slice(0, 500)}`;
  const answer = collectorError(body);
  if (answer) {
    const problems = answer.problems ?? [];
    if (status === 413) return { kind: 'refused', status, message, identity: false };
    if (status === 400 && problems.length > 0) return { kind: 'refused', status, message, identity: false };
    if (status === 403 && problems.length > 0 && problems.every((p) => p.reason === 'identity')) {
      return { kind: 'refused', status, message, identity: true };
    }
  }
  if (status === 401 || status === 403) return { kind: 'retry', reason: 'unauthorized', message };
  return { kind: 'retry', reason: status >= 500 || status === 429 ? 'server' : 'rejected', message };
}

/** The collector's error body (`{ error, problems? }`), or null when the body is something else. */
function collectorError(body: string): { error: string; problems?: { reason?: unknown }[] } | null {
  try {
    const parsed = JSON.parse(body) as { error?: unknown; problems?: unknown };
    if (typeof parsed?.error !== 'string') return null;
    if (parsed.problems !== undefined && !Array.isArray(parsed.problems)) return null;
    return parsed as { error: string; problems?: { reason?: unknown }[] };
  } catch {
    return null;
  }
}

export interface DeliverLimits {
  maxBatchBytes: number;
  maxBatchEvents: number;
}

export interface DeliverPorts {
  send(events: EventRun): Promise<Answer>;
  /** Keeps a refused event out of the way, durably, and records that it did. */
  deadLetter(line: string, refusal: Extract<Answer, { kind: 'refused' }>): Promise<void>;
}

/**
 * Sends `events` in chunks; resolves `ok` when every event was stored or dead-lettered, or with the
 * retry answer that stopped it (earlier chunks stay stored: the collector ignores repeats).
 */
export async function deliver(
  events: EventRun,
  limits: DeliverLimits,
  ports: DeliverPorts,
): Promise<Answer & { kind: 'ok' | 'retry' }> {
  let start = 0;
  while (start < events.count) {
    let end = start;
    let bytes = 0;
    // At least one event per chunk, whatever its size.
    while (end < events.count && end - start < limits.maxBatchEvents) {
      const size = events.bytes(end);
      if (end > start && bytes + size > limits.maxBatchBytes) break;
      bytes += size;
      end++;
    }
    const answer = await sendNarrowing(events, start, end, ports);
    if (answer.kind !== 'ok') return answer;
    start = end;
  }
  return { kind: 'ok' };
}

async function sendNarrowing(
  events: EventRun,
  lo: number,
  hi: number,
  ports: DeliverPorts,
): Promise<Answer & { kind: 'ok' | 'retry' }> {
  const answer = await ports.send(events.slice(lo, hi));
  if (answer.kind !== 'refused') return answer;
  if (hi - lo === 1) {
    await ports.deadLetter(events.line(lo), answer);
    return { kind: 'ok' };
  }
  const mid = lo + Math.ceil((hi - lo) / 2);
  const first = await sendNarrowing(events, lo, mid, ports);
  if (first.kind !== 'ok') return first;
  return sendNarrowing(events, mid, hi, ports);
}
