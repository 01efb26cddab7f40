/**
 * Reading the spool back at start: what a crash left behind. A torn tail of the last segment is
 * cut off; damage anywhere else is reported and skipped (damage.ts); begun statements without
 * events, and sessions without an end, are handed back to be recorded; the chain continues where
 * the last record left it. Runs once, before the sidecar is ready, so it reads synchronously.
 */
import { closeSync, fsyncSync, ftruncateSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { SessionInfo } from '../audit/event-builder.js';
import type { AuthzDecision, StatementRecord } from '../capture/records.js';
import type { DamageLedger, SpoolDamageReport } from './damage.js';
import {
  type BeginPayload,
  beginToRecord,
  type DecisionPayload,
  type EventsHeader,
  LOST_DECISION,
  type SessionRecord,
} from './payloads.js';
import { type DecodedRecord, decodeRecords, RecordType } from './record-codec.js';
import { SEGMENT_RE, type SegmentLog, type SegmentState, segmentName } from './segment-log.js';

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

export interface Recovery {
  chain: { seq: number; prev: string | null };
  unfinished: RecoveredSpool['unfinished'];
  openSessions: SessionInfo[];
  damaged: SpoolDamageReport[];
  /** Where each unfinished begin lives, by session and record seq (their events complete them). */
  beginSegment: Map<string, Map<number, number>>;
  /** Events after the acknowledged position. */
  unshippedEvents: number;
  /** The highest segment number found, if any. */
  last: number | undefined;
}

/** Reads every segment in `log.dir`, registering each with `log`. */
export function recover(log: SegmentLog, acked: SpoolPosition, damage: DamageLedger, logger: Logger): Recovery {
  const dir = log.dir;
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
  const chain = { seq: 0, prev: null as string | null };
  let unshippedEvents = 0;
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
      logger.warn({ segment: path, cut: buf.length - validEnd }, 'spool segment has a torn tail; cutting it off');
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
      damaged.push(...damage.fresh(segmentName(number), ranges, records, buf));
    }
    unshippedEvents += countUnshipped(number, records, acked);
    const state: SegmentState = { number, bytes: validEnd, openBegins: 0 };
    log.adopt(state);
    // Decision ids are the segment's own: a begin record refers to one written before it in it.
    const decisions = new Map<number, AuthzDecision>();
    for (const r of records) {
      if (r.type === RecordType.decision) {
        const d = JSON.parse(r.payload) as DecisionPayload;
        decisions.set(d.i, d.d);
      } else if (r.type === RecordType.session) {
        const s = JSON.parse(r.payload) as SessionRecord;
        sessions.set(s.id, s);
      } else if (r.type === RecordType.begin) {
        const b = JSON.parse(r.payload) as BeginPayload;
        if (b.i) b.z = resolveDecisions(b, decisions, path, logger);
        begins.set(`${b.s}/${b.q}`, { segment: number, payload: b });
      } else if (r.type === RecordType.chain) {
        const c = JSON.parse(r.payload) as { seq: number; prev: string | null };
        if (c.seq >= chain.seq) {
          chain.seq = c.seq;
          chain.prev = c.prev;
        }
      } else if (r.type === RecordType.events) {
        const nl = r.payload.indexOf('\n');
        const header = JSON.parse(nl < 0 ? r.payload : r.payload.slice(0, nl)) as EventsHeader;
        if (header.s !== null && header.q !== null) begins.delete(`${header.s}/${header.q}`);
        if (header.s !== null && header.n !== null) nextSeq.set(header.s, header.n);
        if (header.s !== null && header.end) ended.add(header.s);
        const lastEvent = lastLine(r.payload);
        if (lastEvent) {
          const c = (JSON.parse(lastEvent) as { chain: { seq: number; hash: string } }).chain;
          if (c.seq > chain.seq) {
            chain.seq = c.seq;
            chain.prev = c.hash;
          }
        }
      }
    }
  }
  const infos = new Map<string, SessionInfo>();
  const infoFor = (id: string) => {
    let i = infos.get(id);
    if (!i) {
      const s = sessions.get(id);
      if (!s) return undefined;
      i = { ...s, nextSeq: nextSeq.get(s.id) ?? 1 };
      infos.set(id, i);
    }
    return i;
  };
  const unfinished: RecoveredSpool['unfinished'] = [];
  const beginSegment = new Map<string, Map<number, number>>();
  for (const [key, { segment, payload }] of begins) {
    const session = infoFor(payload.s);
    if (!session) {
      logger.error({ begin: key }, 'spooled statement without its session record; recording it as unattributed');
      continue;
    }
    unfinished.push({ session, record: beginToRecord(payload) });
    // The events about to be written for it complete this begin.
    let ofSession = beginSegment.get(payload.s);
    if (!ofSession) {
      ofSession = new Map();
      beginSegment.set(payload.s, ofSession);
    }
    ofSession.set(payload.q, segment);
    const state = log.segments.get(segment);
    if (state) state.openBegins += 1;
  }
  unfinished.sort((a, b) => a.record.receivedAt - b.record.receivedAt || a.record.seq - b.record.seq);
  const openSessions = [...sessions.keys()].filter((id) => !ended.has(id)).map((id) => infoFor(id)!);
  return { chain, unfinished, openSessions, damaged, beginSegment, unshippedEvents, last };
}

function resolveDecisions(
  b: BeginPayload,
  decisions: Map<number, AuthzDecision>,
  segment: string,
  logger: Logger,
): AuthzDecision[] {
  return b.i!.map((id) => {
    const d = decisions.get(id);
    if (d) return d;
    logger.error(
      { segment, begin: `${b.s}/${b.q}`, decision: id },
      'spooled statement refers to a decision record lost to damage',
    );
    return LOST_DECISION;
  });
}

function countUnshipped(segment: number, records: DecodedRecord[], acked: SpoolPosition): number {
  if (segment < acked.segment) return 0;
  let n = 0;
  for (const r of records) {
    if (r.type !== RecordType.events || (segment === acked.segment && r.start < acked.offset)) continue;
    n += countLines(r.payload) - 1;
  }
  return n;
}

export function countLines(payload: string): number {
  let n = 1;
  for (let i = payload.indexOf('\n'); i >= 0; i = payload.indexOf('\n', i + 1)) n++;
  return n;
}

function lastLine(payload: string): string | undefined {
  const nl = payload.lastIndexOf('\n');
  return nl < 0 ? undefined : payload.slice(nl + 1);
}
