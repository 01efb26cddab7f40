/**
 * The durable spool: an append-only, segmented log in `audit.spoolDir` that the agent container
 * never mounts. What it promises:
 *
 *  - A statement is in the spool (a `begin` record handed to the operating system with write(2))
 *    before its bytes are forwarded to Postgres. Its events follow once the result is known.
 *  - After a crash, a `begin` with no events becomes events with `result.status: "unknown"`, and a
 *    session with no `session.end` gets one; nothing that reached Postgres is lost. The begin
 *    record keeps the scan settings and exact bytes, so the statement is split as it ran.
 *  - Durability (`audit.durability`): `none` — written, never synced by the sidecar (a process
 *    crash loses nothing, a machine crash may lose what the kernel had not flushed); `batch` —
 *    fsync at most 100 ms after a write (a machine crash loses at most the last 100 ms);
 *    `strict` — every statement's begin record is fsynced before its result reaches the client,
 *    one fsync serving every session waiting at that moment (group commit); the fsync starts as
 *    soon as the begin records are written, so it runs while Postgres executes the statements.
 *  - The shipper sends the events this process has just written from memory (the same bytes, kept
 *    once write(2) took them: recent-events.ts) and reads older ones back from disk (after a
 *    restart, a backlog past the memory bound, a failed write). Only acknowledged segments that
 *    hold no unfinished statement are deleted. `maxSpoolBytes` bounds the whole backlog.
 *
 * The parts: segment-log.ts (files, the one synchronous write, fsync/read/delete off the event
 * loop), recovery.ts (reading it back at start), backlog.ts (checkpoint, deletion, the bound),
 * payloads.ts and record-codec.ts (what records hold and how they are framed).
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { uuidv7 } from '@byline/api';
import type { Logger } from 'pino';
import type { SessionInfo } from '../audit/event-builder.js';
import type { AuditSink, EventBatch } from '../audit/sink.js';
import type { AuthzDecision, StatementRecord } from '../capture/records.js';
import { Backlog } from './backlog.js';
import { DamageLedger, type SpoolDamageReport } from './damage.js';
import { EventRun } from './event-run.js';
import {
  beginPayload,
  decisionJson,
  decisionPayload,
  type EventsHeader,
  type SessionRecord,
  sessionPayload,
} from './payloads.js';
import { RecentEvents, type ShipBatch } from './recent-events.js';
import { type ByteRange, type DecodedRecord, decodeRecords, RECORD_HEADER_BYTES, RecordType } from './record-codec.js';
import { type RecoveredSpool, recover, type SpoolPosition } from './recovery.js';
import { SegmentLog, segmentName } from './segment-log.js';

export type { SpoolDamageReport } from './damage.js';
export type { RecoveredSpool, SpoolPosition } from './recovery.js';

export type Durability = 'none' | 'batch' | 'strict';

export interface SpoolOptions {
  dir: string;
  durability: Durability;
  /** The backlog bound: bytes of all segments not yet deleted. */
  maxBytes: number;
  /** A segment is closed and a new one begun past this size. */
  segmentBytes?: number;
  /** Bytes of just-written events records kept in memory for shipping (0: always read the disk). */
  recentBytes?: number;
  logger: Logger;
}

const BATCH_SYNC_MS = 100;
/** Decisions remembered per segment at most (a forgotten one is written again under a new id). */
const MAX_SEGMENT_DECISIONS = 4096;
const EVENTS_FLUSH_MS = 5;
const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024;
/** Bytes read back at a time for shipping beyond the batch size asked for (begin records take room too). */
const READ_WINDOW_BYTES = 64 * 1024;
/** Events records kept in memory for shipping, at most (a shipper further behind reads the disk). */
const DEFAULT_RECENT_BYTES = 4 * 1024 * 1024;

