/**
 * Follows one session's conversation and turns it into StatementRecords: which statement each
 * Query, Execute and FunctionCall ran, and which backend messages answered it. Pure: it sees
 * decoded views of messages in wire order, never a socket.
 *
 * How answers are matched to requests: Postgres answers frontend messages strictly in order, so
 * every message that will be answered is queued and the backend's messages are applied to the
 * head of the queue. The state machine, per queued item:
 *
 *   parse    ── ParseComplete ────────────▶ done (the statement name now means the new text)
 *   bind     ── BindComplete ─────────────▶ done
 *   describe ── [ParameterDescription] RowDescription | NoData ──▶ done
 *   close    ── CloseComplete ────────────▶ done
 *   execute  ── DataRow* CommandComplete | EmptyQuery | PortalSuspended ──▶ record finished
 *   query    ── (RowDescription DataRow* | Copy… )* per statement, CommandComplete each ─ ReadyForQuery ─▶ finished
 *   function ── FunctionCallResponse ─ ReadyForQuery ─▶ finished
 *   sync     ── ReadyForQuery ───────────▶ done
 *
 * ErrorResponse during extended-protocol work fails the head item and makes Postgres skip every
 * message up to the next Sync: those items are dropped, their effects on prepared statements and
 * portals undone, and their Executes recorded as not executed. Sync messages sent while COPY FROM
 * STDIN is in progress are ignored by Postgres and are dropped here too.
 */
import {
  B,
  decodeBind,
  decodeCommandComplete,
  decodeErrorFields,
  decodeExecute,
  decodeFunctionCall,
  decodeParameterStatus,
  decodeParse,
  decodeQuery,
  decodeTarget,
  F,
  ProtocolError,
  rowsFromTag,
} from '../protocol/messages.js';
import { SCAN_DEFAULT, SCS_OFF } from '../sql/tokenizer.js';
import { codecFor, decodeText, scansRawBytes, type TextCodec, UTF8_CODEC } from './encoding.js';
import type { ParamCapture, RawText, RecordKind, RecordSink, ResultRecord, StatementRecord } from './records.js';
import { applySqlPrepared, type Prepared, sqlPreparedEffect } from './sql-prepared.js';

enum Kind {
  parse = 0,
  bind = 1,
  describe = 2,
  close = 3,
  execute = 4,
  query = 5,
  function = 6,
  sync = 7,
  copyEnd = 8,
}

interface Portal {
  statement: Prepared | undefined;
  params: ParamCapture;
}

interface Item {
  kind: Kind;
  record: StatementRecord | null;
  /** For parse/bind/close: the name touched and what it meant before, to undo on error. */
  name: string;
  undo: Prepared | Portal | undefined;
  /** close/describe target: statement (true) or portal (false). */
  statement: boolean;
  /**
   * A Query's text bytes, kept while it waits behind other messages: one of them may change the
   * client encoding, and Postgres decodes the Query with the encoding in force when it gets to it.
   */
  bytes: Buffer | null;
}

export const NOT_EXECUTED_PIPELINE = 'not executed: an earlier message in the same pipeline failed';
export const NOT_EXECUTED_QUERY = 'not executed: an earlier statement in the same Query message failed';

export interface TrackerOptions {
  /** Copy parameter values (only when they are recorded in full). */
  captureParamValues: boolean;
}

export class StatementTracker {
  applicationName: string | null = null;
  /** standard_conforming_strings and the like, as Postgres last reported them (tokenizer.ts flags). */
  scanFlags = SCAN_DEFAULT;
  private codec: TextCodec = UTF8_CODEC;
  private serverEncoding = 'UTF8';
  /** Postgres scans the client's bytes unconverted (see encoding.ts): keep them. */
  private rawScan = false;
  /** Texts need more than Buffer#toString: another encoding, or raw scanning. */
  private exotic = false;
  /** Transaction status from the last ReadyForQuery: I, T or E. */
  transactionStatus = 'I';

