/**
 * An AuditEvent as an OpenTelemetry log record (pure, no I/O). Attributes follow OTel's database
 * semantic conventions where one fits (db.system.name, db.namespace, db.operation.name,
 * db.query.text, db.collection.name, db.response.status_code, db.response.returned_rows,
 * server.address, server.port, error.type); the rest is under byline.*. The body is the event
 * exactly as stored (canonical JSON), so a receiver can still re-check its chain hash;
 * `log.record.uid` is the event id, the key to drop repeats of an at-least-once delivery.
 * Bound parameters are left to the body (they are there only as the route's policy allows).
 */
import type { AuditEvent } from '@byline/api';

export type AttributeValue = string | number | boolean | string[];

export interface OtelLog {
  /** Event time and receipt time, epoch nanoseconds split for HrTime. */
  timeMs: number;
  observedMs: number;
  severityNumber: number;
  severityText: string;
  eventName: string;
  body: string;
  attributes: Record<string, AttributeValue>;
  /** From `context.traceparent`, when it is a valid W3C traceparent. */
  trace?: { traceId: string; spanId: string; traceFlags: number };
}

// OTel SeverityNumber: INFO 9, WARN 13, ERROR 17.
const SEVERITY = { info: [9, 'INFO'], warn: [13, 'WARN'], error: [17, 'ERROR'] } as const;

export function toOtelLog(event: AuditEvent, json: string, receivedAt: string): OtelLog {
  const a: Record<string, AttributeValue> = {};
  const set = (key: string, value: AttributeValue | null | undefined) => {
    if (value !== null && value !== undefined) a[key] = value;
  };
  set('log.record.uid', event.id);
  set('db.system.name', 'postgresql');
  set('db.namespace', event.target.database);
  set('server.address', event.target.host);
  set('server.port', event.target.port);
  const st = event.statement;
  if (st) {
    set('db.query.text', st.text);
    set('db.operation.name', st.command);
    const tables = st.tables ?? [];
    // The convention: db.collection.name only when the operation is on a single collection.
    if (tables.length === 1) set('db.collection.name', tables[0]);
    if (tables.length > 0) set('byline.statement.tables', tables);
    set('byline.statement.class', st.class);
    set('byline.statement.protocol', st.protocol);
    set('byline.statement.prepared_name', st.preparedName);
  }
  const r = event.result;
  if (r) {
    set('byline.result.status', r.status);
    set('db.response.status_code', r.sqlstate);
    if (r.status !== 'ok') set('error.type', r.sqlstate ?? r.status);
    set('db.response.returned_rows', r.rows);
    set('byline.result.tag', r.tag);
    set('byline.result.error', r.error);
    set('byline.result.duration_us', r.durationUs);
  }
  set('byline.event.id', event.id);
  set('byline.event.type', event.type);
  const id = event.identity;
  set('byline.identity.name', id.name);
  set('byline.identity.kind', id.kind);
  set('byline.identity.namespace', id.namespace);
  set('byline.identity.service_account', id.serviceAccount);
  set('byline.identity.pod', id.pod);
  set('byline.identity.source', id.source);
  set('byline.session.id', event.session.id);
  set('byline.session.seq', event.session.seq);
  set('byline.session.client', event.session.client);
  set('byline.session.application_name', event.session.applicationName);
  set('byline.session.db_user', event.session.dbUser);
  set('byline.route', event.target.route);
  const z = event.authz;
  if (z) {
    set('byline.authz.decision', z.decision);
    set('byline.authz.rule', z.rule);
    if (z.approval) {
      set('byline.authz.approval.name', z.approval.name);
      set('byline.authz.approval.requested_by', z.approval.requestedBy);
      set('byline.authz.approval.approved_by', z.approval.approvedBy);
      set('byline.authz.approval.reason', z.approval.reason);
      set('byline.authz.approval.ticket', z.approval.ticket);
      set('byline.authz.approval.expires_at', z.approval.expiresAt);
    }
  }
  set('byline.context.task', event.context?.task);
  set('byline.chain.stream', event.chain.stream);
  set('byline.chain.seq', event.chain.seq);
  set('byline.chain.prev', event.chain.prev);
  set('byline.chain.hash', event.chain.hash);
  set('byline.received_at', receivedAt);

  const level =
    r?.status === 'error' || event.type === 'spool.damaged' || event.type === 'spool.deadLettered'
      ? SEVERITY.error
      : r?.status === 'denied' || r?.status === 'unknown' || r?.status === 'cancelled'
        ? SEVERITY.warn
        : SEVERITY.info;
  const log: OtelLog = {
    timeMs: Date.parse(event.time),
    observedMs: Date.parse(receivedAt),
    severityNumber: level[0],
    severityText: level[1],
    eventName: `byline.${event.type}`,
    body: json,
    attributes: a,
  };
  const trace = parseTraceparent(event.context?.traceparent);
  if (trace) log.trace = trace;
  return log;
}

/** W3C traceparent version 00: 00-<32 hex trace id>-<16 hex span id>-<2 hex flags>, ids not all zero. */
export function parseTraceparent(value: string | null | undefined) {
  const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(value ?? '');
  if (!m || /^0+$/.test(m[1]!) || /^0+$/.test(m[2]!)) return undefined;
  return { traceId: m[1]!, spanId: m[2]!, traceFlags: Number.parseInt(m[3]!, 16) };
}
