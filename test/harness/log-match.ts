/**
 * Matches Postgres's own statement log (`log_statement=all`) against the sidecar's statement
 * events: which statements Postgres executed without an event (missing), and which events match
 * nothing it executed (extra, duplicated, or failed before Postgres executed them). The rule is written out
 * at the top of test/completeness/completeness.test.ts.
 */
import type { AuditEvent } from '@byline/api';
import { splitStatements } from '../../sidecar/src/sql/lexer.js';
import { blockCommentEnd, isCommentStart, lineCommentEnd } from '../../sidecar/src/sql/scan.js';
import type { LoggedStatement } from './postgres.js';

/** One message Postgres executed: a simple Query or an extended-protocol Execute. */
export interface LoggedUnit {
  pid: number;
  kind: 'statement' | 'execute';
  text: string;
  /** The prepared statement's name, null for the unnamed one (executes only). */
  name: string | null;
  detail: string | undefined;
  applicationName: string | undefined;
  message: string;
}

const EXECUTE = /^execute(?: fetch from)? ([^:/]*)(?:\/[^:]*)?: ([\s\S]*)$/;

export function toUnit(e: LoggedStatement): LoggedUnit | null {
  const base = { pid: e.pid, detail: e.detail, applicationName: e.applicationName, message: e.message };
  if (e.message.startsWith('statement: ')) {
    return { ...base, kind: 'statement', text: e.message.slice('statement: '.length), name: null };
  }
  const m = EXECUTE.exec(e.message);
  if (!m) return null;
  return { ...base, kind: 'execute', text: m[2]!, name: m[1] === '<unnamed>' ? null : m[1]! };
}