  private readonly prepared = new Map<string, Prepared>();
  private readonly portals = new Map<string, Portal>();
  /**
   * While skipping to Sync, Postgres ignores Parse and Bind; what the client meant by them still
   * names the Executes it skips (otherwise they would carry an older portal's text and params).
   */
  private readonly skippedPrepared = new Map<string, Prepared>();
  private readonly skippedPortals = new Map<string, Portal>();
  private queue: Item[] = [];
  private head = 0;
  private skipUntilSync = false;
  /**
   * A Parse, Bind or Describe that failed has no record of its own: its error belongs to the
   * Execute that needed it — the first one Postgres then skipped, even one sent after the error.
   */
  private pendingError: { status: 'error' | 'cancelled'; code: string; message: string } | null = null;
  private nextSeq = 1;
  /** Results of the statement in progress at the head. */
  private rows = 0;
  private copy = false;
  private lastEnd = 0;
  /** Records finished since the last ReadyForQuery; handed on together. */
  private finished: StatementRecord[] = [];

  constructor(
    private readonly sink: RecordSink,
    private readonly options: TrackerOptions,
  ) {}

  /** Nothing is outstanding: every message sent so far has been answered. */
  get idle(): boolean {
    return this.head === this.queue.length;
  }

  /** The record the next backend message answers, if that is a statement (not Parse, Bind, Sync…). */
  get headRecord(): StatementRecord | null {
    return this.current()?.record ?? null;
  }

  /** Records begun, i.e. statement-level sequence numbers used so far. */
  get recordCount(): number {
    return this.nextSeq - 1;
  }

  /** A frontend message about to be forwarded. Throws ProtocolError on malformed content. */
  onFrontend(type: number, buf: Buffer, start: number, end: number): void {
    switch (type) {
      case F.query: {
        const record = this.exotic
          ? this.beginExotic(decodeQuery(buf, start, end, 'latin1'))
          : this.begin('query', decodeQuery(buf, start, end, this.codec.node!), null, null, this.scanFlags, null);
        if (this.skipUntilSync) this.skip(record, NOT_EXECUTED_PIPELINE);
        else this.enqueue(Kind.query, record, '', undefined, false, this.idle ? null : queryBytes(buf, start, end));
        return;
      }
      case F.parse: {
        const parse = decodeParse(buf, start, end, this.exotic ? 'latin1' : this.codec.node!);
        const prepared: Prepared = { text: parse.text, name: parse.name, flags: this.scanFlags, raw: null };
        if (this.exotic) Object.assign(prepared, this.decodeExotic(parse.text));
        if (this.skipUntilSync) {
          this.skippedPrepared.set(parse.name, prepared);
          return;
        }
        const undo = this.prepared.get(parse.name);
        this.prepared.set(parse.name, prepared);
        this.enqueue(Kind.parse, null, parse.name, undo, true);
        return;
      }
      case F.bind: {
        const bind = decodeBind(buf, start, end, this.options.captureParamValues);
        const params = { lengths: bind.lengths, formats: bind.formats, values: bind.values };
        if (this.skipUntilSync) {
          const statement = this.skippedPrepared.get(bind.statement) ?? this.prepared.get(bind.statement);
          this.skippedPortals.set(bind.portal, { statement, params });
          return;
        }
        const undo = this.portals.get(bind.portal);
        this.portals.set(bind.portal, { statement: this.prepared.get(bind.statement), params });
        this.enqueue(Kind.bind, null, bind.portal, undo, false);
        return;
      }
      case F.execute: {
        const { portal: portalName } = decodeExecute(buf, start, end);
        const portal =
          (this.skipUntilSync ? this.skippedPortals.get(portalName) : undefined) ?? this.portals.get(portalName);
        const statement = portal?.statement;
        const record = this.begin(
          'execute',
          statement?.text ?? '',
          statement && statement.name !== '' ? statement.name : null,
          portal?.params ?? null,
          statement?.flags ?? this.scanFlags,
          statement?.raw ?? null,
          statement,
        );
        if (this.skipUntilSync) this.skip(record, NOT_EXECUTED_PIPELINE);
        else this.enqueue(Kind.execute, record, portalName, undefined, false);
        return;
      }
      case F.describe: {
        const target = decodeTarget(buf, start, end, 'Describe');
        if (!this.skipUntilSync) this.enqueue(Kind.describe, null, target.name, undefined, target.kind === 'S');
        return;
      }
      case F.close: {
        const target = decodeTarget(buf, start, end, 'Close');
        if (this.skipUntilSync) return;
        const map = target.kind === 'S' ? this.prepared : this.portals;
        const undo = map.get(target.name);
        map.delete(target.name);
        this.enqueue(Kind.close, null, target.name, undo, target.kind === 'S');
        return;
      }
      case F.sync:
        if (this.skipUntilSync && (this.skippedPrepared.size > 0 || this.skippedPortals.size > 0)) {
          this.skippedPrepared.clear();
          this.skippedPortals.clear();
        }
        this.skipUntilSync = false;
        this.pendingError = null;
        this.enqueue(Kind.sync, null, '', undefined, false);
        return;
      case F.functionCall: {
        const call = decodeFunctionCall(buf, start, end, this.options.captureParamValues);
        const params = { lengths: call.lengths, formats: call.formats, values: call.values };
        const record = this.begin('function', `FunctionCall(oid=${call.oid})`, null, params, SCAN_DEFAULT, null);
        if (this.skipUntilSync) this.skip(record, NOT_EXECUTED_PIPELINE);
        else this.enqueue(Kind.function, record, '', undefined, false);
        return;
      }
      case F.copyDone:
      case F.copyFail:
        this.enqueue(Kind.copyEnd, null, '', undefined, false);
        return;
      case F.copyData:
      case F.flush:
      case F.terminate:
        return;
      default:
        throw new ProtocolError(`invalid frontend message type ${type} ('${String.fromCharCode(type)}')`);
    }
  }

