/**
 * Bookkeeping for damaged spool bytes: which ranges were found (each reported once, also across
 * restarts), a copy of the damaged segment in the quarantine directory for inspection, and the
 * chain positions around each range, so the `spool.damaged` event can say which events it lost.
 */
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { type ByteRange, type DecodedRecord, RecordType } from './record-codec.js';

/** Bytes of a segment that failed their CRC: what the `spool.damaged` event says. */
export interface SpoolDamageReport {
  segment: string;
  start: number;
  end: number;
  /** The copy kept for inspection, or null when it could not be made. */
  quarantine: string | null;
  /** The last chain.seq read before the damage and the first after it, within the segment. */
  seqAfter: number | null;
  seqBefore: number | null;
}

export class DamageLedger {
  /** Ranges found while running, keyed `segment@start`. */
  private readonly seen = new Set<string>();

  constructor(
    readonly dir: string,
    private readonly logger: Logger,
  ) {}

  /** Is any of these ranges not yet found (nor recorded by an earlier run)? */
  anyNew(segment: string, ranges: ByteRange[]): boolean {
    return ranges.some((r) => !this.seen.has(`${segment}@${r.start}`));
  }

  /**
   * The ranges of `segment` (whose bytes are `buf`, whose whole records are `records`) not
   * reported before, each with the chain positions around it; copies the segment to quarantine
   * once for them and logs each loudly.
   */
  fresh(segment: string, ranges: ByteRange[], records: DecodedRecord[], buf: Buffer): SpoolDamageReport[] {
    const recorded = this.recordedStarts(segment);
    const fresh = ranges.filter((r) => {
      const key = `${segment}@${r.start}`;
      const known = this.seen.has(key) || recorded.has(r.start);
      this.seen.add(key);
      return !known;
    });
    if (fresh.length === 0) return [];
    let copy: string | null = join(this.dir, `${segment}.damaged-at-${fresh[0]!.start}`);
    try {
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      if (!existsSync(copy)) writeFileSync(copy, buf, { mode: 0o600 });
    } catch (e) {
      this.logger.error({ err: e, segment }, 'could not copy a damaged spool segment to quarantine');
      copy = null;
    }
    const reports = fresh.map((r) => ({
      segment,
      start: r.start,
      end: r.end,
      quarantine: copy,
      ...chainAround(records, r),
    }));
    for (const r of reports) {
      this.logger.error(
        r,
        `spool segment ${segment} is damaged at bytes ${r.start}-${r.end}: the records there are lost, the rest is kept`,
      );
    }
    return reports;
  }

  /** The trail now holds the `spool.damaged` event for `report`: never report it again. */
  recorded(report: SpoolDamageReport): void {
    try {
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      const starts = [...this.recordedStarts(report.segment), report.start];
      const path = join(this.dir, `${report.segment}.recorded.json`);
      const tmp = `${path}.tmp`;
      writeFileSync(tmp, JSON.stringify({ starts }), { mode: 0o600 });
      const fd = openSync(tmp, 'r');
      try {
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, path);
    } catch (e) {
      this.logger.warn({ err: e, report }, 'could not note that spool damage was recorded');
    }
  }

  private recordedStarts(segment: string): Set<number> {
    try {
      const { starts } = JSON.parse(readFileSync(join(this.dir, `${segment}.recorded.json`), 'utf8')) as {
        starts: number[];
      };
      return new Set(starts);
    } catch {
      return new Set();
    }
  }
}

/** The chain.seq of the last event before `range` and of the first after it, among `records`. */
function chainAround(
  records: DecodedRecord[],
  range: ByteRange,
): { seqAfter: number | null; seqBefore: number | null } {
  let seqAfter: number | null = null;
  let seqBefore: number | null = null;
  for (const r of records) {
    if (r.type !== RecordType.events) continue;
    if (r.end <= range.start) {
      seqAfter = seqOf(r.payload.slice(r.payload.lastIndexOf('\n') + 1)) ?? seqAfter;
    } else if (r.start >= range.end && seqBefore === null) {
      // An events record: a header line, then one event per line.
      const first = r.payload.indexOf('\n');
      const second = r.payload.indexOf('\n', first + 1);
      seqBefore = seqOf(r.payload.slice(first + 1, second < 0 ? undefined : second));
    }
  }
  return { seqAfter, seqBefore };
}

function seqOf(line: string): number | null {
  try {
    return (JSON.parse(line) as { chain: { seq: number } }).chain.seq;
  } catch {
    return null;
  }
}
