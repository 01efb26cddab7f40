/**
 * Re-checks hash chains from stored events alone, plus what the collector recorded beside them.
 * Each stored event is given with the position the store holds it at (stream and seq columns) and
 * its exact text; for every stream, walked in position order:
 *
 *  - edited:     the text no longer hashes to its own `chain.hash`;
 *  - moved:      the text sits at a position other than its own `chain.stream`/`chain.seq`
 *                (two of these swapped is a reordering);
 *  - duplicate:  several events hold one seq (a fork, or an event inserted beside the real one);
 *  - removed:    positions are missing before the first event, between events, or after the last
 *                one up to the head the collector recorded;
 *  - unlinked:   `chain.prev` is not the hash of the event before it (null for seq 1).
 *
 * A stream whose beginning was retired (retention) is walked from its checkpoint: the first
 * remaining event must link to the checkpoint's hash, the retired seqs are reported as retired (not
 * removed), and an event stored at a retired seq is a problem (`after-retirement`).
 *
 * With the stream's evidence (markers, registered keys, signed heads):
 *
 *  - marker:             a chain problem the collector recorded at ingest and never resolved;
 *  - unregistered-key / bad-signature: a signed head whose key is not the stream's, or whose
 *                        signature does not verify;
 *  - signed-head-missing: a head the sidecar signed is not stored as signed (removed or replaced);
 *  - unsigned:           events after the last valid signed head (with `requireSignatures`): no
 *                        key vouches for them, so anyone with write access to the store could
 *                        have written them;
 *  - unreceipted-key:    with the collector's `receiptKey`: a registered key without the
 *                        collector's valid receipt for (stream, key, owner); its heads vouch for
 *                        nothing (an insider can write a key into the store, not a receipt).
 *  - unsigned-checkpoint: with the collector's `receiptKey`: a retention checkpoint without its
 *                        valid signature; deleting more events and moving the checkpoint over
 *                        them (hash and count rewritten) would otherwise pass as retention.
 *
 * A valid signed head at seq N, with no problem at or below N, proves that events 1..N are exactly
 * what the sidecar holding that key chained: each links to the one before, and the head's hash
 * (signed) covers them all.
 */
import type { AuditEvent } from './audit-event.js';
import { chainHash } from './chain.js';
import { checkpointSignatureValid, receiptValid, type SignedHead, signatureValid } from './signed-head.js';

export interface StoredPosition {
  stream: string;
  seq: number;
  /** The stored text (canonical JSON). */
  json: string;
}

export interface RecordedMarker {
  seq: number;
  kind: 'gap' | 'break' | 'fork';
  detail: string;
  resolvedAt: string | null;
}

/**
 * A retention checkpoint: the collector deleted the stream's events 1..throughSeq on purpose and
 * kept the hash of the last one, which the first remaining event must link to, and a digest of
 * every retired hash (so an archived copy can be proven to be exactly what was retired).
 */
export interface Retirement {
  throughSeq: number;
  throughHash: string;
  /** Events deleted (fewer than throughSeq when some were missing already). */
  count: number;
  /** Hex SHA-256 over the retired events' chain hashes in seq order, chained across retirements. */
  digest: string;
  retiredAt: string;
  /**
   * The collector's signature over the checkpoint (its receipt key, when one is configured), so
   * that a checkpoint moved over more events by someone with write access to the store does not
   * verify. Absent when the collector had no receipt key at the time.
   */
  signature?: string;
}

/** What the collector keeps beside a stream's events. */
export interface StreamEvidence {
  stream: string;
  /** The head seq the collector recorded for the stream, when known. */
  lastSeq?: number;
  /** The stream's retention checkpoint, when events were retired. */
  retired?: Retirement;
  markers: readonly RecordedMarker[];
  keys: readonly RegisteredKey[];
  heads: readonly SignedHead[];
}

/** A public key registered for a stream (base64url), the owner it is bound to, and the collector's receipt. */
export interface RegisteredKey {
  key: string;
  owner: string;
  receipt: string | null;
}

export interface VerifyOptions {
  /** Events not covered by a valid signed head are a problem (default false). */
  requireSignatures?: boolean;
  /** The collector's receipt key (base64url): registered keys must carry its receipt. */
  receiptKey?: string;
}

export type TrailProblem =
  | { kind: 'unparsable'; stream: string; seq: number; detail: string }
  | { kind: 'edited'; stream: string; seq: number; id: string }
  | { kind: 'moved'; stream: string; seq: number; id: string; claims: { stream: string; seq: number } }
  | { kind: 'duplicate'; stream: string; seq: number; ids: string[] }
  | { kind: 'removed'; stream: string; from: number; to: number }
  | { kind: 'unlinked'; stream: string; seq: number; id: string }
  | { kind: 'marker'; stream: string; seq: number; marker: 'gap' | 'break' | 'fork'; detail: string }
  | { kind: 'unregistered-key'; stream: string; seq: number; key: string }
  | { kind: 'bad-signature'; stream: string; seq: number; key: string }
  | { kind: 'signed-head-missing'; stream: string; seq: number; hash: string }
  | { kind: 'unsigned'; stream: string; from: number; to: number }
  | { kind: 'unreceipted-key'; stream: string; key: string }
  | { kind: 'unsigned-checkpoint'; stream: string; throughSeq: number }
  | { kind: 'after-retirement'; stream: string; seq: number; throughSeq: number };

