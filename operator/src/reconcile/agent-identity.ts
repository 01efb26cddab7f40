/**
 * The AgentIdentity state machine: its Ready condition, from the identity, the other identities of
 * its namespace, its routes (judged by the route state machine itself, not by possibly stale route
 * status) and its service accounts. The first rule that matches wins:
 *
 *   a service account is also claimed by another identity   → Ready=False ServiceAccountClaimedTwice
 *                                                              (names the SA and the other identity;
 *                                                              both identities get it, since the rule
 *                                                              comes first and is symmetric)
 *   an OIDC claim (issuer + subject, email or group) is also → Ready=False OidcClaimedTwice (names the claim
 *   held by another identity, in any namespace                 and the others; symmetric too: byline
 *                                                              gateway refuses such sign-ins with 28000)
 *   a route names no DatabaseRoute of the namespace          → Ready=False RouteNotFound (names them)
 *   a route exists but is not Ready                          → Ready=False RouteNotReady (names it and why)
 *   the collector cannot build the policy as written (an    → Ready=False PolicyInvalid (names each part;
 *   access level or guardrails it cannot read, e.g. objects    the sidecar gets a deny-all layer there)
 *   stored under an older CRD schema)
 *   guardrails contradict themselves or the access (an      → Ready=True  GuardrailConflict (names each)
 *   approval-gated class that is also denied, or that the
 *   route's access never allows)
 *   a service account does not exist (yet)                   → Ready=True  ServiceAccountNotFound, with a
 *                                                              Warning event
 *   otherwise                                                → Ready=True  Valid
 *
 * Why ServiceAccountNotFound keeps Ready True: the identity itself is sound and the webhook would
 * inject a pod of that service account correctly; a pod cannot run as a missing service account
 * anyway, and GitOps tools often apply the identity before the ServiceAccount. The reason and the
 * Warning event still say what is missing, so a typo does not go unnoticed.
 */
import { effectivePolicy, type RouteObject } from '@byline/api';
import { identityGuardrailConflicts } from '../approval/guardrails.js';
import { identitiesClaiming } from '../injection/mutate.js';
import type { AgentIdentity, DatabaseRoute } from '../injection/types.js';
import type { DesiredCondition } from './conditions.js';
import { evaluateRoute, type SecretLookup } from './database-route.js';
import { sharedOidcClaims } from './oidc-claims.js';

export type IdentityReason =
  | 'Valid'
  | 'ServiceAccountClaimedTwice'
  | 'OidcClaimedTwice'
  | 'RouteNotFound'
  | 'RouteNotReady'
  | 'PolicyInvalid'
  | 'GuardrailConflict'
  | 'ServiceAccountNotFound';

export interface IdentityVerdict extends DesiredCondition {
  reason: IdentityReason;
}

export interface IdentityContext {
  /** Every AgentIdentity of the identity's namespace (itself included or not). */
  identities: AgentIdentity[];
  /** Every AgentIdentity of the cluster: a gateway maps a token to identities in any namespace. */
  clusterIdentities: readonly AgentIdentity[];
  route: (namespace: string, name: string) => DatabaseRoute | undefined;
  secret: SecretLookup;
  /** Whether the ServiceAccount exists. */
  serviceAccountExists: (namespace: string, name: string) => boolean;
}

const verdict = (reason: IdentityReason, status: 'True' | 'False', message: string): IdentityVerdict => ({
  type: 'Ready',
  status,
  reason,
  message,
});

const quoted = (names: string[]) => names.map((n) => `"${n}"`).join(', ');

export function evaluateIdentity(identity: AgentIdentity, ctx: IdentityContext): IdentityVerdict {
  const namespace = identity.metadata.namespace ?? '';
  const name = identity.metadata.name;
  const serviceAccounts = identity.spec?.serviceAccounts ?? [];

  const clashes: string[] = [];
  for (const sa of serviceAccounts) {
    const others = identitiesClaiming(ctx.identities, namespace, sa)
      .map((i) => i.metadata.name)
      .filter((n) => n !== name)
      .sort();
    if (others.length > 0) clashes.push(`service account "${sa}" is also claimed by AgentIdentity ${quoted(others)}`);
  }
  if (clashes.length > 0) {
    return verdict(
      'ServiceAccountClaimedTwice',
      'False',
      `${clashes.join('; ')}: pods of ${clashes.length === 1 ? 'that service account' : 'those service accounts'} are refused until one identity claims it`,
    );
  }

  const shared = sharedOidcClaims(identity, ctx.clusterIdentities);
  if (shared.length > 0) {
    return verdict(
      'OidcClaimedTwice',
      'False',
      `${shared.map((s) => `${s.claim} is also claimed by AgentIdentity ${quoted(s.others)}`).join('; ')}: byline gateway refuses ${shared.length === 1 ? 'that sign-in' : 'those sign-ins'} (28000) until one identity claims it`,
    );
  }

  const routeNames = (identity.spec?.routes ?? []).map((r) => r.name);
  const missing = routeNames.filter((r) => !ctx.route(namespace, r));
  if (missing.length > 0) {
    return verdict('RouteNotFound', 'False', `DatabaseRoute ${quoted(missing)} not found in namespace "${namespace}"`);
  }

  const notReady: string[] = [];
  for (const r of routeNames) {
    const route = ctx.route(namespace, r)!;
    const v = evaluateRoute(route, ctx.secret);
    if (v.status !== 'True') notReady.push(`DatabaseRoute "${r}" is not ready (${v.reason}: ${v.message})`);
  }
  if (notReady.length > 0) return verdict('RouteNotReady', 'False', notReady.join('; '));

  // The collector's own builder (approvals aside: they live on other objects and only unlock), so
  // this says exactly what a sidecar of this identity is refused for.
  const routes = new Map<string, RouteObject>(routeNames.map((r) => [r, ctx.route(namespace, r)!] as const));
  const { problems } = effectivePolicy(identity, routes, [], 0);
  if (problems.length > 0) {
    return verdict(
      'PolicyInvalid',
      'False',
      `the sidecar's policy denies every statement where it cannot be read: ${problems.join('; ')}`,
    );
  }

  const conflicts = identityGuardrailConflicts(identity, (r) => ctx.route(namespace, r));
  if (conflicts.length > 0) return verdict('GuardrailConflict', 'True', conflicts.join('; '));

  const absent = serviceAccounts.filter((sa) => !ctx.serviceAccountExists(namespace, sa));
  if (absent.length > 0) {
    return verdict(
      'ServiceAccountNotFound',
      'True',
      `ServiceAccount ${quoted(absent)} not found in namespace "${namespace}"; pods cannot run as ${absent.length === 1 ? 'it' : 'them'} until it exists`,
    );
  }
  // An identity for people (spec.oidc) has no service accounts: say whom the routes are ready for.
  const oidc = Array.isArray(identity.spec?.oidc) ? identity.spec.oidc.length : 0;
  const forWhom =
    serviceAccounts.length > 0
      ? `service accounts ${quoted(serviceAccounts)}`
      : `${oidc} OIDC ${oidc === 1 ? 'claim' : 'claims'} (through byline gateway)`;
  return verdict('Valid', 'True', `routes ${quoted(routeNames)} are ready for ${forWhom}`);
}