export class Spool implements AuditSink {
  readonly name: string;
  readonly stream: string;
  private readonly log: SegmentLog;
  private readonly backlog: Backlog;
  /**
   * Where each unfinished begin lives: by session, then record seq (no key string built per
   * statement on the forward path). A session's map goes when the session ends.
   */
  private beginSegment = new Map<string, Map<number, number>>();
  private readonly activeSessions = new Map<string, SessionRecord>();
  private syncTimer: NodeJS.Timeout | null = null;
  /** Sessions waiting for this turn's write, and the emptied array of the last turn (reused). */
  private turnWaiters: ((written: boolean) => void)[] = [];
  private spareTurnWaiters: ((written: boolean) => void)[] = [];
  private eventsTimer: NodeJS.Timeout | null = null;
  private chainSeq = 0;
  private chainPrev: string | null = null;
  /** The current segment's decision records by the decision's JSON, and the next id to give. */
  private segmentDecisions = new Map<string, number>();
  private nextDecisionId = 0;
  /** Called after events are written (the shipper listens). */
  onEvents: (() => void) | null = null;
  /** Called when reading back finds damage not reported before (recovery returns its own). */
  onDamage: ((report: SpoolDamageReport) => void) | null = null;
  private readonly damage: DamageLedger;
  /** Events written and not yet acknowledged by the collector (or dead-lettered). */
  private unshippedEvents = 0;
  private readonly recent: RecentEvents;
  /** Begin records were appended since the last complete write. */
  private beginsPending = false;
  /** Where the last write holding begin records ended (a SegmentLog position): what strict waits for. */
  private beginsWrittenTo = 0;

  private constructor(
    private readonly options: SpoolOptions,
    stream: string,
  ) {
    this.stream = stream;
    this.name = `spool:${options.dir}`;
    this.log = new SegmentLog(options.dir, options.segmentBytes ?? DEFAULT_SEGMENT_BYTES, options.logger);
    this.backlog = new Backlog(this.log, options.maxBytes, options.logger);
    this.damage = new DamageLedger(join(options.dir, 'quarantine'), options.logger);
    this.recent = new RecentEvents(options.recentBytes ?? DEFAULT_RECENT_BYTES);
    this.log.onWritten = this.afterWrite;
    this.log.onFull = () => this.openSegment(this.log.current.number + 1);
  }

  static open(options: SpoolOptions): { spool: Spool; recovered: RecoveredSpool } {
    mkdirSync(options.dir, { recursive: true, mode: 0o700 });
    const metaFile = join(options.dir, 'spool.json');
    let stream: string;
    try {
      stream = (JSON.parse(readFileSync(metaFile, 'utf8')) as { stream: string }).stream;
    } catch {
      stream = uuidv7();
      writeAtomicallySync(metaFile, JSON.stringify({ version: 1, stream }));
    }
    const spool = new Spool(options, stream);
    const r = recover(spool.log, spool.backlog.acknowledged, spool.damage, options.logger);
    spool.chainSeq = r.chain.seq;
    spool.chainPrev = r.chain.prev;
    spool.beginSegment = r.beginSegment;
    spool.unshippedEvents = r.unshippedEvents;
    spool.openSegment(r.last === undefined ? 1 : r.last + 1);
    // Only what this process writes is in memory; older events are read from their segments.
    spool.recent.coverFrom({ segment: spool.log.current.number, offset: 0 });
    const recovered: RecoveredSpool = {
      stream,
      chain: r.chain,
      unfinished: r.unfinished,
      openSessions: r.openSessions,
      damaged: r.damaged,
    };
    return { spool, recovered };
  }

  /** The spool directory. */
  get dir(): string {
    return this.options.dir;
  }

  /** The trail now holds the `spool.damaged` event for `report`: never report it again. */
  damageRecorded(report: SpoolDamageReport): void {
    this.damage.recorded(report);
  }

  // ------------------------------------------------------------------ writing

  private openSegment(number: number): void {
    this.log.open(number);
    // Decision records are per segment, so that a segment read alone resolves its begin records.
    this.segmentDecisions.clear();
    this.nextDecisionId = 0;
    // Each segment starts with what recovery needs from it alone: the chain position and the
    // sessions still open, so older segments can be deleted.
    this.log.append(RecordType.chain, JSON.stringify({ seq: this.chainSeq, prev: this.chainPrev }));
    for (const s of this.activeSessions.values()) this.log.append(RecordType.session, JSON.stringify(s));
  }

  private readonly afterWrite = (
    segment: number,
    base: number,
    written: number,
    complete: boolean,
    bytes: Buffer,
  ): void => {
    this.recent.written(segment, base, written, complete, bytes);
    if (complete && this.beginsPending) {
      this.beginsPending = false;
      this.beginsWrittenTo = this.log.writtenBytes;
      if (this.options.durability === 'strict') this.log.syncTo(this.beginsWrittenTo);
    }
    if (written > 0 && this.options.durability === 'batch') this.scheduleBatchSync();
  };