export interface TrailReport {
  streams: number;
  events: number;
  /** Valid signed heads checked against the stored events. */
  signedHeads: number;
  /** Streams whose beginning was retired on purpose (the remainder is checked from the checkpoint); absent when none. */
  retired?: ({ stream: string } & Retirement)[];
  problems: TrailProblem[];
}

const NO_EVIDENCE: Omit<StreamEvidence, 'stream'> = { markers: [], keys: [], heads: [] };

export function verifyTrail(
  stored: Iterable<StoredPosition>,
  evidence: readonly StreamEvidence[] = [],
  options: VerifyOptions = {},
): TrailReport {
  const byStream = new Map<string, StoredPosition[]>();
  let events = 0;
  for (const s of stored) {
    events++;
    const list = byStream.get(s.stream);
    if (list) list.push(s);
    else byStream.set(s.stream, [s]);
  }
  const evidenceOf = new Map(evidence.map((e) => [e.stream, e]));
  const streams = [...new Set([...byStream.keys(), ...evidenceOf.keys()])];
  const problems: TrailProblem[] = [];
  let signedHeads = 0;
  const retiredStreams: TrailReport['retired'] = [];
  for (const stream of streams) {
    const list = byStream.get(stream) ?? [];
    const ev = evidenceOf.get(stream) ?? { stream, ...NO_EVIDENCE };
    const retired = ev.retired;
    if (retired) {
      retiredStreams.push({ stream, ...retired });
      const key = options.receiptKey;
      if (key && !(retired.signature && checkpointSignatureValid(key, stream, retired, retired.signature)))
        problems.push({ kind: 'unsigned-checkpoint', stream, throughSeq: retired.throughSeq });
    }
    const walked = walkStream(stream, list, problems, retired);
    if (ev.lastSeq !== undefined && ev.lastSeq > walked.lastSeq) {
      problems.push({ kind: 'removed', stream, from: walked.lastSeq + 1, to: ev.lastSeq });
    }
    for (const m of ev.markers) {
      if (m.resolvedAt === null)
        problems.push({ kind: 'marker', stream, seq: m.seq, marker: m.kind, detail: m.detail });
    }
    const keys = new Set<string>();
    const unreceipted = new Set<string>();
    for (const k of ev.keys) {
      const receipt = options.receiptKey;
      if (receipt && !(k.receipt !== null && receiptValid(receipt, stream, k.key, k.owner, k.receipt))) {
        problems.push({ kind: 'unreceipted-key', stream, key: k.key });
        unreceipted.add(k.key);
      } else keys.add(k.key);
    }
    // Retired events are gone on purpose: coverage is owed by the remainder only.
    let covered = retired?.throughSeq ?? 0;
    for (const h of ev.heads) {
      if (unreceipted.has(h.key)) continue; // named once, above; its heads vouch for nothing
      // Heads of retired events: their events are gone on purpose (the one at the checkpoint is checked below).
      if (retired && h.seq < retired.throughSeq) continue;
      if (h.stream !== stream || !keys.has(h.key)) {
        problems.push({ kind: 'unregistered-key', stream, seq: h.seq, key: h.key });
      } else if (!signatureValid(h)) {
        problems.push({ kind: 'bad-signature', stream, seq: h.seq, key: h.key });
      } else if (!walked.inPlace.get(h.seq)?.has(h.hash)) {
        problems.push({ kind: 'signed-head-missing', stream, seq: h.seq, hash: h.hash });
      } else {
        signedHeads++;
        covered = Math.max(covered, h.seq);
      }
    }
    if (options.requireSignatures && walked.lastSeq > covered) {
      problems.push({ kind: 'unsigned', stream, from: covered + 1, to: walked.lastSeq });
    }
  }
  return {
    streams: streams.length,
    events,
    signedHeads,
    ...(retiredStreams.length > 0 ? { retired: retiredStreams } : {}),
    problems,
  };
}