  /** DataRow and CopyData bodies are never decoded: only counted. */
  onBackendStreamed(type: number): void {
    if (type === B.dataRow) this.rows += 1;
  }

  /** A backend message, in order. Never throws on an unexpected message: it is logged by the caller. */
  onBackend(type: number, buf: Buffer, start: number, end: number): string | undefined {
    switch (type) {
      case B.parseComplete:
        return this.expect(Kind.parse, 'ParseComplete') ?? this.pop();
      case B.bindComplete:
        return this.expect(Kind.bind, 'BindComplete') ?? this.pop();
      case B.closeComplete:
        return this.expect(Kind.close, 'CloseComplete') ?? this.pop();
      case B.parameterDescription:
        return this.expect(Kind.describe, 'ParameterDescription');
      case B.noData:
        return this.expect(Kind.describe, 'NoData') ?? this.pop();
      case B.rowDescription: {
        const item = this.current();
        if (item?.kind === Kind.describe) return this.pop();
        if (item?.kind === Kind.query || item?.kind === Kind.execute) return undefined;
        return `unexpected RowDescription`;
      }
      case B.commandComplete:
      case B.emptyQuery:
      case B.portalSuspended: {
        const item = this.current();
        if (!item?.record || item.kind === Kind.function) return `unexpected message '${String.fromCharCode(type)}'`;
        const tag = type === B.commandComplete ? decodeCommandComplete(buf, start, end) : null;
        // Tags without a count (BEGIN, SET, CREATE TABLE) have no rows to report.
        const rows = tag !== null ? rowsFromTag(tag) : type === B.portalSuspended ? this.rows : null;
        if (tag !== null && sqlPreparedEffect(tag) !== null) this.onSqlPrepared(item.record, tag);
        this.addResult(item.record, 'ok', tag, rows, null, null);
        if (item.kind === Kind.execute) {
          this.pop();
          this.finish(item.record);
        }
        return undefined;
      }
      case B.copyInResponse:
      case B.copyOutResponse:
      case B.copyBothResponse: {
        this.copy = true;
        if (type === B.copyInResponse) this.dropSyncsDuringCopyIn();
        return undefined;
      }
      case B.functionCallResponse: {
        const item = this.current();
        if (item?.kind !== Kind.function || !item.record) return 'unexpected FunctionCallResponse';
        this.addResult(item.record, 'ok', null, null, null, null);
        return undefined;
      }
      case B.errorResponse:
        return this.onError(decodeErrorFields(buf, start, end));
      case B.readyForQuery:
        this.transactionStatus = String.fromCharCode(buf[start + 5] ?? 0x49);
        if (this.transactionStatus === 'I') this.dropNamedPortals();
        return this.onReady();
      case B.parameterStatus: {
        const { name, value } = decodeParameterStatus(buf, start, end);
        if (name === 'application_name') this.applicationName = value || null;
        else this.onSetting(name, value);
        return undefined;
      }
      default:
        // Notices, notifications, CopyData/CopyDone from the server: nothing to attribute.
        return undefined;
    }
  }

