/**
 * What the viewer does with events, free of the DOM: the exports (JSON Lines are the canonical
 * events, byte for byte what the sidecar sent; CSV is a flat view of them) and the summaries the
 * identity and approval views show.
 */
import type { AuditEvent } from '../../../api/src/audit-event.js';
import { canonicalJson } from '../../../api/src/canonical-json.js';

export type TrailEvent = AuditEvent;

/** One event as `GET /v1/events` returns it: the event, where the store holds it, when it arrived. */
export interface Row {
  event: TrailEvent;
  receivedAt: string;
  stream: string;
  seq: number;
}

/** The canonical text of each event, one per line: what `chain.hash` covers and `byline trail --format json` prints. */
export function toJsonLines(rows: readonly Row[]): string {
  let out = '';
  for (const r of rows) out += `${canonicalJson(r.event)}\n`;
  return out;
}

export const CSV_COLUMNS = [
  'time',
  'identity',
  'type',
  'session',
  'sessionSeq',
  'route',
  'database',
  'class',
  'command',
  'tables',
  'status',
  'rows',
  'durationUs',
  'sqlstate',
  'error',
  'decision',
  'rule',
  'approval',
  'requestedBy',
  'approvedBy',
  'text',
  'stream',
  'chainSeq',
  'id',
] as const;

function csvCells(e: TrailEvent): (string | number | null | undefined)[] {
  return [
    e.time,
    e.identity.name,
    e.type,
    e.session.id,
    e.session.seq,
    e.target.route,
    e.target.database,
    e.statement?.class,
    e.statement?.command,
    e.statement?.tables?.join(' '),
    e.result?.status,
    e.result?.rows,
    e.result?.durationUs,
    e.result?.sqlstate,
    e.result?.error,
    e.authz?.decision,
    e.authz?.rule,
    e.authz?.approval?.name,
    e.authz?.approval?.requestedBy,
    e.authz?.approval?.approvedBy,
    e.statement?.text,
    e.chain.stream,
    e.chain.seq,
    e.id,
  ];
}

/**
 * RFC 4180 quoting. A cell a spreadsheet would run as a formula (an agent controls its statement
 * text) is prefixed with an apostrophe: the CSV is for reading; the JSON Lines export is the evidence.
 */
export function csvCell(value: string | number | null | undefined): string {
  if (value === null || value === undefined) return '';
  let s = String(value);
  if (typeof value === 'string' && /^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function toCsv(rows: readonly Row[]): string {
  const lines = [CSV_COLUMNS.join(',')];
  for (const r of rows) lines.push(csvCells(r.event).map(csvCell).join(','));
  return `${lines.join('\r\n')}\r\n`;
}

export interface SessionSummary {
  id: string;
  first: string;
  last: string;
  statements: number;
  route: string;
}

export interface IdentitySummary {
  /** Most recent first. */
  sessions: SessionSummary[];
  byClass: [string, number][];
  denials: Row[];
}

export function summarizeIdentity(rows: readonly Row[]): IdentitySummary {
  const sessions = new Map<string, SessionSummary>();
  const byClass = new Map<string, number>();
  const denials: Row[] = [];
  for (const r of rows) {
    const e = r.event;
    let s = sessions.get(e.session.id);
    if (!s) {
      s = { id: e.session.id, first: e.time, last: e.time, statements: 0, route: e.target.route };
      sessions.set(e.session.id, s);
    }
    s.last = e.time;
    if (e.type !== 'statement') continue;
    s.statements++;
    const cls = e.statement?.class ?? 'unknown';
    byClass.set(cls, (byClass.get(cls) ?? 0) + 1);
    if (e.result?.status === 'denied' || e.authz?.decision === 'deny') denials.push(r);
  }
  return {
    sessions: [...sessions.values()].reverse(),
    byClass: [...byClass.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])),
    denials,
  };
}

export interface ApprovalSummary {
  /** Every distinct grant seen (an approval renewed or re-granted shows each). */
  grants: {
    /** Null when the events do not say (sidecars and collectors before `requestedBy`). */
    requestedBy: string | null;
    approvedBy: string;
    reason: string | null;
    ticket: string | null;
    expiresAt: string | null;
  }[];
  /** Who ran statements under it. */
  usedBy: string[];
  statements: Row[];
}

export function summarizeApproval(rows: readonly Row[]): ApprovalSummary {
  const grants = new Map<string, ApprovalSummary['grants'][number]>();
  const usedBy = new Set<string>();
  const statements: Row[] = [];
  for (const r of rows) {
    const a = r.event.authz?.approval;
    if (!a) continue;
    const grant = {
      requestedBy: a.requestedBy ?? null,
      approvedBy: a.approvedBy,
      reason: a.reason,
      ticket: a.ticket,
      expiresAt: a.expiresAt,
    };
    grants.set(JSON.stringify(grant), grant);
    usedBy.add(r.event.identity.name);
    if (r.event.type === 'statement') statements.push(r);
  }
  return { grants: [...grants.values()], usedBy: [...usedBy].sort(), statements };
}

/** A session's events in the order they happened in it. */
export function sessionOrder(rows: readonly Row[]): Row[] {
  return [...rows].sort((a, b) => a.event.session.seq - b.event.session.seq);
}
