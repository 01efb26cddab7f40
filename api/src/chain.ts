/**
 * The per-stream hash chain (shared/DESIGN.md, "Identity and trust"): `chain.hash` is the hex
 * SHA-256 of the event's RFC 8785 canonical JSON with `chain.hash` left out; `chain.prev` is the
 * previous event's hash in the same stream (null for the first); `chain.seq` counts up from 1.
 */
import { createHash } from 'node:crypto';
import type { AuditEvent, UnchainedEvent } from './audit-event.js';
import { canonicalJson } from './canonical-json.js';

export function chainHash(event: Omit<AuditEvent, 'chain'> & { chain: Omit<AuditEvent['chain'], 'hash'> }): string {
  const { chain, ...rest } = event;
  const withoutHash = { ...rest, chain: { stream: chain.stream, seq: chain.seq, prev: chain.prev } };
  return createHash('sha256').update(canonicalJson(withoutHash)).digest('hex');
}

/** Appends events to one stream, keeping the position so a restart can continue it. */
export class ChainWriter {
  constructor(
    readonly stream: string,
    private seq = 0,
    private prev: string | null = null,
  ) {}

  append(event: UnchainedEvent): AuditEvent {
    this.seq += 1;
    const partial = { ...event, chain: { stream: this.stream, seq: this.seq, prev: this.prev } };
    const hash = chainHash(partial);
    this.prev = hash;
    return { ...event, chain: { ...partial.chain, hash } };
  }

  get position(): { seq: number; prev: string | null } {
    return { seq: this.seq, prev: this.prev };
  }
}

export type ChainProblem =
  | { kind: 'edited'; event: AuditEvent }
  | { kind: 'gap'; event: AuditEvent; expectedSeq: number }
  | { kind: 'broken-link'; event: AuditEvent };

/** Checks one stream's events, in `chain.seq` order, and names the first problem. */
export function verifyStream(events: readonly AuditEvent[]): ChainProblem | undefined {
  let expectedSeq = events[0]?.chain.seq ?? 1;
  let prev: string | null | undefined = events[0]?.chain.seq === 1 ? null : undefined;
  for (const event of events) {
    if (chainHash(event) !== event.chain.hash) return { kind: 'edited', event };
    if (event.chain.seq !== expectedSeq) return { kind: 'gap', event, expectedSeq };
    if (prev !== undefined && event.chain.prev !== prev) return { kind: 'broken-link', event };
    prev = event.chain.hash;
    expectedSeq += 1;
  }
  return undefined;
}