  /**
   * Records from `seq` on were never sent to Postgres (the connection was closed for a protocol
   * error first): they end as not executed rather than unknown.
   */
  abandonFrom(seq: number, reason: string): void {
    for (let i = this.head; i < this.queue.length; i++) {
      const record = this.queue[i]!.record;
      if (record && record.seq >= seq && record.results.length === 0) record.notExecuted = reason;
    }
  }

  /** The connection is over: whatever had no answer ends as unknown, and everything is handed on. */
  close(): void {
    for (let i = this.head; i < this.queue.length; i++) {
      const item = this.queue[i]!;
      const record = item.record;
      if (record) {
        // A Query that already failed (FATAL 57P01 mid-statement) keeps that error: Postgres ran nothing after it.
        const last = record.results[record.results.length - 1];
        if (last && last.status !== 'ok') {
          if (item.kind === Kind.query) record.notExecuted = NOT_EXECUTED_QUERY;
        } else if (record.notExecuted === null || record.results.length > 0) {
          this.addResult(record, 'unknown', null, null, null, 'the connection closed before Postgres answered');
        }
        this.finish(record);
      }
    }
    this.queue = [];
    this.head = 0;
    this.handOn();
  }

  // ------------------------------------------------------------------ internals

  private begin(
    kind: RecordKind,
    text: string,
    preparedName: string | null,
    params: ParamCapture | null,
    scanFlags: number,
    raw: RawText | null,
    statement?: Prepared,
  ) {
    const now = performance.now();
    const record: StatementRecord = {
      kind,
      receivedAt: Date.now(),
      startedAt: now,
      text,
      preparedName,
      params,
      scanFlags,
      raw,
      applicationName: this.applicationName,
      results: [],
      notExecuted: null,
      seq: this.nextSeq++,
      unrecorded: false,
      authz: null,
    };
    this.sink.authorize?.(record, kind === 'execute' ? statement : null);
    this.sink.begin(record);
    return record;
  }

  private skip(record: StatementRecord, reason: string): void {
    const error = record.kind === 'execute' ? this.pendingError : null;
    if (error) {
      this.pendingError = null;
      this.addResult(record, error.status, null, null, error.code, error.message);
    } else {
      record.notExecuted = reason;
    }
    this.finish(record);
  }

  private enqueue(
    kind: Kind,
    record: StatementRecord | null,
    name: string,
    undo: Item['undo'],
    statement: boolean,
    bytes: Buffer | null = null,
  ) {
    if (this.head === this.queue.length) {
      this.queue.length = 0;
      this.head = 0;
    }
    this.queue.push({ kind, record, name, undo, statement, bytes });
  }

  /** The item the next backend message answers; copy-end markers have no answer of their own. */
  private current(): Item | undefined {
    while (this.head < this.queue.length && this.queue[this.head]!.kind === Kind.copyEnd) this.head++;
    return this.queue[this.head];
  }

  private expect(kind: Kind, what: string): string | undefined {
    const item = this.current();
    return item?.kind === kind ? undefined : `unexpected ${what}`;
  }

  private pop(): undefined {
    this.current();
    const item = this.queue[this.head];
    if (item) item.bytes = null;
    this.head++;
    this.rows = 0;
    this.copy = false;
    return undefined;
  }

  private addResult(
    record: StatementRecord,
    status: ResultRecord['status'],
    tag: string | null,
    rows: number | null,
    sqlstate: string | null,
    error: string | null,
  ): void {
    const now = performance.now();
    // Under pipelining a message waits behind the ones before it: count from the later of its
    // arrival and the previous result.
    const from = Math.max(record.startedAt, this.lastEnd);
    const durationUs = Math.max(0, Math.round((now - from) * 1000));
    record.results.push({ status, tag, rows, sqlstate, error, copy: this.copy, durationUs });
    this.lastEnd = now;
    this.rows = 0;
    this.copy = false;
  }

