/**
 * What a gateway's own config adds to the policy of the AgentIdentity a person signed in as: it can
 * only tighten. `routes[].access`, when given, is a ceiling (a person whose identity allows
 * readWrite gets read on a route the gateway serves read-only); the config's `guardrails` are one
 * more layer that every statement must pass. Pure.
 */
import type { Access, GatewayConfig, PolicyDocument, PolicyGuardrails, PolicyRoute } from '@byline/api';

/** Names the gateway's config as the source of a rule, e.g. `gateway config routes[orders-db].access=read`. */
export const GATEWAY_SOURCE = 'gateway config';

const RANK: Record<Access, number> = { read: 0, readWrite: 1, admin: 2 };

export function withGatewayLimits(
  document: PolicyDocument,
  routes: GatewayConfig['routes'],
  guardrails: PolicyGuardrails | undefined,
): PolicyDocument {
  const ceilings = new Map(routes.map((r) => [r.name, r.access] as const));
  const layer = guardrails ? [{ source: GATEWAY_SOURCE, guardrails }] : [];
  return {
    ...document,
    routes: document.routes.map((route): PolicyRoute => {
      const ceiling = ceilings.get(route.name);
      const lowered = ceiling !== undefined && RANK[ceiling] < RANK[route.access];
      return {
        ...route,
        ...(lowered ? { access: ceiling, accessSource: GATEWAY_SOURCE } : {}),
        guardrails: [...route.guardrails, ...layer],
      };
    }),
  };
}

/**
 * A gateway that has no collector to ask (run by hand, file sinks only): its config's routes and
 * guardrails for everyone, as the policy of the AgentIdentity the person signed in as. A route
 * without `access` is read, as the gateway config's schema says.
 */
export function configPolicy(
  config: Pick<GatewayConfig, 'routes' | 'guardrails'>,
  identity: { name: string; namespace: string | null },
): PolicyDocument {
  const layer = config.guardrails ? [{ source: GATEWAY_SOURCE, guardrails: config.guardrails }] : [];
  return {
    version: 'c0',
    identity,
    routes: config.routes.map((r) => ({
      name: r.name,
      access: r.access ?? 'read',
      accessSource: GATEWAY_SOURCE,
      guardrails: layer,
      approvals: [],
    })),
  };
}
