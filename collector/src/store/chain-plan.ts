/**
 * Chain checks at ingest, per `chain.stream` — pure, shared by both stores.
 *
 * The stream's head (highest seq stored, and its hash) answers the common case: the next event has
 * seq = head + 1 and prev = head hash. Anything else is looked at against its stored neighbours:
 *
 *  - gap:   the event's predecessor (seq - 1) is not stored. Marked on the event after the hole; when
 *           a late batch brings the predecessor, the marker is resolved.
 *  - break: `prev` is not the hash of the stored predecessor (or seq 1 has a prev). Also found when a
 *           late event fills a gap and its successor does not link to it.
 *  - fork:  a different event already holds the same seq.
 *
 * Events are stored whatever is found: a broken chain is still evidence, and the marker says so.
 */
import type { MarkerKind } from './types.js';

export interface Link {
  id: string;
  seq: number;
  prev: string | null;
  hash: string;
}

export interface StreamState {
  firstSeq: number;
  lastSeq: number;
  headHash: string;
  count: number;
}

/** What is stored for one stream before the batch; asked only about seqs at or below the head. */
export interface Neighbourhood {
  /** The stored events at `seq`. */
  at(seq: number): readonly Link[];
  /** The highest stored seq below `seq`, or 0. */
  below(seq: number): number;
}

export interface PlannedMarker {
  seq: number;
  kind: MarkerKind;
  detail: string;
}

export interface ChainPlan {
  markers: PlannedMarker[];
  /** Seqs whose open gap marker (if any) this batch resolves. */
  resolveGaps: number[];
  state: StreamState;
}

const short = (hash: string | null) => (hash === null ? 'null' : `${hash.slice(0, 12)}…`);

/**
 * The seqs `planChain` will ask the neighbourhood about, for stores that fetch ahead: around every
 * event the head alone cannot vouch for (late, not linking to the head, or sharing its seq).
 */
export function neighbourSeqs(
  events: readonly Link[],
  head: StreamState | undefined,
): { at: number[]; below: number[] } {
  const at = new Set<number>();
  const below = new Set<number>();
  if (!head) return { at: [], below: [] };
  const perSeq = new Map<number, number>();
  for (const e of events) perSeq.set(e.seq, (perSeq.get(e.seq) ?? 0) + 1);
  for (const e of events) {
    const s = e.seq;
    if (s > head.lastSeq + 1) continue;
    if (s === head.lastSeq + 1 && e.prev === head.headHash && perSeq.get(s) === 1) continue;
    for (const n of [s - 1, s, s + 1]) if (n >= 1 && n <= head.lastSeq) at.add(n);
    if (s <= head.lastSeq) below.add(s);
  }
  return { at: [...at], below: [...below] };
}

/**
 * Checks `events` (one stream, new to the store, sorted by seq) against `head` and the stored
 * neighbourhood, and says which markers to open, which gaps the batch closes, and the new state.
 */
export function planChain(events: readonly Link[], head: StreamState | undefined, stored: Neighbourhood): ChainPlan {
  const markers: PlannedMarker[] = [];
  const planned = new Set<string>();
  const resolveGaps: number[] = [];
  const mark = (seq: number, kind: MarkerKind, detail: string) => {
    const key = `${kind}:${seq}`;
    if (planned.has(key)) return;
    planned.add(key);
    markers.push({ seq, kind, detail });
  };

  const inBatch = new Map<number, Link[]>();
  const batchSeqs: number[] = []; // distinct, ascending
  const storedAt = (s: number): readonly Link[] => (head && s >= 1 && s <= head.lastSeq ? stored.at(s) : []);
  const known = (s: number): readonly Link[] => {
    const fromBatch = inBatch.get(s);
    return fromBatch ? [...storedAt(s), ...fromBatch] : storedAt(s);
  };
  const highestBelow = (s: number): number => {
    const fromStore = head ? (s <= head.lastSeq ? stored.below(s) : head.lastSeq) : 0;
    let fromBatch = 0;
    for (let i = batchSeqs.length - 1; i >= 0; i--) {
      if (batchSeqs[i]! < s) {
        fromBatch = batchSeqs[i]!;
        break;
      }
    }
    return Math.max(fromStore, fromBatch);
  };

  let state: StreamState | undefined = head ? { ...head } : undefined;
  for (const e of events) {
    const s = e.seq;
    const linksToHead = state ? s === state.lastSeq + 1 && e.prev === state.headHash : s === 1 && e.prev === null;
    if (!linksToHead) {
      const same = known(s);
      if (same.length > 0) {
        const held = same.map((l) => `${l.id} (hash ${short(l.hash)})`).join(', ');
        mark(s, 'fork', `seq ${s} is held by ${held} and by ${e.id} (hash ${short(e.hash)})`);
      }
      if (s === 1) {
        if (e.prev !== null) mark(s, 'break', `seq 1 starts the stream, so prev must be null; it is ${short(e.prev)}`);
      } else {
        const before = known(s - 1);
        if (before.length === 0) {
          const from = highestBelow(s) + 1;
          mark(s, 'gap', from === s - 1 ? `seq ${s - 1} is missing` : `seqs ${from}–${s - 1} are missing`);
        } else if (!before.some((p) => p.hash === e.prev)) {
          const hashes = before.map((p) => short(p.hash)).join(', ');
          mark(s, 'break', `prev ${short(e.prev)} is not the hash of seq ${s - 1} (${hashes})`);
        }
      }
      if (same.length === 0) {
        // A late event: a stored successor waited for it. Later events of this batch check themselves.
        const after = storedAt(s + 1);
        if (after.length > 0) resolveGaps.push(s + 1);
        for (const n of after) {
          if (n.prev !== e.hash) {
            mark(
              s + 1,
              'break',
              `prev ${short(n.prev)} is not the hash of seq ${s} (${short(e.hash)}), which arrived late`,
            );
          }
        }
      }
    }

    const list = inBatch.get(s);
    if (list) list.push(e);
    else inBatch.set(s, [e]);
    if (batchSeqs[batchSeqs.length - 1] !== s) batchSeqs.push(s);
    if (!state) state = { firstSeq: s, lastSeq: s, headHash: e.hash, count: 1 };
    else {
      state.count += 1;
      if (s < state.firstSeq) state.firstSeq = s;
      if (s > state.lastSeq) {
        state.lastSeq = s;
        state.headHash = e.hash;
      }
    }
  }
  if (!state) throw new Error('planChain needs at least one event');
  return { markers, resolveGaps, state };
}

/**
 * Map-backed neighbourhood for stores that fetch ahead (one round trip instead of one per event).
 * Asking about a seq that was not fetched is a bug, and throws rather than answering "nothing".
 */
export class FetchedNeighbourhood implements Neighbourhood {
  constructor(
    private readonly links: ReadonlyMap<number, readonly Link[]>,
    private readonly belowOf: ReadonlyMap<number, number>,
  ) {}

  at(seq: number): readonly Link[] {
    const links = this.links.get(seq);
    if (links === undefined) throw new Error(`neighbourhood was not fetched for seq ${seq}`);
    return links;
  }

  below(seq: number): number {
    const b = this.belowOf.get(seq);
    if (b === undefined) throw new Error(`neighbourhood was not fetched for seq ${seq}`);
    return b;
  }
}