  private onError(e: { severity: string; code: string; message: string }): string | undefined {
    const status = e.code === '57014' ? 'cancelled' : 'error';
    const item = this.current();
    if (!item) {
      // An error with nothing outstanding (a commit failing at Sync, a FATAL shutdown): it
      // belongs to the last statement that completed, whose effects it undid.
      const last = this.finished[this.finished.length - 1];
      if (last && e.severity !== 'FATAL') this.failLast(last, status, e);
      return e.severity === 'FATAL' ? undefined : 'ErrorResponse with nothing outstanding';
    }
    if (item.kind === Kind.query || item.kind === Kind.function) {
      // The rest of a Query's statements are skipped; ReadyForQuery ends the record.
      if (item.record) this.addResult(item.record, status, null, null, e.code, e.message);
      return undefined;
    }
    if (item.kind === Kind.sync) {
      const last = this.finished[this.finished.length - 1];
      if (last) this.failLast(last, status, e);
      return undefined;
    }
    // Extended protocol: the head failed, and Postgres skips everything up to the next Sync.
    if (item.record) {
      this.addResult(item.record, status, null, null, e.code, e.message);
      this.finish(item.record);
    }
    this.pendingError = item.record ? null : { status, code: e.code, message: e.message };
    const skipped: Item[] = [item];
    this.head++;
    while (this.head < this.queue.length && this.queue[this.head]!.kind !== Kind.sync) {
      const next = this.queue[this.head++]!;
      skipped.push(next);
      if (next.record) this.skip(next.record, NOT_EXECUTED_PIPELINE);
    }
    if (this.head === this.queue.length) {
      // The client has not sent its Sync yet: Executes still to come name what it meant.
      this.skipUntilSync = true;
      for (const item of skipped) this.rememberSkipped(item);
    } else {
      this.pendingError = null;
    }
    for (let i = skipped.length - 1; i >= 0; i--) this.undo(skipped[i]!);
    this.rows = 0;
    this.copy = false;
    return undefined;
  }

  private failLast(record: StatementRecord, status: 'error' | 'cancelled', e: { code: string; message: string }) {
    const result = record.results[record.results.length - 1];
    if (!result) return;
    result.status = status;
    result.sqlstate = e.code;
    result.error = e.message;
  }

  private rememberSkipped(item: Item): void {
    if (item.kind === Kind.parse) {
      const meant = this.prepared.get(item.name);
      if (meant) this.skippedPrepared.set(item.name, meant);
    } else if (item.kind === Kind.bind) {
      const meant = this.portals.get(item.name);
      if (meant) this.skippedPortals.set(item.name, meant);
    }
  }

  private undo(item: Item): void {
    if (item.kind === Kind.parse || (item.kind === Kind.close && item.statement)) {
      if (item.undo) this.prepared.set(item.name, item.undo as Prepared);
      else this.prepared.delete(item.name);
    } else if (item.kind === Kind.bind || item.kind === Kind.close) {
      if (item.undo) this.portals.set(item.name, item.undo as Portal);
      else this.portals.delete(item.name);
    }
  }

  private onReady(): string | undefined {
    const item = this.current();
    let problem: string | undefined;
    if (item?.kind === Kind.query || item?.kind === Kind.function) {
      if (item.record) {
        const expected = item.kind === Kind.function ? 1 : 0;
        if (item.record.results.length === 0 && expected === 1) {
          this.addResult(item.record, 'unknown', null, null, null, 'no result before ReadyForQuery');
        }
        const failed = item.record.results.some((r) => r.status !== 'ok');
        if (failed && item.kind === Kind.query) item.record.notExecuted = NOT_EXECUTED_QUERY;
        this.finish(item.record);
      }
      this.pop();
    } else if (item?.kind === Kind.sync) {
      this.pop();
    } else {
      // Out of step (should not happen): close everything up to the next Sync so that nothing
      // outstanding is lost, and carry on from there.
      problem = 'ReadyForQuery arrived while other answers were outstanding';
      while (this.head < this.queue.length) {
        const next = this.queue[this.head++]!;
        if (next.record) {
          this.addResult(next.record, 'unknown', null, null, null, problem);
          this.finish(next.record);
        }
        if (next.kind === Kind.sync) break;
      }
    }
    this.handOn();
    return problem;
  }

