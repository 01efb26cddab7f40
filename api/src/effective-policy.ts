/**
 * The effective policy of one AgentIdentity, from the objects the API server holds (pure: the
 * caller passes the objects and the clock). Per route of the identity:
 *   - access from `spec.routes[].access` (the CRD's default, readWrite, when absent);
 *   - guardrail layers: the DatabaseRoute's `spec.guardrails` (defaults), then the identity's
 *     `spec.guardrails`. The engine applies every layer, so the identity can only tighten;
 *   - the Approved Approvals for this identity and route that have not expired yet.
 * Shared by the collector (which serves the document) and the operator (which reports its problems
 * in the AgentIdentity's Ready condition), so both judge with the same code.
 * Whatever cannot be read fails closed: a missing DatabaseRoute or unreadable guardrails become a
 * layer that denies every class (naming why), an unreadable Approval is left out.
 */
import { createHash } from 'node:crypto';
import { StatementClass } from './audit-event.js';
import { canonicalJson } from './canonical-json.js';
import { ACCESS_LEVELS } from './crds/guardrails.js';
import {
  type PolicyAccess,
  type PolicyApproval,
  type PolicyDocument,
  type PolicyGuardrailLayer,
  PolicyGuardrails,
  type PolicyRoute,
  PolicyTablePattern,
} from './policy.js';
import { problemsOf } from './validate.js';

export interface ObjectMeta {
  name: string;
  namespace?: string;
}
export interface IdentityObject {
  metadata: ObjectMeta;
  spec?: { routes?: unknown; guardrails?: unknown };
}
export interface RouteObject {
  metadata: ObjectMeta;
  spec?: { guardrails?: unknown };
}
export interface ApprovalObject {
  metadata: ObjectMeta;
  spec?: {
    identity?: unknown;
    route?: unknown;
    scope?: unknown;
    reason?: unknown;
    ticket?: unknown;
    requestedBy?: unknown;
  };
  status?: { phase?: unknown; approvedBy?: unknown; expiresAt?: unknown };
}

export interface EffectivePolicy {
  document: PolicyDocument;
  /** What could not be read (and so was failed closed or left out), for logs and metrics. */
  problems: string[];
}

const ALL_CLASSES: readonly string[] = StatementClass.anyOf.map((s) => String(s.const));
const TABLE_PATTERN = new RegExp(PolicyTablePattern.pattern as string);

const denyAll = (source: string): PolicyGuardrailLayer => ({
  source,
  guardrails: { deny: { classes: ALL_CLASSES as never } },
});

export function effectivePolicy(
  identity: IdentityObject,
  routes: ReadonlyMap<string, RouteObject>,
  approvals: readonly ApprovalObject[],
  now: number,
): EffectivePolicy {
  const namespace = identity.metadata.namespace ?? '';
  const identitySource = `AgentIdentity ${namespace}/${identity.metadata.name}`;
  const problems: string[] = [];
  const out: PolicyRoute[] = [];
  const entries = Array.isArray(identity.spec?.routes) ? identity.spec.routes : [];
  const identityLayer = guardrailLayer(identitySource, identity.spec?.guardrails, problems);
  for (const entry of entries) {
    const name = (entry as { name?: unknown })?.name;
    if (typeof name !== 'string') continue;
    const rawAccess = (entry as { access?: unknown }).access ?? 'readWrite';
    const layers: PolicyGuardrailLayer[] = [];
    let access: PolicyAccess = 'read';
    if ((ACCESS_LEVELS as readonly unknown[]).includes(rawAccess)) access = rawAccess as PolicyAccess;
    else {
      problems.push(`${identitySource} routes[${name}].access: "${String(rawAccess)}" is not an access level`);
      layers.push(denyAll(`${identitySource} (routes[${name}].access is not an access level)`));
    }
    const routeSource = `DatabaseRoute ${namespace}/${name}`;
    const route = routes.get(name);
    if (route === undefined) {
      problems.push(`${routeSource} does not exist`);
      layers.push(denyAll(`${routeSource} (not found)`));
    } else {
      const routeLayer = guardrailLayer(routeSource, route.spec?.guardrails, problems);
      if (routeLayer) layers.push(routeLayer);
    }
    if (identityLayer) layers.push(identityLayer);
    out.push({
      name,
      access,
      accessSource: identitySource,
      guardrails: layers,
      approvals: activeApprovals(approvals, identity.metadata.name, name, now, problems),
    });
  }
  const body = { identity: { name: identity.metadata.name, namespace: namespace || null }, routes: out };
  return { document: { version: versionOf(body), ...body }, problems };
}