  private scheduleBatchSync(): void {
    if (this.syncTimer) return;
    this.syncTimer = setTimeout(() => {
      this.syncTimer = null;
      this.log.sync();
    }, BATCH_SYNC_MS);
  }

  /**
   * Hands everything appended so far to the operating system. Call before forwarding: false
   * means some of it could not be written (ENOSPC, EIO…), and what was begun must not be forwarded.
   */
  flushPending(): boolean {
    return this.log.flush();
  }

  /**
   * Runs `then(written)` once what is appended now has been handed to write(2): at the end of
   * this event-loop turn, in one write for every session that asked during it. `written` false:
   * it could not be written, and what was begun must not be forwarded.
   */
  writeThisTurn(then: (written: boolean) => void): void {
    this.turnWaiters.push(then);
    if (this.turnWaiters.length === 1) setImmediate(this.writeTurn);
  }

  private readonly writeTurn = (): void => {
    const waiters = this.turnWaiters;
    this.turnWaiters = this.spareTurnWaiters;
    const written = this.log.flush();
    for (let i = 0; i < waiters.length; i++) waiters[i]!(written);
    waiters.length = 0;
    this.spareTurnWaiters = waiters;
  };

  /** write(2) calls so far. */
  get writeCalls(): number {
    return this.log.writeCalls;
  }

  /** Checkpoint files written so far. */
  get checkpointWrites(): number {
    return this.backlog.checkpointWrites;
  }

  /** Bytes read back from segments so far. */
  get bytesRead(): number {
    return this.log.bytesRead;
  }

  /** Records the session, so its statements can be attributed after a crash. */
  sessionStarted(session: SessionInfo): void {
    const s = sessionPayload(session);
    this.activeSessions.set(s.id, s);
    this.log.append(RecordType.session, JSON.stringify(s));
  }

  sessionEnded(sessionId: string): void {
    this.activeSessions.delete(sessionId);
  }

  /** A statement about to be forwarded. Cheap: frames it in the append buffer; flushPending() writes. */
  begin(session: SessionInfo, record: StatementRecord): void {
    let ofSession = this.beginSegment.get(session.id);
    if (!ofSession) {
      ofSession = new Map();
      this.beginSegment.set(session.id, ofSession);
    }
    ofSession.set(record.seq, this.log.current.number);
    this.log.current.openBegins += 1;
    this.log.append(RecordType.begin, beginPayload(session.id, record, this.decisionId));
    this.beginsPending = true;
  }

  /**
   * The decision's id in the current segment; the first time, its decision record is appended
   * (ahead of the begin record being built, and in the same write, so in the same segment).
   */
  private readonly decisionId = (decision: AuthzDecision): number => {
    const json = decisionJson(decision);
    let id = this.segmentDecisions.get(json);
    if (id === undefined) {
      // Distinct decisions are few (the engine caches them); a bound keeps a pathological policy's small.
      if (this.segmentDecisions.size >= MAX_SEGMENT_DECISIONS) this.segmentDecisions.clear();
      id = this.nextDecisionId++;
      this.segmentDecisions.set(json, id);
      this.log.append(RecordType.decision, decisionPayload(id, json));
    }
    return id;
  };

  /** Finished events, one group per completed record (AuditSink). */
  write(batch: EventBatch): void {
    const now = Date.now();
    for (const group of batch.groups) {
      // The EventsHeader, written as a string (one per finished statement).
      const session = group.session;
      const header = `{"s":${session === null ? 'null' : JSON.stringify(session)},"q":${group.record},"n":${group.nextSeq},"w":${now}${group.ended ? ',"end":true' : ''}}`;
      const at = this.log.pendingBytes;
      this.log.append(RecordType.events, `${header}\n${group.lines.join('\n')}`);
      // The lines follow the frame header and the events header line.
      this.recent.append(at, at + RECORD_HEADER_BYTES + Buffer.byteLength(header) + 1, this.log.pendingBytes, now);
      this.unshippedEvents += group.lines.length;
      const ofSession = session === null ? undefined : this.beginSegment.get(session);
      if (ofSession && group.record !== null) {
        const segment = ofSession.get(group.record);
        if (segment !== undefined) {
          ofSession.delete(group.record);
          const state = this.log.segments.get(segment);
          if (state) state.openBegins -= 1;
        }
      }
      if (group.ended && session !== null) {
        this.activeSessions.delete(session);
        if (ofSession?.size === 0) this.beginSegment.delete(session);
      }
    }
    if (batch.head) {
      this.chainSeq = batch.head.seq;
      this.chainPrev = batch.head.prev;
    }
    // Events need not reach the OS before anything else happens (their begin records did): they
    // ride along with the next begin records' write, or go out within EVENTS_FLUSH_MS.
    if (!this.eventsTimer) this.eventsTimer = setTimeout(this.flushEvents, EVENTS_FLUSH_MS);
  }