/** How Postgres renders bound parameters in the `detail` of an execute entry. */
export function paramsDetail(params: (string | null)[] | null): string | undefined {
  if (!params || params.length === 0) return undefined;
  const parts = params.map((v, i) => `$${i + 1} = ${v === null ? 'NULL' : `'${v.replaceAll("'", "''")}'`}`);
  return `Parameters: ${parts.join(', ')}`;
}

/** Whitespace as Postgres's scanner knows it, comments, and semicolons. */
function skipSeparators(text: string, pos: number): { pos: number; semicolon: boolean } {
  let semicolon = false;
  while (pos < text.length) {
    const c = text.charCodeAt(pos);
    if (c === 59) semicolon = true;
    else if (isCommentStart(text, pos)) {
      pos = c === 45 ? lineCommentEnd(text, pos) : blockCommentEnd(text, pos);
      if (pos < 0) pos = text.length;
      continue;
    } else if (c !== 32 && (c < 9 || c > 13)) break;
    pos++;
  }
  return { pos, semicolon };
}

/**
 * Postgres logs an Execute of a statement made by SQL `PREPARE` with the whole Query that held the
 * PREPARE; the sidecar records the body that ran, which is part of it.
 */
function isPreparedBody(text: string, logged: string): boolean {
  return text.length > 0 && /\bprepare\b/i.test(logged) && logged.includes(text);
}

/** Events consumed when `unit` matches at `events[j]`, or 0. */
export function matchAt(unit: LoggedUnit, events: readonly AuditEvent[], j: number, checkParams: boolean): number {
  const first = events[j];
  if (!first?.statement) return 0;
  // An event that says Postgres skipped its statement cannot stand for one Postgres ran.
  if (first.result?.error?.startsWith('not executed:')) return 0;
  if (unit.kind === 'execute') {
    const s = first.statement;
    const ok =
      s.protocol === 'extended' &&
      (s.text === unit.text || isPreparedBody(s.text, unit.text)) &&
      s.preparedName === unit.name &&
      (!checkParams || paramsDetail(s.params) === unit.detail);
    return ok ? 1 : 0;
  }
  // The events of one Query share its arrival time; their texts must tile the Query's text.
  const simple = (e: AuditEvent | undefined) =>
    e?.statement != null &&
    (e.statement.protocol === 'simple' || e.statement.protocol === 'copy') &&
    e.statement.preparedName === null &&
    e.session.id === first.session.id &&
    e.time === first.time;
  // Results that disagreed with the split: one flagged event per result, each with the whole text.
  if (first.statement.splitMismatch && first.statement.text === unit.text) {
    let k = j + 1;
    while (simple(events[k]) && events[k]!.statement!.splitMismatch && events[k]!.statement!.text === unit.text) k++;
    return k - j;
  }
  let { pos } = skipSeparators(unit.text, 0);
  if (pos === unit.text.length) return simple(first) && first.statement.text === unit.text ? 1 : 0;
  let k = j;
  while (pos < unit.text.length) {
    const e = events[k];
    if (!simple(e)) return 0;
    const t = e!.statement!.text;
    if (t.length === 0 || !unit.text.startsWith(t, pos)) return 0;
    const sep = skipSeparators(unit.text, pos + t.length);
    if (sep.pos < unit.text.length && !sep.semicolon) return 0;
    pos = sep.pos;
    k++;
  }
  return k - j;
}

interface Alignment {
  matchedUnits: number;
  missing: LoggedUnit[];
  /** Indexes of the events that matched. */
  matched: Set<number>;
}

/**
 * Aligns one backend's entries with one session's events, both in order (a longest common
 * subsequence, a Query's entry taking the run of events it tiles). Most entries matched wins;
 * among equals, matches on events that report success, then failure, so that a skipped event
 * with the same text as a later executed one is not taken for it; then the earlier match.
 */
function align(units: LoggedUnit[], events: AuditEvent[], checkParams: boolean): Alignment {
  const U = units.length;
  const E = events.length;
  const W = E + 1;
  const MATCH = 1_000_000; // one more entry matched outweighs any number of preferences
  const score = new Float64Array((U + 1) * W);
  // Per cell: events consumed by matching units[i] at events[j]; 0 skips the event; -1 skips the entry.
  const choice = new Int32Array((U + 1) * W);
  for (let i = U - 1; i >= 0; i--) {
    for (let j = E; j >= 0; j--) {
      let best = score[(i + 1) * W + j]!;
      let pick = -1;
      if (j < E) {
        const skip = score[i * W + j + 1]!;
        if (skip > best) {
          best = skip;
          pick = 0;
        }
        const n = matchAt(units[i]!, events, j, checkParams);
        if (n > 0) {
          const status = events[j]!.result?.status;
          const taken = MATCH + (status === 'ok' ? 2 : status === 'error' ? 1 : 0) + score[(i + 1) * W + j + n]!;
          if (taken >= best) {
            best = taken;
            pick = n;
          }
        }
      }
      score[i * W + j] = best;
      choice[i * W + j] = pick;
    }
  }
  const out: Alignment = { matchedUnits: 0, missing: [], matched: new Set() };
  let i = 0;
  let j = 0;
  while (i < U) {
    const pick = choice[i * W + j]!;
    if (pick < 0) {
      out.missing.push(units[i]!);
      i++;
    } else if (pick === 0) {
      j++;
    } else {
      for (let k = j; k < j + pick; k++) out.matched.add(k);
      out.matchedUnits++;
      i++;
      j += pick;
    }
  }
  return out;
}

function groupBy<T, K>(items: T[], key: (t: T) => K): Map<K, T[]> {
  const m = new Map<K, T[]>();
  for (const item of items) {
    const k = key(item);
    const list = m.get(k);
    if (list) list.push(item);
    else m.set(k, [item]);
  }
  return m;
}

export interface Reconciliation {
  units: LoggedUnit[];
  /** Statements Postgres executed: one per Execute, and per Query the statements it holds. */
  statements: number;
  matchedUnits: number;
  matchedEvents: Set<AuditEvent>;
  missing: LoggedUnit[];
  /**
   * Statements the sidecar recorded as failed that Postgres never executed, so never logged: an
   * Execute whose Parse or Bind failed, or that was skipped after an earlier error in its pipeline.
   */
  refused: AuditEvent[];
  duplicated: AuditEvent[];
  extra: AuditEvent[];
}

/**
 * `log`: entries of the sessions that came through the sidecar (already filtered by role);
 * `events`: statement events. Each backend pid is paired with the session (same application_name
 * when there is one) whose events its entries align with best.
 */
export function reconcile(
  log: LoggedStatement[],
  events: AuditEvent[],
  options: { checkParams?: boolean } = {},
): Reconciliation {
  const checkParams = options.checkParams ?? true;
  const units = log.map(toUnit).filter((u): u is LoggedUnit => u !== null);
  const byPid = groupBy(units, (u) => u.pid);
  const bySession = groupBy(events, (e) => e.session.id);
  for (const list of bySession.values()) list.sort((a, b) => a.session.seq - b.session.seq);

  const missing: LoggedUnit[] = [];
  const matchedEvents = new Set<AuditEvent>();
  const unassigned = new Set(bySession.keys());
  let matchedUnits = 0;
  for (const list of byPid.values()) {
    const app = list[0]!.applicationName ?? null;
    let candidates = [...unassigned].filter((id) => bySession.get(id)![0]!.session.applicationName === app);
    if (candidates.length === 0) candidates = [...unassigned];
    let best: { id: string; a: Alignment } | null = null;
    for (const id of candidates) {
      const a = align(list, bySession.get(id)!, checkParams);
      if (!best || a.matchedUnits > best.a.matchedUnits) best = { id, a };
      if (a.missing.length === 0 && a.matched.size === bySession.get(id)!.length) break;
    }
    if (!best || best.a.matchedUnits === 0) {
      missing.push(...list);
      continue;
    }
    unassigned.delete(best.id);
    const sessionEvents = bySession.get(best.id)!;
    for (const i of best.a.matched) matchedEvents.add(sessionEvents[i]!);
    missing.push(...best.a.missing);
    matchedUnits += best.a.matchedUnits;
  }

  const matchedKeys = new Set([...matchedEvents].map((m) => `${m.session.id}\0${m.time}\0${m.statement?.text}`));
  const refused: AuditEvent[] = [];
  const duplicated: AuditEvent[] = [];
  const extra: AuditEvent[] = [];
  for (const e of events) {
    if (matchedEvents.has(e)) continue;
    if (e.result?.status === 'error') refused.push(e);
    else if (matchedKeys.has(`${e.session.id}\0${e.time}\0${e.statement?.text}`)) duplicated.push(e);
    else extra.push(e);
  }
  const statements = units.reduce(
    (n, u) => n + (u.kind === 'execute' ? 1 : Math.max(1, splitStatements(u.text).length)),
    0,
  );
  return { units, statements, matchedUnits, matchedEvents, missing, refused, duplicated, extra };
}

/** Waits until the logging collector has written everything up to now (it writes asynchronously). */
export async function waitForLog(db: {
  client(): { connect(): Promise<unknown>; query(q: string): Promise<unknown>; end(): Promise<void> };
  statementLog(): LoggedStatement[];
}): Promise<LoggedStatement[]> {
  const marker = `select 'log-marker-${Date.now()}-${Math.random()}'`;
  const c = db.client();
  await c.connect();
  await c.query(marker);
  await c.end();
  const deadline = Date.now() + 10_000;
  for (;;) {
    const log = db.statementLog();
    if (log.some((e) => e.message === `statement: ${marker}`)) return log;
    if (Date.now() > deadline) throw new Error('the statement log never showed the marker');
    await new Promise((r) => setTimeout(r, 50));
  }
}
