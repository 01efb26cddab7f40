/**
 * The Approval webhook's core: AdmissionReview in, AdmissionReview out. No sockets: the identity
 * lookup and the SubjectAccessReview come in as functions, so the rules below are tested without I/O.
 *
 * CREATE of an Approval:
 *   spec.requestedBy := the authenticated user (a different value sent by the client is refused)
 *   spec.identity must name an AgentIdentity of the namespace, spec.route one of its routes
 *
 * UPDATE of approvals/status (the only way to decide; the spec is immutable by CEL). The phase moves
 *   Pending  → Approved   by a holder of `approve` on approvals.byline.dev who is not the requester;
 *                         stamps approvedBy, decidedAt, expiresAt (now + spec.duration, or spec.notAfter)
 *   Pending  → Denied     by a holder of `approve`; stamps deniedBy, decidedAt
 *   Approved → Denied     the same (a revocation): stamps deniedBy, decidedAt, expiresAt := now
 *   Approved → Expired    by anyone allowed to write the status, only once expiresAt has passed
 *   Pending  → Expired    likewise, once spec.notAfter has passed
 *   and nowhere else. requestedBy, approvedBy, deniedBy, decidedAt and expiresAt are Byline's: a value
 *   a client sends that is neither the stamped one nor the stored one is refused; the answer's status
 *   always carries the stamped values.
 *
 * Like cert-manager's CertificateRequest approval, the decision is gated here, in admission, with a
 * SubjectAccessReview for a custom verb: RBAC alone cannot tell a status write that approves from one
 * that does not.
 */
import {
  APPROVE_VERB,
  type Approval,
  type ApprovalPhase,
  type ApprovalStatus,
  type crds,
  effectiveGuardrails,
} from '@byline/api';
import type { AdmissionResponse, AdmissionReviewResponse } from '../injection/admission.js';
import { ADMISSION_API_VERSION } from '../injection/admission.js';
import type { JsonPatchOperation } from '../injection/json-patch.js';

export interface UserInfo {
  username: string;
  uid?: string;
  groups?: string[];
  extra?: Record<string, string[]>;
}

export interface ApprovalAdmissionDeps {
  now: () => Date;
  /** The AgentIdentity, or undefined when the namespace has none of that name. */
  identity: (namespace: string, name: string) => Promise<crds.AgentIdentity | undefined>;
  /** The DatabaseRoute (its guardrail defaults), or undefined. */
  route?: (namespace: string, name: string) => crds.DatabaseRoute | undefined;
  /** A SubjectAccessReview: may `user` use the approve verb on this Approval? */
  mayApprove: (user: UserInfo, namespace: string, name: string) => Promise<{ allowed: boolean; reason?: string }>;
}

/** The fields Byline stamps; a client never chooses them. */
const STAMPED = ['requestedBy', 'approvedBy', 'deniedBy', 'decidedAt', 'expiresAt'] as const;
type Stamped = Pick<ApprovalStatus, (typeof STAMPED)[number]>;

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

const review = (response: AdmissionResponse): AdmissionReviewResponse => ({
  apiVersion: ADMISSION_API_VERSION,
  kind: 'AdmissionReview',
  response,
});

const deny = (uid: string, code: number, reason: string, message: string) =>
  review({ uid, allowed: false, status: { code, reason, message: `byline: ${message}` } });

const allow = (uid: string, patch: JsonPatchOperation[], warnings: string[] = []) =>
  review({
    uid,
    allowed: true,
    ...(warnings.length > 0 ? { warnings } : {}),
    ...(patch.length > 0
      ? { patchType: 'JSONPatch' as const, patch: Buffer.from(JSON.stringify(patch)).toString('base64') }
      : {}),
  });

/** RFC 3339 with seconds, as the API server writes times. */
export const rfc3339 = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

/** `2h`, `90m`, `1h30m`, `45s` → milliseconds; undefined when it is not such a duration. */
export function parseDuration(text: string): number | undefined {
  const m = /^(?:(\d{1,4})h)?(?:(\d{1,5})m)?(?:(\d{1,6})s)?$/.exec(text);
  if (!m || text === '') return undefined;
  return ((Number(m[1] ?? 0) * 60 + Number(m[2] ?? 0)) * 60 + Number(m[3] ?? 0)) * 1000;
}

interface Parsed {
  uid: string;
  operation: 'CREATE' | 'UPDATE';
  subResource: string;
  namespace: string;
  user: UserInfo;
  object: Approval;
  oldObject?: Approval;
}

