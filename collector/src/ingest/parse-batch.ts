/**
 * A `POST /v1/events` body → validated events, or the reason the whole batch is refused. Pure.
 *
 * Each line must be one AuditEvent in the canonical JSON the sidecar emits: valid against the
 * schema, byte-for-byte canonical (so the stored text is the text the chain covers, and JSON with
 * duplicate keys cannot smuggle two readings of one event), with a `chain.hash` that matches its
 * content, and written for the identity the token stands for.
 */
import { type AuditEvent, AuditEventSchema, canonicalJson, isValid, problemsOf } from '@byline/api';
import type { WriterIdentity } from '../auth/authenticator.js';
import type { IngestEvent } from '../store/types.js';
import { timeMicros } from '../time.js';
import { type IdentityField, identityMismatch } from './identity-check.js';
import { lineChainHash } from './line-hash.js';

export type RejectReason = 'malformed' | 'schema' | 'canonical' | 'hash' | 'identity' | 'too-many-events';

export interface LineProblem {
  line: number;
  reason: RejectReason;
  message: string;
  /** For `identity`: the first identity field that differs from the writer's. */
  field?: IdentityField;
}

/** An event a gateway wrote, for the attribution check that needs the AgentIdentities (oidc-issuer-check.ts). */
export interface GatewayLine {
  line: number;
  identity: AuditEvent['identity'] & { oidc: NonNullable<AuditEvent['identity']['oidc']> };
}

export type ParsedBatch =
  | { ok: true; events: IngestEvent[]; gatewayLines: GatewayLine[] }
  | { ok: false; status: 400 | 403 | 413; error: string; problems: LineProblem[] };

const MAX_PROBLEMS = 20;
const utf8 = new TextDecoder('utf-8', { fatal: true });

export function parseBatch(body: Uint8Array, writer: WriterIdentity, maxEvents: number): ParsedBatch {
  let text: string;
  try {
    text = utf8.decode(body);
  } catch {
    return refuse(400, [{ line: 0, reason: 'malformed', message: 'the body is not valid UTF-8' }]);
  }
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop(); // the newline that ends the last line
  if (lines.length === 0) {
    return refuse(400, [
      { line: 0, reason: 'malformed', message: 'the body holds no events (one JSON event per line)' },
    ]);
  }
  if (lines.length > maxEvents) {
    const message = `the batch holds ${lines.length} events; at most ${maxEvents} are accepted per request`;
    return refuse(413, [{ line: 0, reason: 'too-many-events', message }]);
  }

  const events: IngestEvent[] = [];
  const gatewayLines: GatewayLine[] = [];
  const bad: LineProblem[] = [];
  const foreign: LineProblem[] = [];
  for (let i = 0; i < lines.length; i++) {
    const n = i + 1;
    const result = parseLine(lines[i]!, n);
    if ('problem' in result) {
      if (bad.length < MAX_PROBLEMS) bad.push(result.problem);
      continue;
    }
    const claim = identityMismatch(result.event.identity, writer, result.event.incident !== undefined);
    if (claim) {
      foreign.push({ line: n, reason: 'identity', message: `line ${n}: ${claim.message}`, field: claim.field });
      continue;
    }
    events.push(toIngest(result.event, result.timeUs, lines[i]!));
    // identityMismatch made sure a gateway's events are oidc ones, or its own incidents.
    if (writer.gateway && result.event.identity.source === 'oidc')
      gatewayLines.push({ line: n, identity: result.event.identity as GatewayLine['identity'] });
  }
  if (bad.length > 0) return refuse(400, bad);
  if (foreign.length > 0) return refuse(403, foreign);
  return { ok: true, events, gatewayLines };
}

function parseLine(line: string, n: number): { event: AuditEvent; timeUs: number } | { problem: LineProblem } {
  if (line === '') return { problem: { line: n, reason: 'malformed', message: `line ${n}: empty line` } };
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (e) {
    return {
      problem: { line: n, reason: 'malformed', message: `line ${n}: not valid JSON (${(e as Error).message})` },
    };
  }
  if (!isValid(AuditEventSchema, value)) {
    const message = `line ${n}: ${problemsOf(AuditEventSchema, value).join('; ')}`;
    return { problem: { line: n, reason: 'schema', message } };
  }
  const event = value as AuditEvent;
  // An incident (spool.damaged, spool.deadLettered) says what happened, and only such events carry one.
  if ((event.incident?.kind ?? null) !== (event.type.startsWith('spool.') ? event.type : null)) {
    const message = event.incident
      ? `line ${n}: incident.kind is "${event.incident.kind}", but only a "${event.incident.kind}" event may carry it (type is "${event.type}")`
      : `line ${n}: a "${event.type}" event needs its incident`;
    return { problem: { line: n, reason: 'schema', message } };
  }
  if (canonicalJson(event) !== line) {
    const message = `line ${n}: not in canonical JSON form (RFC 8785: keys sorted, no white space), as the sidecar emits events`;
    return { problem: { line: n, reason: 'canonical', message } };
  }
  // The line is the event's canonical JSON now, so the hash is taken over the line itself.
  if (lineChainHash(line, event) !== event.chain.hash) {
    const message = `line ${n}: chain.hash does not match the event's content (event ${event.id} was altered after it was hashed)`;
    return { problem: { line: n, reason: 'hash', message } };
  }
  const timeUs = timeMicros(event.time);
  if (timeUs === undefined) {
    return { problem: { line: n, reason: 'schema', message: `line ${n}: time: not an RFC 3339 time` } };
  }
  return { event, timeUs };
}

/** The columns a store keeps beside a validated event's text. */
export function toIngest(e: AuditEvent, timeUs: number, json: string): IngestEvent {
  const tables = e.statement?.tables;
  return {
    id: e.id,
    timeUs,
    type: e.type,
    identity: e.identity.name,
    sessionId: e.session.id,
    sessionSeq: e.session.seq,
    route: e.target.route,
    database: e.target.database,
    stream: e.chain.stream,
    seq: e.chain.seq,
    prev: e.chain.prev,
    hash: e.chain.hash,
    approval: e.authz?.approval?.name ?? null,
    statementClass: e.statement?.class ?? null,
    status: e.result?.status ?? null,
    tables: tables ? [...new Set(tables)] : [],
    json,
  };
}

function refuse(status: 400 | 403 | 413, problems: LineProblem[]): ParsedBatch {
  const more = problems.length > 1 ? ` (and ${problems.length - 1} more problem${problems.length > 2 ? 's' : ''})` : '';
  return { ok: false, status, error: `batch refused, nothing stored: ${problems[0]!.message}${more}`, problems };
}
