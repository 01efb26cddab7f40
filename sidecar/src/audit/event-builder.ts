/**
 * Shapes StatementRecords into AuditEvent v1 objects: one `statement` event per statement (a
 * Query's statements each get their own slice and result), plus the session events. Runs off
 * the forward path, in batches.
 */
import type {
  AuditContext,
  AuditIdentity,
  AuditResult,
  AuditTarget,
  ParamsModeName,
  StatementClassName,
  StatementProtocolName,
  UnchainedEvent,
} from '@byline/api';
import { uuidv7 } from '@byline/api';
import type { AuthzDecision, ParamCapture, ResultRecord, StatementRecord } from '../capture/records.js';
import { type StatementText, statementTexts } from '../capture/statement-text.js';
import { classify, type StatementClassification, sqlCommenterTags } from '../sql/lexer.js';
import type { TableExtractor } from '../sql/tables.js';
import { boundEvent } from './truncate.js';

/** What every event of one session shares. */
export interface SessionInfo {
  id: string;
  identity: AuditIdentity;
  target: AuditTarget;
  client: string | null;
  dbUser: string | null;
  applicationName: string | null;
  /** Next session.seq to hand out (session.start takes 0). */
  nextSeq: number;
}

const ALLOW = { approval: null, decision: 'allow', rule: null } as const;
type AuthzPart = UnchainedEvent['authz'];

/** The event's `authz` for a decision (keys in canonical order), shared by every event it decided. */
const authzParts = new WeakMap<AuthzDecision, NonNullable<AuthzPart>>();
function authzPart(d: AuthzDecision | undefined): NonNullable<AuthzPart> {
  if (d === undefined) return ALLOW;
  let part = authzParts.get(d);
  if (part === undefined) {
    const a = d.approval;
    part = {
      approval: a
        ? {
            approvedBy: a.approvedBy,
            expiresAt: a.expiresAt,
            name: a.name,
            reason: a.reason,
            // Optional in v1: omitted, not null, when unknown, so earlier events keep their bytes.
            ...(a.requestedBy !== undefined ? { requestedBy: a.requestedBy } : {}),
            ticket: a.ticket,
          }
        : null,
      decision: d.allow ? 'allow' : 'deny',
      rule: d.rule,
    };
    authzParts.set(d, part);
  }
  return part;
}

/** Which statement (slice) of a record a denial stopped, or -1. One decision for all slices counts for the first. */
function deniedSlice(decisions: readonly AuthzDecision[] | null | undefined): number {
  if (!decisions) return -1;
  for (let i = 0; i < decisions.length; i++) if (!decisions[i]!.allow) return i;
  return -1;
}

/** Texts up to this length are remembered with their tables (a prepared statement's text repeats at every Execute). */
const MEMO_TEXT_CHARS = 2048;
const MEMO_ENTRIES = 512;

export class EventBuilder {
  /** Tables by exact text and scan flags, in front of the extractor's cache by normalized text (which normalizes first). */
  private readonly tablesMemo = new Map<string, { flags: number; tables: string[] | null }>();

  constructor(
    private readonly paramsMode: ParamsModeName,
    private readonly tables: TableExtractor | null,
  ) {}

  sessionEvent(
    session: SessionInfo,
    type: 'session.start' | 'session.end',
    time: number,
    outcome: { ok: boolean; sqlstate?: string | null; error?: string | null },
  ): UnchainedEvent {
    // Keys in canonical (sorted) order throughout, so the chain can serialize with JSON.stringify.
    return {
      authz: null,
      context: null,
      id: uuidv7(time),
      identity: session.identity,
      result: {
        durationUs: null,
        error: outcome.error ?? null,
        rows: null,
        sqlstate: outcome.sqlstate ?? null,
        status: outcome.ok ? 'ok' : 'error',
        tag: null,
      },
      session: this.sessionPart(session, session.applicationName),
      statement: null,
      target: session.target,
      time: isoTime(time),
      type,
      v: 1,
    };
  }