function parse(value: unknown): Parsed | { uid: string; problem: string } {
  if (!isRecord(value)) return { uid: '', problem: 'expected an AdmissionReview object' };
  const request = value.request;
  const uid = isRecord(request) && typeof request.uid === 'string' ? request.uid : '';
  const bad = (problem: string) => ({ uid, problem });
  if (value.apiVersion !== ADMISSION_API_VERSION || value.kind !== 'AdmissionReview')
    return bad(`expected apiVersion ${ADMISSION_API_VERSION} and kind AdmissionReview`);
  if (!isRecord(request)) return bad('the AdmissionReview has no request');
  if (uid === '') return bad('request.uid is missing');
  const kind = isRecord(request.kind) ? request.kind : {};
  if (kind.group !== 'byline.dev' || kind.kind !== 'Approval')
    return bad(`this webhook handles byline.dev Approvals only, got ${JSON.stringify(request.kind)}`);
  const subResource = typeof request.subResource === 'string' ? request.subResource : '';
  const operation = request.operation;
  if (!((operation === 'CREATE' && subResource === '') || (operation === 'UPDATE' && subResource === 'status')))
    return bad(
      `this webhook handles CREATE of approvals and UPDATE of approvals/status, got ${String(operation)} ${subResource || '(main resource)'}; check the webhook configuration's rules`,
    );
  const userInfo = isRecord(request.userInfo) ? request.userInfo : {};
  if (typeof userInfo.username !== 'string' || userInfo.username === '')
    return bad('request.userInfo.username is missing');
  const user: UserInfo = {
    username: userInfo.username,
    ...(typeof userInfo.uid === 'string' ? { uid: userInfo.uid } : {}),
    ...(Array.isArray(userInfo.groups) ? { groups: userInfo.groups.filter((g) => typeof g === 'string') } : {}),
    ...(isRecord(userInfo.extra) ? { extra: userInfo.extra as Record<string, string[]> } : {}),
  };
  const object = request.object;
  if (!isRecord(object) || !isRecord(object.spec)) return bad('request.object is not an Approval with a spec');
  if (object.status !== undefined && object.status !== null && !isRecord(object.status))
    return bad('request.object.status is not an object');
  const namespace = typeof request.namespace === 'string' ? request.namespace : '';
  if (namespace === '') return bad('request.namespace is missing');
  const oldObject = request.oldObject;
  if (operation === 'UPDATE' && (!isRecord(oldObject) || !isRecord(oldObject.spec)))
    return bad('request.oldObject is not an Approval with a spec');
  return {
    uid,
    operation,
    subResource,
    namespace,
    user,
    object: object as unknown as Approval,
    ...(operation === 'UPDATE' ? { oldObject: oldObject as unknown as Approval } : {}),
  };
}

/** Admits one AdmissionReview; never throws (an unexpected failure is an answer too). */
export async function admitApproval(value: unknown, deps: ApprovalAdmissionDeps): Promise<AdmissionReviewResponse> {
  const parsed = parse(value);
  if ('problem' in parsed) return deny(parsed.uid, 400, 'BadRequest', `malformed AdmissionReview: ${parsed.problem}`);
  try {
    return parsed.operation === 'CREATE' ? await admitCreate(parsed, deps) : await admitStatus(parsed, deps);
  } catch (err) {
    return deny(parsed.uid, 500, 'InternalError', `checking the Approval failed: ${(err as Error).message}`);
  }
}