  private readonly flushEvents = (): void => {
    this.eventsTimer = null;
    this.log.flush();
    this.onEvents?.();
  };

  // ------------------------------------------------------------------ durability

  /**
   * Runs `then` once every begin record so far is fsynced (strict mode's group commit). Events
   * written since do not hold it back: only begin records must be durable before a result.
   */
  whenDurable(then: () => void): void {
    if (this.beginsPending) this.log.flush();
    this.log.whenDurableAt(this.beginsWrittenTo, then);
  }

  /** Every begin record appended so far is written and fsynced. */
  get beginsDurable(): boolean {
    return !this.beginsPending && this.log.syncedBytes >= this.beginsWrittenTo;
  }

  async flush(): Promise<void> {
    this.log.flush();
    await new Promise<void>((resolve) => this.log.whenDurable(resolve));
  }

  async close(): Promise<void> {
    if (this.syncTimer) clearTimeout(this.syncTimer);
    if (this.eventsTimer) clearTimeout(this.eventsTimer);
    this.syncTimer = null;
    this.eventsTimer = null;
    await this.log.close();
    await this.backlog.settled();
  }

  // ------------------------------------------------------------------ backlog and shipping

  /** Bytes of every segment on disk plus what is buffered. */
  get bytes(): number {
    return this.backlog.bytes;
  }

  /** False when a new statement must not run: the backlog is at its bound or the disk refuses writes. */
  get accepting(): boolean {
    return this.backlog.accepting;
  }

  /** Why the last write failed, while the spool cannot write; null when it can. */
  get writeFailure(): Error | null {
    return this.log.writeError;
  }

  get refusalReason(): string {
    return this.backlog.refusalReason;
  }

  get acknowledged(): SpoolPosition {
    return this.backlog.acknowledged;
  }

  /**
   * Finished events from `from` on, at most `maxBytes` of them (at least one record), and the
   * position after them: what this process wrote from memory when it still holds it from `from`
   * on (the bytes the file holds, kept once written), else read from the files (off the event loop).
   */
  async readEvents(from: SpoolPosition, maxBytes: number): Promise<ShipBatch> {
    this.log.flush();
    const recent = this.recent.read(from, maxBytes);
    if (recent) return recent;
    // The lines' bytes as the records hold them (CRC-checked), not decoded and encoded again.
    const parts: Buffer[] = [];
    const done = (): ShipBatch => {
      this.coverAgainNear(position);
      return { events: EventRun.fromParts(parts), next: position, oldestWrittenAt: oldest };
    };
    let oldest: number | null = null;
    let position = from;
    let bytes = 0;
    const numbers = [...this.log.segments.keys()].sort((a, b) => a - b).filter((n) => n >= from.segment);
    for (const number of numbers) {
      const state = this.log.segments.get(number);
      if (!state) continue;
      const current = number === this.log.current.number;
      let start = number === position.segment ? position.offset : 0;
      for (;;) {
        if (start >= state.bytes) break;
        const { records, cut, buf } = await this.readWindow(number, start, state.bytes, current, maxBytes);
        for (const r of records) {
          if (r.type === RecordType.events) {
            const headerAt = r.start + RECORD_HEADER_BYTES;
            const nl = buf.indexOf(0x0a, headerAt);
            const linesAt = nl === -1 || nl >= r.end ? r.end : nl + 1;
            if (oldest === null) oldest = (JSON.parse(buf.toString('utf8', headerAt, linesAt)) as EventsHeader).w;
            if (linesAt < r.end) parts.push(buf.subarray(linesAt, r.end));
            bytes += r.end - r.start;
          }
          position = { segment: number, offset: start + r.end };
          if (bytes >= maxBytes) return done();
        }
        if (!cut) break;
        // The window ended inside the segment: that is enough for one batch, or (only begin and
        // session records in it so far) read on.
        if (parts.length > 0) return done();
        start = position.offset;
      }
      if (!current) position = { segment: number + 1, offset: 0 };
    }
    return done();
  }

