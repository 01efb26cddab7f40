/**
 * May a gateway attribute this OIDC identity to this AgentIdentity? Pure.
 *
 * The collector cannot re-verify a person's token (the gateway saw it, the event carries none), so
 * it trusts the gateway's verification — that is what the gateway's RBAC permission grants — but
 * not its word on who claims the person: the AgentIdentity an event names must exist in the
 * event's namespace, be of the event's kind, and list the event's issuer in spec.oidc. An event
 * that names none (a connection refused because no identity claims the subject) has no namespace.
 */
import type { AuditIdentity } from '@byline/api';
import type { ListedIdentity } from '../auth/identity-claims.js';

type OidcIdentity = AuditIdentity & { oidc: NonNullable<AuditIdentity['oidc']> };

/** What is wrong with the attribution, or undefined. `listed`: the AgentIdentities of `identity.namespace`. */
export function oidcAttributionProblem(identity: OidcIdentity, listed: readonly ListedIdentity[]): string | undefined {
  const { agentIdentity, issuer } = identity.oidc;
  if (agentIdentity === null) {
    return identity.namespace === null
      ? undefined
      : `identity.namespace is ${JSON.stringify(identity.namespace)}, but identity.oidc.agentIdentity is null (an unclaimed subject belongs to no namespace)`;
  }
  if (identity.namespace === null) {
    return `identity.oidc.agentIdentity is "${agentIdentity}", but identity.namespace is null`;
  }
  const where = `AgentIdentity "${agentIdentity}" in namespace "${identity.namespace}"`;
  const found = listed.find(
    (i) =>
      i.metadata?.name === agentIdentity &&
      i.metadata.namespace === identity.namespace &&
      i.metadata.deletionTimestamp === undefined,
  );
  if (!found) return `identity.oidc.agentIdentity: there is no ${where}`;
  if (found.spec?.kind !== identity.kind) {
    return `identity.kind is ${JSON.stringify(identity.kind)}, but ${where} is of kind ${JSON.stringify(found.spec?.kind ?? null)}`;
  }
  const issuers = Array.isArray(found.spec.oidc)
    ? found.spec.oidc.map((entry: unknown) => (entry as { issuer?: unknown } | null)?.issuer)
    : [];
  if (!issuers.includes(issuer)) {
    return `identity.oidc.issuer is ${JSON.stringify(issuer)}, but ${where} claims no subjects of that issuer (spec.oidc)`;
  }
  return undefined;
}