async function admitCreate(p: Parsed, deps: ApprovalAdmissionDeps): Promise<AdmissionReviewResponse> {
  const spec = p.object.spec as Partial<Approval['spec']>;
  if (spec.requestedBy !== undefined && spec.requestedBy !== p.user.username) {
    return deny(
      p.uid,
      403,
      'Forbidden',
      `spec.requestedBy is stamped by Byline from the authenticated user (you are "${p.user.username}"); leave it out`,
    );
  }
  // Malformed fields are left to the schema, which runs after this webhook and names them.
  let warnings: string[] = [];
  if (typeof spec.identity === 'string' && spec.identity !== '') {
    const identity = await deps.identity(p.namespace, spec.identity);
    if (!identity) {
      return deny(
        p.uid,
        422,
        'Invalid',
        `spec.identity: AgentIdentity "${spec.identity}" not found in namespace "${p.namespace}"`,
      );
    }
    const routes = (identity.spec?.routes ?? []).map((r) => r.name);
    if (typeof spec.route === 'string' && !routes.includes(spec.route)) {
      return deny(
        p.uid,
        422,
        'Invalid',
        `spec.route: AgentIdentity ${p.namespace}/${spec.identity} has no route "${spec.route}" (its routes: ${routes.map((r) => `"${r}"`).join(', ') || 'none'})`,
      );
    }
    if (typeof spec.route === 'string' && isRecord(spec.scope)) {
      const gated = effectiveGuardrails(
        deps.route?.(p.namespace, spec.route)?.spec?.guardrails,
        identity.spec?.guardrails,
      ).requireApproval;
      warnings = ungated(spec.scope as Approval['spec']['scope'], gated).map(
        (what) =>
          `byline: ${what} is not approval-gated for ${spec.identity} on route ${spec.route} (guardrails.requireApproval): this approval unlocks nothing for it`,
      );
    }
  }
  return allow(p.uid, [{ op: 'add', path: '/spec/requestedBy', value: p.user.username }], warnings);
}

/** The scope entries no requireApproval rule gates (an approval for them changes nothing). */
function ungated(scope: Approval['spec']['scope'], gated: Approval['spec']['scope'] | undefined): string[] {
  const classes = new Set<string>(gated?.classes ?? []);
  const tables = new Set(gated?.tables ?? []);
  return [
    ...(Array.isArray(scope.classes) ? scope.classes : []).filter((c) => !classes.has(c)).map((c) => `class "${c}"`),
    ...(Array.isArray(scope.tables) ? scope.tables : []).filter((t) => !tables.has(t)).map((t) => `table "${t}"`),
  ];
}

const ALLOWED_MOVES: Record<ApprovalPhase, ApprovalPhase[]> = {
  Pending: ['Approved', 'Denied', 'Expired'],
  Approved: ['Denied', 'Expired'],
  Denied: [],
  Expired: [],
};

async function admitStatus(p: Parsed, deps: ApprovalAdmissionDeps): Promise<AdmissionReviewResponse> {
  const old = (p.oldObject!.status ?? {}) as ApprovalStatus;
  const sent = (p.object.status ?? {}) as ApprovalStatus;
  const spec = p.oldObject!.spec;
  const name = p.oldObject!.metadata?.name ?? '';
  const from: ApprovalPhase = old.phase ?? 'Pending';
  const to: ApprovalPhase = sent.phase ?? 'Pending';
  const now = deps.now();
  const refuse = (message: string) => deny(p.uid, 403, 'Forbidden', message);

  const base: Stamped = { ...pickStamped(old), ...(spec.requestedBy ? { requestedBy: spec.requestedBy } : {}) };
  let stamped: Stamped = base;
  let decisionReason = old.decisionReason;

  if (from !== to) {
    if (!ALLOWED_MOVES[from].includes(to)) {
      const allowed = ALLOWED_MOVES[from];
      return refuse(
        `status.phase cannot change from ${from} to ${to} (${allowed.length > 0 ? `from ${from} only to ${allowed.join(' or ')}` : `${from} is final`})`,
      );
    }
    if (to === 'Expired') {
      const end = from === 'Approved' ? old.expiresAt : spec.notAfter;
      if (!end || Date.parse(end) > now.getTime()) {
        return refuse(
          `status.phase: Approval ${p.namespace}/${name} cannot expire before ${end ?? (from === 'Pending' ? 'it has a spec.notAfter' : 'its expiresAt')}`,
        );
      }
    } else {
      // Approved or Denied: a decision.
      if (to === 'Approved') {
        // Created while no webhook stamped it (before the operator first registered): nobody can
        // tell who asked, so nobody can tell whether the approver is someone else.
        if (!spec.requestedBy) {
          return refuse(
            `Approval ${p.namespace}/${name} has no spec.requestedBy (it was created without Byline's webhook), so it cannot be approved: request a new one`,
          );
        }
        // The identity may have lost the route since the request.
        const identity = await deps.identity(p.namespace, spec.identity);
        if (!identity?.spec?.routes?.some((r) => r.name === spec.route)) {
          return deny(
            p.uid,
            422,
            'Invalid',
            `spec.route: AgentIdentity ${p.namespace}/${spec.identity} ${identity ? `no longer has route "${spec.route}"` : 'no longer exists'}; this approval can only be denied`,
          );
        }
      }
      if (to === 'Approved' && spec.requestedBy === p.user.username) {
        return refuse(
          `"${p.user.username}" requested Approval ${p.namespace}/${name} and cannot approve it: another person with the "${APPROVE_VERB}" permission must`,
        );
      }
      const verdict = await deps.mayApprove(p.user, p.namespace, name);
      if (!verdict.allowed) {
        return refuse(
          `"${p.user.username}" may not decide Approval ${p.namespace}/${name}: it needs the "${APPROVE_VERB}" verb on approvals.byline.dev (e.g. the byline-approver ClusterRole)${verdict.reason ? ` (${verdict.reason})` : ''}`,
        );
      }
      const decidedAt = rfc3339(now);
      decisionReason = sent.decisionReason;
      if (to === 'Approved') {
        const expiresAt = expiryOf(spec, now);
        if ('problem' in expiresAt) return refuse(expiresAt.problem);
        stamped = { ...base, approvedBy: p.user.username, decidedAt, expiresAt: expiresAt.at };
      } else {
        stamped = {
          ...base,
          deniedBy: p.user.username,
          decidedAt,
          ...(from === 'Approved' ? { expiresAt: decidedAt } : {}),
        };
      }
    }
  } else if ((sent.decisionReason ?? undefined) !== (old.decisionReason ?? undefined)) {
    return refuse('status.decisionReason is set only with a decision (when status.phase becomes Approved or Denied)');
  }

  for (const field of STAMPED) {
    const value = sent[field];
    // The stored value is no forgery: a merge patch of the phase alone still carries it.
    if (value !== undefined && value !== stamped[field] && value !== old[field]) {
      return refuse(
        `status.${field} is stamped by Byline from the API server's authenticated user and clock; it cannot be set or changed (sent ${JSON.stringify(value)})`,
      );
    }
  }
  const status: ApprovalStatus = {
    phase: to,
    ...stamped,
    ...(decisionReason !== undefined ? { decisionReason } : {}),
  };
  return allow(p.uid, [{ op: 'add', path: '/status', value: status }]);
}