  statementEvents(session: SessionInfo, record: StatementRecord): UnchainedEvent[] {
    const flags = record.scanFlags ?? 0;
    const slices =
      record.kind === 'function'
        ? [wholeText(record)]
        : statementTexts(record.text, record.raw, flags, record.kind === 'query');
    if (slices.length === 0) slices.push(wholeText(record)); // an empty query is still answered (EmptyQueryResponse)
    const results = record.results;
    const decisions = record.authz ?? null;
    const denied = deniedSlice(decisions);
    if (denied >= 0) return this.deniedEvents(session, record, slices, decisions!, denied);
    if (record.kind === 'query' && splitMismatch(slices.length, results)) return this.mismatchEvents(session, record);
    // A commit that fails after the last statement completed reports one error more than
    // there are statements: it belongs to the last statement.
    const out: UnchainedEvent[] = [];
    for (let i = 0; i < slices.length; i++) {
      let result = results[i];
      if (i === slices.length - 1 && results.length > slices.length) result = mergeLate(results.slice(i));
      const slice = slices[i]!;
      const event = this.statementEvent(session, record, slice, result, classifyRun(slice.scan, flags, result), false);
      if (decisions) event.authz = authzPart(decisions.length === slices.length ? decisions[i] : decisions[0]);
      out.push(boundEvent(event));
    }
    return out;
  }

  /**
   * A message the policy denied: Postgres ran none of it (a placeholder failed in its place). The
   * denied statement gets `result.status: denied` with the denial as its error, once the client
   * was told (a message Postgres skipped after an earlier error keeps that story); the other
   * statements of the same Query are recorded as not executed, each with its own decision.
   */
  private deniedEvents(
    session: SessionInfo,
    record: StatementRecord,
    slices: StatementText[],
    decisions: readonly AuthzDecision[],
    denied: number,
  ): UnchainedEvent[] {
    const flags = record.scanFlags ?? 0;
    const perSlice = decisions.length === slices.length;
    const index = perSlice ? denied : 0;
    const told = record.results[0];
    return slices.map((slice, i) => {
      let result: ResultRecord | undefined;
      let notExecuted = record.notExecuted;
      if (i === index && told) result = told;
      else if (told) notExecuted = `not executed: statement ${index + 1} of the same Query was denied by byline`;
      const event = this.statementEvent(session, record, slice, result, classify(slice.scan, flags), false);
      event.result = toResult(result, notExecuted);
      if (i === index && told && told.sqlstate === '42501') event.result.status = 'denied';
      event.authz = authzPart(perSlice ? decisions[i] : decisions[0]);
      return boundEvent(event);
    });
  }

  /**
   * Postgres ran a different number of statements than the Query splits into: the sidecar does
   * not know where each one starts, so it records every result Postgres returned, each with the
   * whole Query's text, its command and class taken from the result's tag (or, without a tag, the
   * most consequential class of any part), and `splitMismatch: true`. Never merged away.
   */
  private mismatchEvents(session: SessionInfo, record: StatementRecord): UnchainedEvent[] {
    const flags = record.scanFlags ?? 0;
    const whole = wholeText(record);
    const parts = statementTexts(record.text, record.raw, flags, true).map((p) => classify(p.scan, flags));
    const strongest = parts.reduce<StatementClassification>(
      (a, b) => (CLASS_WEIGHT[b.class] > CLASS_WEIGHT[a.class] ? b : a),
      classify(whole.scan, flags),
    );
    return record.results.map((result) => {
      const command = commandOfTag(result.tag);
      const classification = command === null ? strongest : { command, class: classify(command).class };
      return boundEvent(this.statementEvent(session, record, whole, result, classification, true));
    });
  }