  /** Syncs queued after a COPY FROM STDIN began and before its CopyDone/CopyFail are ignored by Postgres. */
  private dropSyncsDuringCopyIn(): void {
    for (let i = this.head + 1; i < this.queue.length; i++) {
      const kind = this.queue[i]!.kind;
      if (kind === Kind.copyEnd) return;
      if (kind === Kind.sync) {
        this.queue.splice(i, 1);
        i--;
      }
    }
  }

  private dropNamedPortals(): void {
    // Portals live until the end of their transaction.
    if (this.portals.size > 1 || (this.portals.size === 1 && !this.portals.has(''))) {
      for (const name of this.portals.keys()) if (name !== '') this.portals.delete(name);
    }
  }

  /** A setting Postgres reported (at startup, or after SET, RESET, ALTER ROLE … SET taking effect, a rollback). */
  private onSetting(name: string, value: string): void {
    if (name === 'standard_conforming_strings') {
      const flags = value.toLowerCase() === 'off' ? this.scanFlags | SCS_OFF : this.scanFlags & ~SCS_OFF;
      if (flags === this.scanFlags) return;
      this.scanFlags = flags;
      // Postgres reports a change while the message that made it is still the head: Queries
      // queued behind it (pipelined) are parsed under the new rule when their turn comes.
      for (let i = this.head + 1; i < this.queue.length; i++) {
        const record = this.queue[i]!.record;
        if (record && this.queue[i]!.kind === Kind.query) record.scanFlags = flags;
      }
    } else if (name === 'client_encoding') {
      this.codec = codecFor(value);
    } else if (name === 'server_encoding') {
      this.serverEncoding = value;
    } else {
      return;
    }
    this.rawScan = scansRawBytes(this.codec, this.serverEncoding);
    this.exotic = this.codec.node === null || this.rawScan;
    // Queries queued behind the change reach Postgres under the new encoding: decode them again.
    for (let i = this.head + 1; i < this.queue.length; i++) {
      const { record, bytes } = this.queue[i]!;
      if (!record || !bytes) continue;
      if (this.exotic) {
        Object.assign(record, this.decodeExotic(bytes.toString('latin1')));
      } else {
        record.text = bytes.toString(this.codec.node!);
        record.raw = null;
      }
    }
  }

  /** Text in an encoding Buffer cannot decode (handed over as latin1, one character per byte). */
  private decodeExotic(bytesAsLatin1: string): { text: string; raw: RawText | null } {
    const decoded = decodeText(Buffer.from(bytesAsLatin1, 'latin1'), this.codec, this.rawScan);
    const raw = decoded.raw ? { bytes: decoded.raw, encoding: this.codec.name, bytewise: this.rawScan } : null;
    return { text: decoded.text, raw };
  }

  private beginExotic(bytesAsLatin1: string): StatementRecord {
    const { text, raw } = this.decodeExotic(bytesAsLatin1);
    return this.begin('query', text, null, null, this.scanFlags, raw);
  }

  /** PREPARE, DEALLOCATE and DISCARD ALL in SQL share the protocol's prepared-statement names. */
  private onSqlPrepared(record: StatementRecord, tag: string): void {
    const index = record.kind === 'query' ? record.results.length : 0;
    applySqlPrepared(this.prepared, this.portals, record, index, tag, this.codec);
  }

  private finish(record: StatementRecord): void {
    this.finished.push(record);
    if (this.finished.length >= 256) this.handOn();
  }

  private handOn(): void {
    if (this.finished.length === 0) return;
    const done = this.finished;
    this.finished = [];
    for (const record of done) this.sink.finish(record);
  }
}

/** A copy of a Query message's text bytes (before its terminating NUL). */
function queryBytes(buf: Buffer, start: number, end: number): Buffer {
  const nul = buf.indexOf(0, start + 5);
  return Buffer.from(buf.subarray(start + 5, nul < 0 || nul >= end ? end : nul));
}