/** A digest of the content: the same policy has the same version on every collector replica and after a restart. */
export function versionOf(body: Omit<PolicyDocument, 'version'>): string {
  return createHash('sha256').update(canonicalJson(body)).digest('hex').slice(0, 20);
}

/**
 * The document for a sidecar that does not read `approvals[].requestedBy` (it did not name it in
 * POLICY_FIELDS_HEADER): an older sidecar refuses a document with a field it does not know, and
 * would keep its previous policy, approvals missing. Its own version, so its long-polls compare
 * like with like. The same object when nothing is to be left out.
 */
export function withoutRequesters(document: PolicyDocument): PolicyDocument {
  if (!document.routes.some((r) => r.approvals.some((a) => a.requestedBy !== undefined))) return document;
  const body = {
    identity: document.identity,
    routes: document.routes.map((r) => ({
      ...r,
      approvals: r.approvals.map(({ requestedBy: _, ...a }) => a),
    })),
  };
  return { version: versionOf(body), ...body };
}

function guardrailLayer(source: string, raw: unknown, problems: string[]): PolicyGuardrailLayer | null {
  if (raw === undefined || raw === null) return null;
  const found = problemsOf(PolicyGuardrails, raw);
  if (found.length === 0) return { source, guardrails: raw as PolicyGuardrails };
  problems.push(`${source} guardrails: ${found.join('; ')}`);
  return denyAll(`${source} (guardrails cannot be read: ${found[0]})`);
}

function activeApprovals(
  approvals: readonly ApprovalObject[],
  identity: string,
  route: string,
  now: number,
  problems: string[],
): PolicyApproval[] {
  const out: PolicyApproval[] = [];
  for (const a of approvals) {
    const spec = a.spec ?? {};
    const status = a.status ?? {};
    if (spec.identity !== identity || spec.route !== route || status.phase !== 'Approved') continue;
    const where = `Approval ${a.metadata.namespace ?? ''}/${a.metadata.name}`;
    const expires = typeof status.expiresAt === 'string' ? Date.parse(status.expiresAt) : Number.NaN;
    if (Number.isNaN(expires)) {
      problems.push(`${where}: status.expiresAt is not a date-time; left out`);
      continue;
    }
    if (expires <= now) continue;
    if (typeof status.approvedBy !== 'string' || status.approvedBy === '') {
      problems.push(`${where}: Approved without status.approvedBy; left out`);
      continue;
    }
    const scope = scopeOf(spec.scope);
    if (typeof scope === 'string') {
      problems.push(`${where}: spec.scope ${scope}; left out`);
      continue;
    }
    out.push({
      name: a.metadata.name,
      scope,
      approvedBy: status.approvedBy,
      // Absent on Approvals created before the webhook stamped it: the event then omits it too.
      ...(typeof spec.requestedBy === 'string' && spec.requestedBy !== '' ? { requestedBy: spec.requestedBy } : {}),
      reason: typeof spec.reason === 'string' ? spec.reason : null,
      ticket: typeof spec.ticket === 'string' ? spec.ticket : null,
      expiresAt: new Date(expires).toISOString(),
    });
  }
  return out.sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
}

/** `{classes, tables}`, or a list of class names and `table:<pattern>` entries (the CLI's `--scope`). */
function scopeOf(raw: unknown): PolicyApproval['scope'] | string {
  let classes: unknown[] = [];
  let tables: unknown[] = [];
  if (Array.isArray(raw)) {
    for (const item of raw) {
      if (typeof item === 'string' && item.startsWith('table:')) tables.push(item.slice(6));
      else classes.push(item);
    }
  } else if (typeof raw === 'object' && raw !== null) {
    const o = raw as { classes?: unknown; tables?: unknown };
    classes = Array.isArray(o.classes) ? o.classes : o.classes === undefined ? [] : [o.classes];
    tables = Array.isArray(o.tables) ? o.tables : o.tables === undefined ? [] : [o.tables];
  } else {
    return 'is missing';
  }
  for (const c of classes) if (!ALL_CLASSES.includes(c as string)) return `names an unknown class "${String(c)}"`;
  for (const t of tables)
    if (typeof t !== 'string' || !TABLE_PATTERN.test(t)) return `has an invalid table pattern "${String(t)}"`;
  if (classes.length + tables.length === 0) return 'unlocks nothing';
  const scope: PolicyApproval['scope'] = {};
  if (classes.length) scope.classes = [...new Set(classes)] as never;
  if (tables.length) scope.tables = [...new Set(tables as string[])];
  return scope;
}