/** The chain checks of one stream; returns the hashes of the events that stand where they belong. */
function walkStream(
  stream: string,
  list: StoredPosition[],
  problems: TrailProblem[],
  retired?: Retirement,
): { lastSeq: number; inPlace: Map<number, Set<string>> } {
  list.sort((a, b) => a.seq - b.seq);
  const inPlace = new Map<number, Set<string>>();
  let lastSeq = 0;
  // After a retirement the walk starts at its checkpoint: the next event must link to its hash.
  if (retired) {
    lastSeq = retired.throughSeq;
    inPlace.set(retired.throughSeq, new Set([retired.throughHash]));
  }
  for (let i = 0; i < list.length; ) {
    const seq = list[i]!.seq;
    let j = i;
    while (j < list.length && list[j]!.seq === seq) j++;
    const group = list.slice(i, j);
    i = j;
    if (retired && seq <= retired.throughSeq) {
      problems.push({ kind: 'after-retirement', stream, seq, throughSeq: retired.throughSeq });
      continue;
    }
    if (seq > lastSeq + 1) problems.push({ kind: 'removed', stream, from: lastSeq + 1, to: seq - 1 });
    // Events at the seq before, if they stand where they belong (a link to a moved event proves nothing).
    const before = seq === lastSeq + 1 ? inPlace.get(lastSeq) : undefined;
    const hashes = new Set<string>();
    const ids: string[] = [];
    for (const s of group) {
      let event: AuditEvent;
      try {
        event = JSON.parse(s.json) as AuditEvent;
        if (!event?.chain || typeof event.chain.hash !== 'string') throw new Error('no chain');
      } catch (e) {
        problems.push({ kind: 'unparsable', stream, seq, detail: (e as Error).message });
        ids.push('(unparsable)');
        continue;
      }
      ids.push(event.id);
      if (chainHash(event) !== event.chain.hash) {
        problems.push({ kind: 'edited', stream, seq, id: event.id });
      } else if (event.chain.stream !== stream || event.chain.seq !== seq) {
        problems.push({
          kind: 'moved',
          stream,
          seq,
          id: event.id,
          claims: { stream: event.chain.stream, seq: event.chain.seq },
        });
      } else {
        hashes.add(event.chain.hash);
        const links = seq === 1 ? event.chain.prev === null : !before || before.has(event.chain.prev ?? '');
        if (!links) problems.push({ kind: 'unlinked', stream, seq, id: event.id });
      }
    }
    if (group.length > 1) problems.push({ kind: 'duplicate', stream, seq, ids });
    if (hashes.size > 0) inPlace.set(seq, hashes);
    lastSeq = seq;
  }
  return { lastSeq, inPlace };
}

export function describeRetirement(r: { stream: string } & Retirement): string {
  return `stream ${r.stream} seq 1–${r.throughSeq}: ${r.count} event${r.count === 1 ? '' : 's'} retired at ${r.retiredAt} (retention; checkpoint hash ${r.throughHash.slice(0, 12)}…, digest ${r.digest.slice(0, 12)}…)`;
}

export function describeProblem(p: TrailProblem): string {
  switch (p.kind) {
    case 'unparsable':
      return `stream ${p.stream} seq ${p.seq}: the stored event is not a readable AuditEvent (${p.detail})`;
    case 'edited':
      return `stream ${p.stream} seq ${p.seq}: event ${p.id} was edited (its content no longer matches its hash)`;
    case 'moved':
      return `stream ${p.stream} seq ${p.seq}: event ${p.id} was moved or reordered (it belongs at stream ${p.claims.stream} seq ${p.claims.seq})`;
    case 'duplicate':
      return `stream ${p.stream} seq ${p.seq}: ${p.ids.length} events hold this seq (${p.ids.join(', ')}): a fork or an inserted event`;
    case 'removed':
      return p.from === p.to
        ? `stream ${p.stream} seq ${p.from}: an event was removed`
        : `stream ${p.stream} seq ${p.from}–${p.to}: ${p.to - p.from + 1} events were removed`;
    case 'unlinked':
      return `stream ${p.stream} seq ${p.seq}: event ${p.id} does not link to the event before it (replaced or reordered)`;
    case 'marker':
      return `stream ${p.stream} seq ${p.seq}: the collector recorded a ${p.marker} at ingest: ${p.detail}`;
    case 'unregistered-key':
      return `stream ${p.stream} seq ${p.seq}: the head is signed by key ${p.key}, which was not registered for this stream`;
    case 'unreceipted-key':
      return `stream ${p.stream}: key ${p.key} has no valid receipt from the collector (it was not registered by the collector)`;
    case 'bad-signature':
      return `stream ${p.stream} seq ${p.seq}: the head signature by key ${p.key} does not verify`;
    case 'signed-head-missing':
      return `stream ${p.stream} seq ${p.seq}: the sidecar signed hash ${p.hash.slice(0, 12)}… at this seq, but no stored event has it (removed or replaced)`;
    case 'unsigned-checkpoint':
      return `stream ${p.stream} seq 1–${p.throughSeq}: the retention checkpoint carries no valid signature by the collector (it may have been moved over events deleted by someone else)`;
    case 'after-retirement':
      return `stream ${p.stream} seq ${p.seq}: an event is stored at a seq the collector retired (1–${p.throughSeq}): written into the store afterwards`;
    case 'unsigned':
      return p.from === p.to
        ? `stream ${p.stream} seq ${p.from}: no signed head covers this event (anyone with write access to the store could have written it)`
        : `stream ${p.stream} seq ${p.from}–${p.to}: no signed head covers these ${p.to - p.from + 1} events (anyone with write access to the store could have written them)`;
  }
}
