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
  StatementProtocolName,
  UnchainedEvent,
} from '@byline/api';
import { uuidv7 } from '@byline/api';
import type { ParamCapture, ResultRecord, StatementRecord } from '../capture/records.js';
import { classify, splitStatements, sqlCommenterTags } from '../sql/lexer.js';
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

export class EventBuilder {
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
      time: new Date(time).toISOString(),
      type,
      v: 1,
    };
  }

  statementEvents(session: SessionInfo, record: StatementRecord): UnchainedEvent[] {
    const slices = record.kind === 'query' ? splitStatements(record.text).map((s) => s.text) : [record.text];
    if (slices.length === 0) slices.push(record.text); // an empty query is still answered (EmptyQueryResponse)
    const results = record.results;
    // A commit that fails after the last statement completed reports one error more than
    // there are statements: it belongs to the last statement.
    const out: UnchainedEvent[] = [];
    for (let i = 0; i < slices.length; i++) {
      let result = results[i];
      if (i === slices.length - 1 && results.length > slices.length) result = mergeLate(results.slice(i));
      out.push(boundEvent(this.statementEvent(session, record, slices[i]!, result)));
    }
    return out;
  }

  /** The whole record as one event, with nothing derived: used only if shaping itself failed. */
  fallbackEvent(session: SessionInfo, record: StatementRecord): UnchainedEvent {
    return boundEvent({
      authz: ALLOW,
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
      time: new Date(record.receivedAt).toISOString(),
      type: 'statement',
      v: 1,
    });
  }

  private statementEvent(
    session: SessionInfo,
    record: StatementRecord,
    text: string,
    result: ResultRecord | undefined,
  ): UnchainedEvent {
    const { command, class: klass } = classify(text);
    const tags = sortedKeys(sqlCommenterTags(text));
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
    return {
      authz: ALLOW,
      context,
      id: uuidv7(record.receivedAt),
      identity: session.identity,
      result: toResult(result, record.notExecuted),
      session: this.sessionPart(session, record.applicationName ?? session.applicationName),
      statement: {
        class: klass,
        command,
        params: this.params(record.params),
        paramsMode: this.paramsMode,
        preparedName: record.preparedName,
        protocol,
        tables: record.kind === 'function' ? null : (this.tables?.tables(text) ?? null),
        text,
      },
      target: session.target,
      time: new Date(record.receivedAt).toISOString(),
      type: 'statement',
      v: 1,
    };
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