function pickStamped(s: ApprovalStatus): Stamped {
  const out: Stamped = {};
  for (const f of STAMPED) if (s[f] !== undefined) out[f] = s[f];
  return out;
}

function expiryOf(spec: Approval['spec'], now: Date): { at: string } | { problem: string } {
  if (spec.notAfter !== undefined) {
    const end = Date.parse(spec.notAfter);
    if (Number.isNaN(end)) return { problem: `spec.notAfter is not a time: ${spec.notAfter}` };
    if (end <= now.getTime()) return { problem: `spec.notAfter (${spec.notAfter}) has passed; request a new approval` };
    return { at: rfc3339(new Date(end)) };
  }
  const ms = spec.duration === undefined ? undefined : parseDuration(spec.duration);
  if (ms === undefined || ms <= 0)
    return { problem: `spec.duration must be a positive duration like 2h, got ${JSON.stringify(spec.duration)}` };
  return { at: rfc3339(new Date(now.getTime() + ms)) };
}

export interface ApprovalHttpAnswer {
  status: number;
  body: string;
  /** allowed/denied/error, for metrics and logs. */
  outcome: 'allowed' | 'denied' | 'error';
  message?: string;
}

/** The HTTP layer's part: content type and JSON, then admitApproval. */
export async function handleApprovalHttp(
  body: Buffer,
  contentType: string | undefined,
  deps: ApprovalAdmissionDeps,
): Promise<ApprovalHttpAnswer> {
  const error = (status: number, message: string): ApprovalHttpAnswer => ({
    status,
    body: JSON.stringify({ error: `byline: ${message}` }),
    outcome: 'error',
    message,
  });
  const mediaType = contentType?.split(';')[0]?.trim().toLowerCase();
  if (mediaType !== 'application/json')
    return error(415, `expected Content-Type application/json, got ${contentType ?? 'none'}`);
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch (err) {
    return error(400, `the body is not JSON: ${(err as Error).message}`);
  }
  const response = await admitApproval(value, deps);
  const r = response.response;
  return {
    status: 200,
    body: JSON.stringify(response),
    outcome: r.allowed ? 'allowed' : r.status?.code === 400 || r.status?.code === 500 ? 'error' : 'denied',
    ...(r.status?.message ? { message: r.status.message } : {}),
  };
}
