/**
 * The per-stream hash chain (shared/DESIGN.md, "Identity and trust"): `chain.hash` is the hex
 * SHA-256 of the event's RFC 8785 canonical JSON with `chain.hash` left out; `chain.prev` is the
 * previous event's hash in the same stream (null for the first); `chain.seq` counts up from 1.
 */
import * as crypto from 'node:crypto';
import type { AuditEvent, UnchainedEvent } from './audit-event.js';
import { canonicalJson } from './canonical-json.js';

type WithoutHash = Omit<AuditEvent, 'chain'> & { chain: Omit<AuditEvent['chain'], 'hash'> };

// One-shot crypto.hash (Node ≥ 20.12) skips the Hash object; about a third cheaper per event.
const oneShot = (crypto as { hash?: (algorithm: string, data: string, encoding: 'hex') => string }).hash;

function sha256(text: string): string {
  return oneShot ? oneShot('sha256', text, 'hex') : crypto.createHash('sha256').update(text).digest('hex');
}

/** The event's fields in canonical (sorted) key order, with `chain` as given. */
function inCanonicalOrder<C>(e: UnchainedEvent, chain: C) {
  return {
    authz: e.authz,
    chain,
    context: e.context,
    id: e.id,
    identity: e.identity,
    // Only on incident events; absent (not undefined) elsewhere keeps the fast canonical path.
    ...(e.incident === undefined ? null : { incident: e.incident }),
    result: e.result,
    session: e.session,
    statement: e.statement,
    target: e.target,
    time: e.time,
    type: e.type,
    v: e.v,
  };
}

/** The hash an event must carry: over its canonical JSON without `chain.hash`. */
export function chainHash(event: WithoutHash | AuditEvent): string {
  const { chain } = event;
  return sha256(canonicalJson(inCanonicalOrder(event, { prev: chain.prev, seq: chain.seq, stream: chain.stream })));
}

/** A chained event and its canonical JSON text (the form it is stored and shipped in). */
export interface ChainedEvent {
  event: AuditEvent;
  json: string;
}

/** Appends events to one stream, keeping the position so a restart can continue it. */
export class ChainWriter {
  constructor(
    readonly stream: string,
    private seq = 0,
    private prev: string | null = null,
  ) {}

  /**
   * Chains one event. The canonical text is computed once: the hash is taken over it, then
   * `"hash"` — the first key of `chain` in canonical order — is spliced in.
   */
  append(event: UnchainedEvent): ChainedEvent {
    return this.chain(event, canonicalJson);
  }

  /**
   * The same for an event whose nested objects are already in canonical key order (the sidecar's
   * EventBuilder builds them so, and its tests check it): skips the order check on the hot path.
   */
  appendCanonical(event: UnchainedEvent): ChainedEvent {
    return this.chain(event, JSON.stringify);
  }

  private chain(event: UnchainedEvent, serialize: (v: unknown) => string): ChainedEvent {
    this.seq += 1;
    const chain = { prev: this.prev, seq: this.seq, stream: this.stream };
    const text = serialize(inCanonicalOrder(event, chain));
    const hash = sha256(text);
    // `"chain":{` cannot occur inside a JSON string (its quotes would be escaped), so the first
    // occurrence is the chain object itself.
    const at = text.indexOf('"chain":{') + 9;
    this.prev = hash;
    return {
      event: inCanonicalOrder(event, { hash, ...chain }),
      json: `${text.slice(0, at)}"hash":"${hash}",${text.slice(at)}`,
    };
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
