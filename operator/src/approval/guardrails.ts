/**
 * Guardrail conflicts of one AgentIdentity, route by route: its guardrails added to the route's
 * defaults (effectiveGuardrails), judged against the access it has on that route. The AgentIdentity
 * reconciler reports them in its Ready condition (reason GuardrailConflict).
 */
import { type crds, effectiveGuardrails, guardrailConflicts } from '@byline/api';

export function identityGuardrailConflicts(
  identity: crds.AgentIdentity,
  route: (name: string) => crds.DatabaseRoute | undefined,
): string[] {
  return (identity.spec?.routes ?? []).flatMap((r) =>
    guardrailConflicts(
      effectiveGuardrails(route(r.name)?.spec?.guardrails, identity.spec?.guardrails),
      r.access ?? 'readWrite',
      `routes[${r.name}]`,
    ),
  );
}
