/**
 * The store-independent half of `insertBatch`: which events are new, which are retries, and the
 * rows a batch writes once its chains are planned. Pure; both stores run it inside their transaction.
 */
import type { ChainPlan } from './chain-plan.js';
import type { IngestEvent, MarkerKind } from './types.js';

export interface MarkerRow {
  stream: string;
  seq: number;
  kind: MarkerKind;
  detail: string;
}

export interface SplitBatch {
  /** New events per stream, sorted by seq. */
  fresh: Map<string, IngestEvent[]>;
  duplicates: number;
  /** An id seen again with different content: not stored (ids are unique), but never silently. */
  conflicts: MarkerRow[];
}

/** `stored`: the hash stored under each of the batch's ids that is already stored. */
export function splitBatch(events: readonly IngestEvent[], stored: ReadonlyMap<string, string>): SplitBatch {
  const seen = new Map<string, string>(stored);
  const fresh = new Map<string, IngestEvent[]>();
  const conflicts: MarkerRow[] = [];
  let duplicates = 0;
  for (const e of events) {
    const earlier = seen.get(e.id);
    if (earlier !== undefined) {
      duplicates += 1;
      if (earlier !== e.hash) {
        conflicts.push({
          stream: e.stream,
          seq: e.seq,
          kind: 'fork',
          detail: `event ${e.id} arrived again with different content (hash ${e.hash.slice(0, 12)}…, kept ${earlier.slice(0, 12)}…); the second copy was not stored`,
        });
      }
      continue;
    }
    seen.set(e.id, e.hash);
    const list = fresh.get(e.stream);
    if (list) list.push(e);
    else fresh.set(e.stream, [e]);
  }
  for (const list of fresh.values()) list.sort((a, b) => a.seq - b.seq);
  return { fresh, duplicates, conflicts };
}

/**
 * Takes out of `fresh` the events at seqs a retention checkpoint already covers (`retiredThrough`:
 * a stream's last retired seq): a sidecar resending what was stored and then retired must not put
 * it back (verify would flag it, and retention deleted it on purpose). They are acknowledged, not
 * stored; the count per stream is returned so the store notes it beside the checkpoint.
 */
export function dropRetired(
  fresh: Map<string, IngestEvent[]>,
  retiredThrough: ReadonlyMap<string, number>,
): Map<string, number> {
  const dropped = new Map<string, number>();
  for (const [stream, through] of retiredThrough) {
    const list = fresh.get(stream);
    if (!list) continue;
    // Sorted by seq: the retired ones are a prefix.
    let n = 0;
    while (n < list.length && list[n]!.seq <= through) n++;
    if (n === 0) continue;
    dropped.set(stream, n);
    if (n === list.length) fresh.delete(stream);
    else list.splice(0, n);
  }
  return dropped;
}

/** The total of `dropRetired`'s counts. */
export function total(counts: ReadonlyMap<string, number>): number {
  let n = 0;
  for (const c of counts.values()) n += c;
  return n;
}

export interface StreamWrite {
  stream: string;
  plan: ChainPlan;
}

export function markerRows(writes: readonly StreamWrite[], conflicts: readonly MarkerRow[]): MarkerRow[] {
  const rows: MarkerRow[] = [];
  for (const w of writes) for (const m of w.plan.markers) rows.push({ stream: w.stream, ...m });
  return [...rows, ...conflicts];
}