  /** The whole record as one event, with nothing derived: used only if shaping itself failed. */
  fallbackEvent(session: SessionInfo, record: StatementRecord): UnchainedEvent {
    return boundEvent({
      authz: authzPart(record.authz?.[Math.max(0, deniedSlice(record.authz))]),
      context: null,
      id: uuidv7(record.receivedAt),
      identity: session.identity,
      result: toResult(record.results[0], record.notExecuted),
      session: this.sessionPart(session, record.applicationName ?? session.applicationName),
      statement: {
        class: 'misc',
        command: null,
        params: null,
        paramsMode: this.paramsMode,
        preparedName: record.preparedName,
        protocol: record.kind === 'query' ? 'simple' : record.kind === 'execute' ? 'extended' : 'function',
        tables: null,
        text: record.text,
      },
      target: session.target,
      time: isoTime(record.receivedAt),
      type: 'statement',
      v: 1,
    });
  }

  private statementEvent(
    session: SessionInfo,
    record: StatementRecord,
    slice: StatementText,
    result: ResultRecord | undefined,
    classification: StatementClassification,
    mismatch: boolean,
  ): UnchainedEvent {
    const { command, class: klass } = classification;
    const text = slice.text;
    const tags = sortedKeys(sqlCommenterTags(slice.scan, record.scanFlags));
    const protocol: StatementProtocolName = result?.copy
      ? 'copy'
      : record.kind === 'query'
        ? 'simple'
        : record.kind === 'execute'
          ? 'extended'
          : 'function';
    const context: AuditContext = {
      tags,
      task: tags.task ?? tags.byline_task ?? null,
      traceparent: tags.traceparent ?? null,
    };
    const tables = record.kind === 'function' ? null : this.tablesOf(slice.scan, record.scanFlags ?? 0);
    const params = this.params(record.params);
    return {
      authz: ALLOW,
      context,
      id: uuidv7(record.receivedAt),
      identity: session.identity,
      result: toResult(result, record.notExecuted),
      session: this.sessionPart(session, record.applicationName ?? session.applicationName),
      // Optional fields, present only when they say something (older events stay byte-identical);
      // the usual statement is one literal, without them.
      statement:
        mismatch || slice.raw
          ? {
              class: klass,
              command,
              params,
              paramsMode: this.paramsMode,
              preparedName: record.preparedName,
              protocol,
              ...(mismatch ? { splitMismatch: true } : null),
              tables,
              text,
              ...(slice.raw ? { textRaw: { base64: slice.raw.toString('base64'), encoding: slice.encoding! } } : null),
            }
          : {
              class: klass,
              command,
              params,
              paramsMode: this.paramsMode,
              preparedName: record.preparedName,
              protocol,
              tables,
              text,
            },
      target: session.target,
      time: isoTime(record.receivedAt),
      type: 'statement',
      v: 1,
    };
  }

  /** The statement's tables; the arrays are shared between events of one text, and nothing changes them. */
  private tablesOf(scan: string, flags: number): string[] | null {
    if (this.tables === null) return null;
    if (scan.length > MEMO_TEXT_CHARS) return this.tables.tables(scan, flags);
    const known = this.tablesMemo.get(scan);
    if (known !== undefined && known.flags === flags) return known.tables;
    const tables = this.tables.tables(scan, flags);
    if (this.tablesMemo.size >= MEMO_ENTRIES) this.tablesMemo.clear();
    this.tablesMemo.set(scan, { flags, tables });
    return tables;
  }

  private sessionPart(session: SessionInfo, applicationName: string | null) {
    return {
      applicationName,
      client: session.client,
      dbUser: session.dbUser,
      id: session.id,
      seq: session.nextSeq++,
    };
  }