  /**
   * A shipper reading the disk that has come within half the memory bound of the end: what is
   * written from here on ships from memory again (only with nothing appended and not yet written,
   * so that everything after the position is seen being written).
   */
  private coverAgainNear(position: SpoolPosition): void {
    const current = this.log.current;
    if (!this.recent.suspended || this.log.pendingBytes > 0 || position.segment !== current.number) return;
    if (current.bytes - position.offset > this.recent.maxBytes / 2) return;
    this.recent.coverFrom({ segment: current.number, offset: current.bytes });
  }

  /**
   * The whole records of segment `number` from `start` in one read window, not the rest of the
   * segment: a collector that fell behind must not make every batch read (and check) the whole
   * backlog again. A window that holds no whole record (one larger than it, or damage) reads the
   * rest of the segment, as recovery does. `cut`: the window ended before the segment did.
   */
  private async readWindow(
    number: number,
    start: number,
    segmentEnd: number,
    current: boolean,
    maxBytes: number,
  ): Promise<{ records: DecodedRecord[]; cut: boolean; buf: Buffer }> {
    let end = Math.min(segmentEnd, start + maxBytes + READ_WINDOW_BYTES);
    let buf = await this.log.read(number, start, end);
    // Framing and CRCs only: shipping takes the events' bytes, not their text.
    let decoded = decodeRecords(buf, 0, false);
    if (end < segmentEnd && decoded.records.length === 0) {
      end = segmentEnd;
      buf = await this.log.read(number, start, end);
      decoded = decodeRecords(buf, 0, false);
    }
    // Damage is rare: then the text, which reporting it reads.
    if (decoded.damaged.length > 0) decoded = decodeRecords(buf);
    const { records, damaged, validEnd } = decoded;
    const cut = end < segmentEnd;
    // The segment being written may end in a record still being written, and a window may cut
    // the last record: neither is damage (a cut record is read whole by the next window).
    if (validEnd < buf.length && !current && !cut) damaged.push({ start: validEnd, end: buf.length });
    if (damaged.length > 0) await this.reportDamage(number, start, damaged, records);
    return { records, cut, buf };
  }

  /** Damage met while shipping (ranges and records relative to `base`): reported once each. */
  private async reportDamage(segment: number, base: number, ranges: ByteRange[], records: DecodedRecord[]) {
    const name = segmentName(segment);
    const shift = (r: ByteRange) => ({ start: base + r.start, end: base + r.end });
    const shifted = ranges.map(shift);
    if (!this.damage.anyNew(name, shifted)) return;
    const whole = await this.log.read(segment, 0, this.log.segments.get(segment)?.bytes ?? 0);
    const moved = records.map((r) => ({ ...r, ...shift(r) }));
    for (const report of this.damage.fresh(name, shifted, moved, whole)) this.onDamage?.(report);
  }

  /** Events written and not yet acknowledged (or dead-lettered). */
  get unshipped(): number {
    return this.unshippedEvents;
  }

  /**
   * The collector has stored everything before `to` (`events` of them since the last
   * acknowledgement, or they were dead-lettered). The checkpoint is persisted and segments that
   * are no longer needed deleted off the event loop; `settled()` waits for that.
   */
  acknowledge(to: SpoolPosition, events = 0): void {
    this.unshippedEvents = Math.max(0, this.unshippedEvents - events);
    this.recent.acknowledged(to);
    this.backlog.acknowledge(to);
  }

  /** Resolves once every acknowledgement so far is persisted and its segments deleted. */
  settled(): Promise<void> {
    return this.backlog.settled();
  }
}

/** Write to a temporary file, fsync, rename over: the file is the old or the new, never half. */
function writeAtomicallySync(path: string, text: string): void {
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
