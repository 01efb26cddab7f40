/**
 * The events records this process has just written to the spool, kept in memory so that a
 * shipper that keeps up sends them without reading the segment back (a read(2) copy, a CRC check,
 * UTF-8 decoding and splitting per event, and a thread-pool hop per window). The spool file stays
 * the durable copy and the only source after a restart, for a backlog larger than the bound, and
 * after a failed write.
 *
 * What it serves is what the file holds: the lines' bytes are copied from the very bytes write(2)
 * took (off the V8 heap, so holding them costs the garbage collector nothing), an entry is
 * registered only once all of its record was written, with its place in the segment, and the tail
 * answers only for positions from `coveredFrom` on, past which it holds every events record
 * written. No I/O.
 */
import { EventRun } from './event-run.js';
import type { SpoolPosition } from './recovery.js';

/** One events record: its lines' bytes and where the record lies in the spool. */
interface Entry {
  segment: number;
  start: number;
  end: number;
  lines: Buffer;
  writtenAt: number;
}

/** An events record appended and not yet written: where it and its lines lie in the append buffer. */
interface Appended {
  at: number;
  linesAt: number;
  end: number;
  writtenAt: number;
}

/** Events read for shipping, and the position after them. */
export interface ShipBatch {
  events: EventRun;
  next: SpoolPosition;
  oldestWrittenAt: number | null;
}

export function before(a: SpoolPosition, b: SpoolPosition): boolean {
  return a.segment < b.segment || (a.segment === b.segment && a.offset < b.offset);
}

/** Size of the buffers the lines are copied into. */
const SLAB_BYTES = 256 * 1024;

function startsBefore(e: Entry, p: SpoolPosition): boolean {
  return e.segment < p.segment || (e.segment === p.segment && e.start < p.offset);
}

export class RecentEvents {
  private entries: Entry[] = [];
  /** Entries before this index are gone (acknowledged or dropped); compacted now and then. */
  private head = 0;
  private appended: Appended[] = [];
  /** Where copies go, and how much of it is used. */
  private slab = Buffer.alloc(0);
  private slabAt = 0;
  /** Record bytes held in `entries` from `head` on. */
  private heldBytes = 0;
  /** Every events record at or after this position is in `entries`; null: none is (until a clean write). */
  private coveredFrom: SpoolPosition | null = null;
  /** Where the written bytes end: the answer's `next` when every entry was taken. */
  private end: SpoolPosition = { segment: 0, offset: 0 };
  /**
   * The shipper fell further behind than the bound: nothing is held (copying what would only be
   * dropped again costs the forward path) until the spool sees it near the end and covers again.
   */
  suspended = false;

  constructor(readonly maxBytes: number) {}

  /**
   * Events records from `at` on (the end of what is written, with nothing appended and not yet
   * written) will all be held.
   */
  coverFrom(at: SpoolPosition): void {
    this.coveredFrom = at;
    this.end = at;
    this.suspended = false;
  }

  /**
   * An events record was appended to the append buffer at [at, end), its lines from `linesAt` on
   * (offsets in the buffer's unwritten bytes).
   */
  append(at: number, linesAt: number, end: number, writtenAt: number): void {
    if (this.coveredFrom === null) return;
    this.appended.push({ at, linesAt, end, writtenAt });
  }

  /**
   * write(2) took `written` bytes of the append buffer (`bytes`, valid during the call) into
   * segment `segment` at `base`; `complete`: it took them all. Anything short of that (a full
   * disk) and the tail stops answering until a write leaves nothing behind again: what was
   * appended meanwhile is found on disk.
   */
  written(segment: number, base: number, written: number, complete: boolean, bytes: Buffer): void {
    if (!complete) {
      this.coveredFrom = null;
      this.appended.length = 0;
      this.entries.length = 0;
      this.head = 0;
      this.heldBytes = 0;
      return;
    }
    if (this.suspended) this.appended.length = 0;
    const end = { segment, offset: base + written };
    this.end = end;
    if (this.suspended) return;
    if (this.coveredFrom === null) {
      // Everything appended so far is now in the file, before `end`.
      this.coveredFrom = end;
      return;
    }
    const appended = this.appended;
    // Every appended record lies within what was written (the buffer is only consumed by writes);
    // if that ever failed to hold, the disk answers rather than memory guessing.
    if (appended.length > 0 && appended[appended.length - 1]!.end > written) {
      this.written(segment, base, written, false, bytes);
      return;
    }
    if (appended.length > 0) {
      // Copied (the append buffer is reused) into a slab shared by many writes: one allocation
      // per SLAB_BYTES, not per write; a slab goes once no entry views it.
      let size = 0;
      for (let i = 0; i < appended.length; i++) size += appended[i]!.end - appended[i]!.linesAt;
      if (this.slabAt + size > this.slab.length) {
        this.slab = Buffer.allocUnsafeSlow(Math.max(SLAB_BYTES, size));
        this.slabAt = 0;
      }
      const slab = this.slab;
      for (let i = 0; i < appended.length; i++) {
        const a = appended[i]!;
        const at = this.slabAt;
        this.slabAt += bytes.copy(slab, at, a.linesAt, a.end);
        const lines = slab.subarray(at, this.slabAt);
        this.entries.push({ segment, start: base + a.at, end: base + a.end, lines, writtenAt: a.writtenAt });
        this.heldBytes += a.end - a.at;
      }
      appended.length = 0;
    }
    // A shipper this far behind (the collector away or slow) reads the disk instead.
    if (this.heldBytes > this.maxBytes) this.suspend();
    this.compact();
  }

  /**
   * The events from `from` on, at most about `maxBytes` of them (whole records, at least one), as
   * the segment read would give them; null when `from` lies before what the tail holds.
   */
  read(from: SpoolPosition, maxBytes: number): ShipBatch | null {
    if (this.coveredFrom === null || before(from, this.coveredFrom)) return null;
    const parts: Buffer[] = [];
    let i = this.head;
    while (i < this.entries.length && startsBefore(this.entries[i]!, from)) i++;
    let bytes = 0;
    let oldest: number | null = null;
    for (; i < this.entries.length; i++) {
      const e = this.entries[i]!;
      if (oldest === null) oldest = e.writtenAt;
      parts.push(e.lines);
      bytes += e.end - e.start;
      if (bytes >= maxBytes) {
        return {
          events: EventRun.fromParts(parts),
          next: { segment: e.segment, offset: e.end },
          oldestWrittenAt: oldest,
        };
      }
    }
    return {
      events: EventRun.fromParts(parts),
      next: before(from, this.end) ? this.end : from,
      oldestWrittenAt: oldest,
    };
  }

  private suspend(): void {
    this.suspended = true;
    this.coveredFrom = null;
    this.entries.length = 0;
    this.head = 0;
    this.heldBytes = 0;
  }

  /** The collector has everything before `to`: let those entries go. */
  acknowledged(to: SpoolPosition): void {
    while (this.head < this.entries.length) {
      const e = this.entries[this.head]!;
      if (e.segment > to.segment || (e.segment === to.segment && e.end > to.offset)) break;
      this.heldBytes -= e.end - e.start;
      this.head++;
    }
    this.compact();
  }

  /** Record bytes held (the bound counts these). */
  get bytes(): number {
    return this.heldBytes;
  }

  private compact(): void {
    if (this.head === this.entries.length) {
      this.entries.length = 0;
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }
}
