/**
 * The durable spool: an append-only, segmented log in `audit.spoolDir` that the agent container
 * never mounts. What it promises:
 *
 *  - A statement is in the spool (a `begin` record handed to the operating system with write(2))
 *    before its bytes are forwarded to Postgres. Its events follow once the result is known.
 *  - After a crash, a `begin` with no events becomes events with `result.status: "unknown"`, and a
 *    session with no `session.end` gets one; nothing that reached Postgres is lost.
 *  - Durability (`audit.durability`): `none` — written, never synced by the sidecar (a process
 *    crash loses nothing, a machine crash may lose what the kernel had not flushed); `batch` —
 *    fsync at most 100 ms after a write (a machine crash loses at most the last 100 ms);
 *    `strict` — every statement's begin record is fsynced before its result reaches the client,
 *    one fsync serving every session waiting at that moment (group commit).
 *  - The shipper reads finished events back from disk, and only acknowledged segments that hold
 *    no unfinished statement are deleted. `maxSpoolBytes` bounds the whole backlog.
 *
 * Records are framed with a length and CRC (record-codec.ts); all writes are synchronous writes
 * to the page cache from the one Node.js thread, so records never interleave.
 */
import {
  closeSync,
  fsync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { uuidv7 } from '@byline/api';
import type { Logger } from 'pino';
import type { SessionInfo } from '../audit/event-builder.js';
import type { AuditSink, EventBatch } from '../audit/sink.js';
import type { StatementRecord } from '../capture/records.js';
import { DamageLedger, type SpoolDamageReport } from './damage.js';
import { type ByteRange, type DecodedRecord, decodeRecords, encodeRecord, RecordType } from './record-codec.js';

export type { SpoolDamageReport } from './damage.js';

export type Durability = 'none' | 'batch' | 'strict';

export interface SpoolOptions {
  dir: string;
  durability: Durability;
  /** The backlog bound: bytes of all segments not yet deleted. */
  maxBytes: number;
  /** A segment is closed and a new one begun past this size. */
  segmentBytes?: number;
  logger: Logger;
}

/** A place in the spool: segment number and byte offset. */
export interface SpoolPosition {
  segment: number;
  offset: number;
}

export interface RecoveredSpool {
  stream: string;
  chain: { seq: number; prev: string | null };
  /** Statements that were begun but whose events were never written: to be recorded as unknown. */
  unfinished: { session: SessionInfo; record: StatementRecord }[];
  /** Sessions that never got their session.end. */
  openSessions: SessionInfo[];
  /** Damaged ranges found in the segments and not yet recorded in the trail. */
  damaged: SpoolDamageReport[];
}

const BATCH_SYNC_MS = 100;
const EVENTS_FLUSH_MS = 5;
const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024;

interface SegmentState {
  number: number;
  bytes: number;
  /** Begin records in this segment whose events are not written yet. */
  openBegins: number;
}

interface SessionRecord {
  id: string;
  identity: SessionInfo['identity'];
  target: SessionInfo['target'];
  client: string | null;
  dbUser: string | null;
  applicationName: string | null;
}

interface BeginPayload {
  s: string;
  q: number;
  k: StatementRecord['kind'];
  t: number;
  x: string;
  n: string | null;
  a: string | null;
  p?: { l: number[]; f: number[]; v?: (string | null)[] };
}

/** The first line of an events record: which begin it completes, and the session's next seq. */
interface EventsHeader {
  s: string | null;
  q: number | null;
  n: number | null;
  /** The session ended with this record. */
  end?: true;
  /** When it was written (ms), for the oldest-unshipped figure. */
  w: number;
}

const segmentName = (n: number) => `segment-${String(n).padStart(12, '0')}.log`;
const SEGMENT_RE = /^segment-(\d{12})\.log$/;

export class Spool implements AuditSink {
  readonly name: string;
  readonly stream: string;
  private fd = -1;
  private current!: SegmentState;
  private readonly segments = new Map<number, SegmentState>();
  /** Where each unfinished begin lives, keyed `session/seq`. */
  private readonly beginSegment = new Map<string, number>();
  private readonly activeSessions = new Map<string, SessionRecord>();
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Bytes of every segment on disk, kept as a sum: `accepting` is asked for every statement. */
  private diskBytes = 0;
  private written = 0;
  private synced = 0;
  private syncing = false;
  private syncTimer: NodeJS.Timeout | null = null;
  private eventsTimer: NodeJS.Timeout | null = null;
  private waiters: { at: number; run: () => void }[] = [];
  private chainSeq = 0;
  private chainPrev: string | null = null;
  private writeError: Error | null = null;
  private acked: SpoolPosition;
  private readonly segmentBytes: number;
  /** Called after events are appended (the shipper listens). */
  onEvents: (() => void) | null = null;
  /** Called when reading back finds damage not reported before (recovery returns its own). */
  onDamage: ((report: SpoolDamageReport) => void) | null = null;
  private readonly damage: DamageLedger;
  /** Events written and not yet acknowledged by the collector (or dead-lettered). */
  private unshippedEvents = 0;

  private constructor(
    private readonly options: SpoolOptions,
    stream: string,
    acked: SpoolPosition,
  ) {
    this.stream = stream;
    this.name = `spool:${options.dir}`;
    this.acked = acked;
    this.segmentBytes = options.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
    this.damage = new DamageLedger(join(options.dir, 'quarantine'), options.logger);
  }

  static open(options: SpoolOptions): { spool: Spool; recovered: RecoveredSpool } {
    mkdirSync(options.dir, { recursive: true, mode: 0o700 });
    const metaFile = join(options.dir, 'spool.json');
    let stream: string;
    try {
      stream = (JSON.parse(readFileSync(metaFile, 'utf8')) as { stream: string }).stream;
    } catch {
      stream = uuidv7();
      writeAtomically(metaFile, JSON.stringify({ version: 1, stream }));
    }
    const spool = new Spool(options, stream, readCheckpoint(options.dir));
    const recovered = spool.recover();
    return { spool, recovered };
  }

  /** The spool directory. */
  get dir(): string {
    return this.options.dir;
  }

  // ------------------------------------------------------------------ recovery

  private recover(): RecoveredSpool {
    const dir = this.options.dir;
    const numbers = readdirSync(dir)
      .map((f) => SEGMENT_RE.exec(f)?.[1])
      .filter((n): n is string => n !== undefined)
      .map(Number)
      .sort((a, b) => a - b);
    const sessions = new Map<string, SessionRecord>();
    const nextSeq = new Map<string, number>();
    const ended = new Set<string>();
    const begins = new Map<string, { segment: number; payload: BeginPayload }>();
    const damaged: SpoolDamageReport[] = [];
    const last = numbers.at(-1);
    for (const number of numbers) {
      const path = join(dir, segmentName(number));
      const buf = readFileSync(path);
      const decoded = decodeRecords(buf);
      const { records } = decoded;
      let validEnd = decoded.validEnd;
      if (validEnd < buf.length && number === last) {
        // A torn tail from a crash mid-write (only the segment being written can have one): keep
        // what is whole.
        this.options.logger.warn(
          { segment: path, cut: buf.length - validEnd },
          'spool segment has a torn tail; cutting it off',
        );
        const fd = openSync(path, 'r+');
        try {
          ftruncateSync(fd, validEnd);
          fsyncSync(fd);
        } finally {
          closeSync(fd);
        }
      } else {
        // Anywhere else, bytes that fail their CRC are damage: reported, and skipped on reading.
        const ranges = [...decoded.damaged];
        if (validEnd < buf.length) ranges.push({ start: validEnd, end: buf.length });
        validEnd = buf.length;
        damaged.push(...this.damage.fresh(segmentName(number), ranges, records, buf));
      }
      this.countUnshipped(number, records);
      const state: SegmentState = { number, bytes: validEnd, openBegins: 0 };
      this.diskBytes += validEnd;
      this.segments.set(number, state);
      for (const r of records) {
        if (r.type === RecordType.session) {
          const s = JSON.parse(r.payload) as SessionRecord;
          sessions.set(s.id, s);
        } else if (r.type === RecordType.begin) {
          const b = JSON.parse(r.payload) as BeginPayload;
          begins.set(`${b.s}/${b.q}`, { segment: number, payload: b });
        } else if (r.type === RecordType.chain) {
          const c = JSON.parse(r.payload) as { seq: number; prev: string | null };
          if (c.seq >= this.chainSeq) {
            this.chainSeq = c.seq;
            this.chainPrev = c.prev;
          }
        } else if (r.type === RecordType.events) {
          const nl = r.payload.indexOf('\n');
          const header = JSON.parse(nl < 0 ? r.payload : r.payload.slice(0, nl)) as EventsHeader;
          if (header.s !== null && header.q !== null) begins.delete(`${header.s}/${header.q}`);
          if (header.s !== null && header.n !== null) nextSeq.set(header.s, header.n);
          if (header.s !== null && header.end) ended.add(header.s);
          const last = lastLine(r.payload);
          if (last) {
            const chain = (JSON.parse(last) as { chain: { seq: number; hash: string } }).chain;
            if (chain.seq > this.chainSeq) {
              this.chainSeq = chain.seq;
              this.chainPrev = chain.hash;
            }
          }
        }
      }
    }
    const info = (s: SessionRecord): SessionInfo => ({ ...s, nextSeq: nextSeq.get(s.id) ?? 1 });
    const infos = new Map<string, SessionInfo>();
    const infoFor = (id: string) => {
      let i = infos.get(id);
      if (!i) {
        const s = sessions.get(id);
        if (!s) return undefined;
        i = info(s);
        infos.set(id, i);
      }
      return i;
    };
    const unfinished: RecoveredSpool['unfinished'] = [];
    for (const [key, { segment, payload }] of begins) {
      const session = infoFor(payload.s);
      if (!session) {
        this.options.logger.error(
          { begin: key },
          'spooled statement without its session record; recording it as unattributed',
        );
        continue;
      }
      unfinished.push({ session, record: beginToRecord(payload) });
      // The events about to be written for it complete this begin.
      this.beginSegment.set(key, segment);
      const state = this.segments.get(segment);
      if (state) state.openBegins += 1;
    }
    unfinished.sort((a, b) => a.record.receivedAt - b.record.receivedAt || a.record.seq - b.record.seq);
    const openSessions = [...sessions.keys()].filter((id) => !ended.has(id)).map((id) => infoFor(id)!);

    this.openSegment(last === undefined ? 1 : last + 1);
    return {
      stream: this.stream,
      chain: { seq: this.chainSeq, prev: this.chainPrev },
      unfinished,
      openSessions,
      damaged,
    };
  }

  private countUnshipped(segment: number, records: DecodedRecord[]): void {
    if (segment < this.acked.segment) return;
    for (const r of records) {
      if (r.type !== RecordType.events || (segment === this.acked.segment && r.start < this.acked.offset)) continue;
      this.unshippedEvents += countLines(r.payload) - 1;
    }
  }

  /** The trail now holds the `spool.damaged` event for `report`: never report it again. */
  damageRecorded(report: SpoolDamageReport): void {
    this.damage.recorded(report);
  }

  // ------------------------------------------------------------------ writing

  private openSegment(number: number): void {
    if (this.fd >= 0) {
      this.flushPending();
      fsyncSync(this.fd);
      closeSync(this.fd);
    }
    this.fd = openSync(join(this.options.dir, segmentName(number)), 'a', 0o600);
    this.current = { number, bytes: 0, openBegins: 0 };
    this.segments.set(number, this.current);
    // `written` and `synced` count bytes across segments; the old segment was just fsynced.
    this.synced = this.written;
    this.releaseWaiters();
    // Each segment starts with what recovery needs from it alone: the chain position and the
    // sessions still open, so older segments can be deleted.
    this.append(encodeRecord(RecordType.chain, JSON.stringify({ seq: this.chainSeq, prev: this.chainPrev })));
    for (const s of this.activeSessions.values()) this.append(encodeRecord(RecordType.session, JSON.stringify(s)));
  }

  private append(buf: Buffer): void {
    this.pending.push(buf);
    this.pendingBytes += buf.length;
  }

  /**
   * Hands everything appended so far to the operating system. Call before forwarding: false
   * means some of it could not be written (ENOSPC, EIO…), and what was begun must not be forwarded.
   */
  flushPending(): boolean {
    if (this.pendingBytes === 0) return true;
    const buf = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    let off = 0;
    try {
      while (off < buf.length) off += writeSync(this.fd, buf, off, buf.length - off);
      this.writeError = null;
    } catch (e) {
      // Keep the unwritten bytes: they are retried on the next flush, and meanwhile the spool
      // counts as full, so new statements are refused rather than run unrecorded.
      this.pending.unshift(buf.subarray(off));
      this.pendingBytes += buf.length - off;
      if (!this.writeError) this.options.logger.error({ err: e, dir: this.options.dir }, 'cannot write to the spool');
      this.writeError = e as Error;
    }
    this.written += off;
    this.current.bytes += off;
    this.diskBytes += off;
    if (this.options.durability === 'batch' && !this.syncTimer) {
      this.syncTimer = setTimeout(() => {
        this.syncTimer = null;
        this.sync();
      }, BATCH_SYNC_MS);
    }
    if (this.current.bytes >= this.segmentBytes) this.openSegment(this.current.number + 1);
    return this.writeError === null;
  }

  /** Records the session, so its statements can be attributed after a crash. */
  sessionStarted(session: SessionInfo): void {
    const s: SessionRecord = {
      id: session.id,
      identity: session.identity,
      target: session.target,
      client: session.client,
      dbUser: session.dbUser,
      applicationName: session.applicationName,
    };
    this.activeSessions.set(s.id, s);
    this.append(encodeRecord(RecordType.session, JSON.stringify(s)));
  }

  sessionEnded(sessionId: string): void {
    this.activeSessions.delete(sessionId);
  }

  /** A statement about to be forwarded. Cheap: encodes and buffers; flushPending() writes. */
  begin(session: SessionInfo, record: StatementRecord): void {
    const p: BeginPayload = {
      s: session.id,
      q: record.seq,
      k: record.kind,
      t: record.receivedAt,
      x: record.text,
      n: record.preparedName,
      a: record.applicationName,
    };
    if (record.params) {
      p.p = { l: record.params.lengths, f: record.params.formats };
      if (record.params.values) p.p.v = record.params.values.map((v) => (v === null ? null : v.toString('base64')));
    }
    const key = `${session.id}/${record.seq}`;
    this.beginSegment.set(key, this.current.number);
    this.current.openBegins += 1;
    this.append(encodeRecord(RecordType.begin, JSON.stringify(p)));
  }

  /** Finished events, one group per completed record (AuditSink). */
  write(batch: EventBatch): void {
    const now = Date.now();
    for (const group of batch.groups) {
      const header: EventsHeader = { s: group.session, q: group.record, n: group.nextSeq, w: now };
      if (group.ended) header.end = true;
      this.append(encodeRecord(RecordType.events, `${JSON.stringify(header)}\n${group.lines.join('\n')}`));
      this.unshippedEvents += group.lines.length;
      if (group.session !== null && group.record !== null) {
        const key = `${group.session}/${group.record}`;
        const segment = this.beginSegment.get(key);
        if (segment !== undefined) {
          this.beginSegment.delete(key);
          const state = this.segments.get(segment);
          if (state) state.openBegins -= 1;
        }
      }
      if (group.ended && group.session !== null) this.activeSessions.delete(group.session);
    }
    const last = batch.events.at(-1);
    if (last) {
      this.chainSeq = last.chain.seq;
      this.chainPrev = last.chain.hash;
    }
    // Events need not reach the OS before anything else happens (their begin records did): they
    // ride along with the next begin records' write, or go out within EVENTS_FLUSH_MS.
    if (!this.eventsTimer) {
      this.eventsTimer = setTimeout(() => {
        this.eventsTimer = null;
        this.flushPending();
        this.onEvents?.();
      }, EVENTS_FLUSH_MS);
    }
  }

  // ------------------------------------------------------------------ durability

  /** Runs `then` once everything written so far is fsynced (strict mode's group commit). */
  whenDurable(then: () => void): void {
    this.flushPending();
    if (this.synced >= this.written) {
      then();
      return;
    }
    this.waiters.push({ at: this.written, run: then });
    this.sync();
  }

  private sync(): void {
    if (this.syncing || this.synced >= this.written) return;
    this.syncing = true;
    const target = this.written;
    const fd = this.fd;
    fsync(fd, (err) => {
      this.syncing = false;
      // Had the segment changed meanwhile, openSegment fsynced and closed the old one (so this
      // fsync may even have failed on the closed descriptor): either way `target` is durable.
      if (err && fd === this.fd) {
        this.options.logger.error({ err }, 'spool fsync failed');
        setTimeout(() => this.sync(), 50);
        return;
      }
      this.synced = Math.max(this.synced, target);
      this.releaseWaiters();
      if (this.waiters.length > 0) this.sync();
    });
  }

  private releaseWaiters(): void {
    if (this.waiters.length === 0) return;
    const ready = this.waiters.filter((w) => w.at <= this.synced);
    this.waiters = this.waiters.filter((w) => w.at > this.synced);
    for (const w of ready) w.run();
  }

  async flush(): Promise<void> {
    this.flushPending();
    await new Promise<void>((resolve) => this.whenDurable(resolve));
  }

  async close(): Promise<void> {
    await this.flush();
    if (this.syncTimer) clearTimeout(this.syncTimer);
    if (this.eventsTimer) clearTimeout(this.eventsTimer);
    this.syncTimer = null;
    this.eventsTimer = null;
    if (this.fd >= 0) {
      fsyncSync(this.fd);
      closeSync(this.fd);
      this.fd = -1;
    }
  }

  // ------------------------------------------------------------------ backlog and shipping

  /** Bytes of every segment on disk plus what is buffered. */
  get bytes(): number {
    return this.diskBytes + this.pendingBytes;
  }

  /** False when a new statement must not run: the backlog is at its bound or the disk refuses writes. */
  get accepting(): boolean {
    // After a failed write, try again: once the disk has room the spool accepts statements again.
    if (this.writeError !== null) this.flushPending();
    return this.writeError === null && this.bytes < this.options.maxBytes;
  }

  /** Why the last write failed, while the spool cannot write; null when it can. */
  get writeFailure(): Error | null {
    return this.writeError;
  }

  get refusalReason(): string {
    if (this.writeError) return `the audit spool cannot be written (${this.writeError.message})`;
    return `the audit spool is full (${this.bytes} of ${this.options.maxBytes} bytes; the collector is not keeping up)`;
  }

  get acknowledged(): SpoolPosition {
    return this.acked;
  }

  /**
   * Finished events from `from` on, at most `maxBytes` of them (at least one record), and the
   * position after them. Reads the files, so what is shipped is exactly what is on disk.
   */
  readEvents(
    from: SpoolPosition,
    maxBytes: number,
  ): { lines: string[]; next: SpoolPosition; oldestWrittenAt: number | null } {
    this.flushPending();
    const lines: string[] = [];
    let oldest: number | null = null;
    let position = from;
    let bytes = 0;
    const numbers = [...this.segments.keys()].sort((a, b) => a - b).filter((n) => n >= from.segment);
    for (const number of numbers) {
      const start = number === position.segment ? position.offset : 0;
      const state = this.segments.get(number)!;
      if (start >= state.bytes) {
        if (number < this.current.number) position = { segment: number + 1, offset: 0 };
        continue;
      }
      const buf = readSegment(join(this.options.dir, segmentName(number)), start, state.bytes);
      const { records, damaged, validEnd } = decodeRecords(buf);
      // The segment being written may end in a record still being written: not damage.
      if (validEnd < buf.length && number !== this.current.number) damaged.push({ start: validEnd, end: buf.length });
      if (damaged.length > 0) this.reportDamage(number, start, damaged, records);
      for (const r of records) {
        if (r.type === RecordType.events) {
          const nl = r.payload.indexOf('\n');
          if (oldest === null) oldest = (JSON.parse(r.payload.slice(0, nl)) as EventsHeader).w;
          for (const line of r.payload.slice(nl + 1).split('\n')) lines.push(line);
          bytes += r.end - r.start;
        }
        position = { segment: number, offset: start + r.end };
        if (bytes >= maxBytes) return { lines, next: position, oldestWrittenAt: oldest };
      }
      if (number < this.current.number) position = { segment: number + 1, offset: 0 };
    }
    return { lines, next: position, oldestWrittenAt: oldest };
  }

  /** Damage met while shipping (ranges and records relative to `base`): reported once each. */
  private reportDamage(segment: number, base: number, ranges: ByteRange[], records: DecodedRecord[]): void {
    const name = segmentName(segment);
    const shift = (r: ByteRange) => ({ start: base + r.start, end: base + r.end });
    const shifted = ranges.map(shift);
    if (!this.damage.anyNew(name, shifted)) return;
    const whole = readFileSync(join(this.options.dir, name));
    const moved = records.map((r) => ({ ...r, ...shift(r) }));
    for (const report of this.damage.fresh(name, shifted, moved, whole)) this.onDamage?.(report);
  }

  /** Events written and not yet acknowledged (or dead-lettered). */
  get unshipped(): number {
    return this.unshippedEvents;
  }

  /**
   * The collector has stored everything before `to` (`events` of them since the last
   * acknowledgement, or they were dead-lettered): persist that, then delete what is no longer needed.
   */
  acknowledge(to: SpoolPosition, events = 0): void {
    this.unshippedEvents = Math.max(0, this.unshippedEvents - events);
    this.acked = to;
    writeAtomically(join(this.options.dir, 'checkpoint.json'), JSON.stringify(to));
    for (const [number, state] of this.segments) {
      if (number >= to.segment || number >= this.current.number || state.openBegins > 0) continue;
      try {
        unlinkSync(join(this.options.dir, segmentName(number)));
        this.segments.delete(number);
        this.diskBytes -= state.bytes;
      } catch (e) {
        this.options.logger.warn({ err: e, segment: number }, 'could not delete an acknowledged spool segment');
      }
    }
  }
}

function beginToRecord(b: BeginPayload): StatementRecord {
  return {
    kind: b.k,
    receivedAt: b.t,
    startedAt: 0,
    text: b.x,
    preparedName: b.n,
    params: b.p
      ? {
          lengths: b.p.l,
          formats: b.p.f,
          values: b.p.v ? b.p.v.map((v) => (v === null ? null : Buffer.from(v, 'base64'))) : null,
        }
      : null,
    applicationName: b.a,
    results: [],
    notExecuted: null,
    seq: b.q,
    unrecorded: false,
  };
}

function countLines(payload: string): number {
  let n = 1;
  for (let i = payload.indexOf('\n'); i >= 0; i = payload.indexOf('\n', i + 1)) n++;
  return n;
}

function lastLine(payload: string): string | undefined {
  const nl = payload.lastIndexOf('\n');
  return nl < 0 ? undefined : payload.slice(nl + 1);
}

function readSegment(path: string, start: number, end: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(end - start);
    let off = 0;
    while (off < buf.length) {
      const n = readSync(fd, buf, off, buf.length - off, start + off);
      if (n === 0) break;
      off += n;
    }
    return buf.subarray(0, off);
  } finally {
    closeSync(fd);
  }
}

function readCheckpoint(dir: string): SpoolPosition {
  try {
    const p = JSON.parse(readFileSync(join(dir, 'checkpoint.json'), 'utf8')) as SpoolPosition;
    if (Number.isInteger(p.segment) && Number.isInteger(p.offset)) return p;
  } catch {
    // no checkpoint yet
  }
  return { segment: 0, offset: 0 };
}

/** Write to a temporary file, fsync, rename over: the file is the old or the new, never half. */
function writeAtomically(path: string, text: string): void {
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, text, { mode: 0o600 });
  const fd = openSync(tmp, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}
