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
 * Reads the collector's answer. 400 and 413 are about the batch's content or size; 403 is too when
 * it names the events whose identity the writer may not write (`problems`), and otherwise means the
 * token itself may not write (a configuration problem, retried). Anything else is retried.
 */
export function classifyAnswer(status: number, body: string): Answer {
  if (status >= 200 && status < 300) return { kind: 'ok' };
  const message = `collector answered ${status}: ${body.slice(0, 500)}`;
  if (status === 400 || status === 413) return { kind: 'refused', status, message, identity: false };
  if (status === 403) {
    let problems: { reason?: unknown }[] = [];
    try {
      const parsed = JSON.parse(body) as { problems?: unknown };
      if (Array.isArray(parsed.problems)) problems = parsed.problems as { reason?: unknown }[];
    } catch {
      // not the collector's JSON: not about the events
    }
    if (problems.length > 0 && problems.every((p) => p.reason === 'identity')) {
      return { kind: 'refused', status, message, identity: true };
    }
    return { kind: 'retry', reason: 'unauthorized', message };
  }
  if (status === 401) return { kind: 'retry', reason: 'unauthorized', message };
  return { kind: 'retry', reason: status >= 500 || status === 429 ? 'server' : 'rejected', message };
}

export interface DeliverLimits {
  maxBatchBytes: number;
  maxBatchEvents: number;
}

export interface DeliverPorts {
  send(lines: readonly string[]): Promise<Answer>;
  /** Keeps a refused event out of the way, durably, and records that it did. */
  deadLetter(line: string, refusal: Extract<Answer, { kind: 'refused' }>): Promise<void>;
}

/**
 * Sends `lines` in chunks; resolves `ok` when every event was stored or dead-lettered, or with the
 * retry answer that stopped it (earlier chunks stay stored: the collector ignores repeats).
 */
export async function deliver(
  lines: readonly string[],
  limits: DeliverLimits,
  ports: DeliverPorts,
): Promise<Answer & { kind: 'ok' | 'retry' }> {
  let start = 0;
  while (start < lines.length) {
    let end = start;
    let bytes = 0;
    // At least one event per chunk, whatever its size.
    while (end < lines.length && end - start < limits.maxBatchEvents) {
      const size = Buffer.byteLength(lines[end]!, 'utf8') + 1;
      if (end > start && bytes + size > limits.maxBatchBytes) break;
      bytes += size;
      end++;
    }
    const answer = await sendNarrowing(lines, start, end, ports);
    if (answer.kind !== 'ok') return answer;
    start = end;
  }
  return { kind: 'ok' };
}

async function sendNarrowing(
  lines: readonly string[],
  lo: number,
  hi: number,
  ports: DeliverPorts,
): Promise<Answer & { kind: 'ok' | 'retry' }> {
  const answer = await ports.send(lines.slice(lo, hi));
  if (answer.kind !== 'refused') return answer;
  if (hi - lo === 1) {
    await ports.deadLetter(lines[lo]!, answer);
    return { kind: 'ok' };
  }
  const mid = lo + Math.ceil((hi - lo) / 2);
  const first = await sendNarrowing(lines, lo, mid, ports);
  if (first.kind !== 'ok') return first;
  return sendNarrowing(lines, mid, hi, ports);
}