  private params(p: ParamCapture | null): (string | null)[] | null {
    if (!p || this.paramsMode === 'none' || p.lengths.length === 0) return null;
    if (this.paramsMode === 'redacted') {
      return p.lengths.map((n) => (n < 0 ? null : `<redacted ${n} bytes>`));
    }
    const values = p.values;
    if (!values) return p.lengths.map((n) => (n < 0 ? null : `<${n} bytes>`));
    return values.map((v, i) => {
      if (v === null) return null;
      return p.formats[i] === 1 ? `\\x${v.toString('hex')}` : v.toString('utf8');
    });
  }
}

/** RFC 3339 time of `ms`; the last one is kept, as a busy sidecar records many events per millisecond. */
let lastMs = Number.NaN;
let lastIso = '';
function isoTime(ms: number): string {
  if (ms !== lastMs) {
    lastIso = new Date(ms).toISOString();
    lastMs = ms;
  }
  return lastIso;
}

/** The record's whole text as one statement (a FunctionCall, an empty Query, a split mismatch). */
function wholeText(record: StatementRecord): StatementText {
  if (!record.raw) return { text: record.text, scan: record.text, raw: null, encoding: null, bytes: null };
  return statementTexts(record.text, record.raw, record.scanFlags ?? 0, false)[0]!;
}

/**
 * Whether Postgres's results disagree with the split: more results than statements (beyond one
 * late error of a failing implicit commit), or fewer although none failed.
 */
export function splitMismatch(statements: number, results: readonly ResultRecord[]): boolean {
  if (results.length > statements) {
    const lateFailure =
      results.length === statements + 1 &&
      results[statements]!.tag === null &&
      results[statements]!.status !== 'ok' &&
      results.slice(0, statements).every((r) => r.status === 'ok');
    return !lateFailure;
  }
  return results.length < statements && results.length > 0 && results.every((r) => r.status === 'ok');
}

/** `INSERT 0 1` → `INSERT`, `CREATE TABLE` → `CREATE TABLE`: the tag without its counts. */
function commandOfTag(tag: string | null): string | null {
  if (!tag) return null;
  const command = tag.replace(/( \d+)+$/, '');
  return command.length > 0 ? command : null;
}

/**
 * The statement's command and class; for SQL `EXECUTE name`, what the prepared statement turned
 * out to be (Postgres tags an EXECUTE with its statement's tag: `DELETE 3`, not `EXECUTE`).
 */
function classifyRun(text: string, flags: number, result: ResultRecord | undefined): StatementClassification {
  const classification = classify(text, flags);
  if (classification.command !== 'EXECUTE') return classification;
  const command = commandOfTag(result?.tag ?? null);
  return command === null ? classification : { command, class: classify(command).class };
}

/** Which class to report when a result has no tag and the statement is unknown: the one that matters most. */
const CLASS_WEIGHT: Record<StatementClassName, number> = { read: 0, misc: 1, tcl: 2, write: 3, ddl: 4, role: 5 };

/** The same record with keys in canonical order (the chain serializes fastest that way). */
function sortedKeys(tags: Record<string, string>): Record<string, string> {
  const keys = Object.keys(tags);
  if (keys.length < 2) return tags;
  const out: Record<string, string> = {};
  for (const k of keys.sort()) out[k] = tags[k]!;
  return out;
}

function mergeLate(results: ResultRecord[]): ResultRecord {
  const [first, ...late] = results;
  const failure = late.find((r) => r.status !== 'ok');
  if (!first || !failure) return first ?? late[0]!;
  return { ...first, status: failure.status, sqlstate: failure.sqlstate, error: failure.error };
}

function toResult(result: ResultRecord | undefined, notExecuted: string | null): AuditResult {
  if (!result) {
    return {
      durationUs: null,
      error: notExecuted ?? 'no result was seen for this statement',
      rows: null,
      sqlstate: null,
      status: notExecuted ? 'error' : 'unknown',
      tag: null,
    };
  }
  return {
    durationUs: result.durationUs,
    error: result.error,
    rows: result.rows,
    sqlstate: result.sqlstate,
    status: result.status === 'not-executed' ? 'error' : result.status,
    tag: result.tag,
  };
}
