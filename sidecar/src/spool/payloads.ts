/**
 * What spool records hold (their JSON payloads), and turning them back into what the sidecar
 * works with. Payloads stay JSON, not binary: JSON never holds a raw byte below 0x0A, which is
 * what lets the reader resync after damage without taking statement text (or a binary parameter)
 * that imitates a frame for one (record-codec.ts). Begin records are the hot path, so their JSON
 * is built as a string, without an intermediate object.
 */
import type { SessionInfo } from '../audit/event-builder.js';
import type { AuthzDecision, StatementRecord } from '../capture/records.js';

export interface SessionRecord {
  id: string;
  identity: SessionInfo['identity'];
  target: SessionInfo['target'];
  client: string | null;
  dbUser: string | null;
  applicationName: string | null;
}

/** A begin record's payload, as read back. */
export interface BeginPayload {
  s: string;
  q: number;
  k: StatementRecord['kind'];
  t: number;
  x: string;
  n: string | null;
  a: string | null;
  p?: { l: number[]; f: number[]; v?: (string | null)[] };
  /** The scan flags the statement ran under (absent: defaults). */
  f?: number;
  /** The exact bytes, when `x` does not render them exactly: base64, client encoding, bytewise. */
  r?: { b: string; e: string; w: boolean };
  /**
   * The policy's decisions (absent: no policy decided), so a recovered event says why it ran or
   * not: `i`, the ids of this segment's decision records; `z`, the decisions themselves (written
   * by sidecars before decision records existed; recovery resolves `i` into `z`).
   */
  i?: number[];
  z?: AuthzDecision[];
}

/** A decision record's payload: the decision, and the id the segment's begin records use for it. */
export interface DecisionPayload {
  i: number;
  d: AuthzDecision;
}

/** The first line of an events record: which begin it completes, and the session's next seq. */
export interface EventsHeader {
  s: string | null;
  q: number | null;
  n: number | null;
  /** The session ended with this record. */
  end?: true;
  /** When it was written (ms), for the oldest-unshipped figure. */
  w: number;
}

export function sessionPayload(session: SessionInfo): SessionRecord {
  return {
    id: session.id,
    identity: session.identity,
    target: session.target,
    client: session.client,
    dbUser: session.dbUser,
    applicationName: session.applicationName,
  };
}

/**
 * The begin record of `record`, as JSON (the keys of BeginPayload). `decisionId` gives each
 * decision's id in the segment, writing its decision record first when it has none yet.
 */
export function beginPayload(
  sessionId: string,
  record: StatementRecord,
  decisionId: (decision: AuthzDecision) => number,
): string {
  let json = `{"s":${JSON.stringify(sessionId)},"q":${record.seq},"k":"${record.kind}","t":${record.receivedAt},"x":${JSON.stringify(record.text)},"n":${record.preparedName === null ? 'null' : JSON.stringify(record.preparedName)},"a":${record.applicationName === null ? 'null' : JSON.stringify(record.applicationName)}`;
  const params = record.params;
  if (params) {
    json += `,"p":{"l":[${params.lengths.join(',')}],"f":[${params.formats.join(',')}]`;
    if (params.values) {
      json += ',"v":[';
      for (let i = 0; i < params.values.length; i++) {
        const v = params.values[i];
        if (i > 0) json += ',';
        json += v === null || v === undefined ? 'null' : `"${v.toString('base64')}"`;
      }
      json += ']';
    }
    json += '}';
  }
  if (record.scanFlags) json += `,"f":${record.scanFlags}`;
  const raw = record.raw;
  if (raw)
    json += `,"r":{"b":"${raw.bytes.toString('base64')}","e":${JSON.stringify(raw.encoding)},"w":${raw.bytewise}}`;
  const decisions = record.authz;
  if (decisions && decisions.length > 0) {
    json += ',"i":[';
    for (let i = 0; i < decisions.length; i++) json += (i > 0 ? ',' : '') + decisionId(decisions[i]!);
    json += ']';
  }
  return `${json}}`;
}

/** Decisions are shared by every statement they decide (the engine caches them): serialize each once. */
const decisionJsons = new WeakMap<AuthzDecision, string>();
export function decisionJson(d: AuthzDecision): string {
  let json = decisionJsons.get(d);
  if (json === undefined) {
    json = JSON.stringify({
      allow: d.allow,
      rule: d.rule,
      approval: d.approval,
      message: d.message,
      hint: d.hint,
    } satisfies AuthzDecision);
    decisionJsons.set(d, json);
  }
  return json;
}

/** A decision record's payload, as JSON (the keys of DecisionPayload). */
export function decisionPayload(id: number, decisionJsonText: string): string {
  return `{"i":${id},"d":${decisionJsonText}}`;
}

/**
 * What a recovered statement says when the decision record its begin refers to was lost to
 * damage: not "allow" (nothing shows it was), and why (the `spool.damaged` event names the bytes).
 */
export const LOST_DECISION: AuthzDecision = Object.freeze({
  allow: false,
  rule: 'unknown: the spool record of this decision was damaged',
  approval: null,
  message: null,
  hint: null,
});

/** A recovered begin record as the statement it stands for, under the scan settings it ran under. */
export function beginToRecord(b: BeginPayload): StatementRecord {
  const record: StatementRecord = {
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
  if (b.f !== undefined) record.scanFlags = b.f;
  if (b.r) record.raw = { bytes: Buffer.from(b.r.b, 'base64'), encoding: b.r.e, bytewise: b.r.w };
  if (b.z) record.authz = b.z;
  return record;
}
