/**
 * The policy of a sidecar run by hand (`identity.static`, `byline sidecar`, `byline demo`): each
 * route's `access` (admin when none is named) and the config's top-level `guardrails`, as the same
 * PolicyDocument the collector serves in a cluster, so one engine decides both. Pure.
 */
import { createHash } from 'node:crypto';
import { type PolicyDocument, routeAccess, type SidecarConfig } from '@byline/api';

/** Names the config file as the source of a rule, e.g. `sidecar config routes[orders].access=read`. */
export const STATIC_SOURCE = 'sidecar config';

export function staticPolicy(config: SidecarConfig, identityName: string, namespace: string | null): PolicyDocument {
  const guardrails = config.guardrails ? [{ source: STATIC_SOURCE, guardrails: config.guardrails }] : [];
  const body = {
    identity: { name: identityName, namespace },
    routes: config.routes.map((route) => ({
      name: route.name,
      access: routeAccess(route),
      accessSource: STATIC_SOURCE,
      guardrails,
      approvals: [],
    })),
  };
  const version = createHash('sha256').update(JSON.stringify(body)).digest('hex').slice(0, 16);
  return { version, ...body };
}
