/**
 * `byline gateway`: the sidecar's proxy for people and off-cluster workloads. Same routes, audit
 * and spool; the identity is per connection — the client's password is an OIDC token, verified and
 * mapped to an AgentIdentity (OidcAuthenticator) — and clients must use TLS unless the config says
 * allowPlaintext. Statements run as the route's injected database user, whatever user name the
 * client asks for (people connect with their own names).
 */
import {
  DEFAULT_CLOCK_TOLERANCE_SECONDS,
  DEFAULT_SESSION_GRACE,
  durationMs,
  type GatewayConfig,
  gatewayConfigRules,
  type SidecarConfig,
} from '@byline/api';
import { OidcVerifier, type VerifierOptions } from '@byline/api/oidc';
import pino from 'pino';
import { OidcAuthenticator } from './identity/oidc-authenticator.js';
import type { ListedOidcIdentity } from './identity/oidc-claims.js';
import { type RunningSidecar, type SidecarOptions, startSidecar } from './sidecar.js';

export interface GatewayOptions extends Omit<SidecarOptions, 'clientAuth'> {
  /** The AgentIdentities as currently known (in a cluster: a watch of the API server). */
  identities: () => readonly ListedOidcIdentity[];
  verifier?: VerifierOptions;
}

/** The gateway as a sidecar config: its own name on incidents, any client user name accepted. */
export function sidecarConfigFor(config: GatewayConfig): SidecarConfig {
  const out: SidecarConfig = {
    identity: { static: { name: 'byline-gateway', kind: 'service' } },
    routes: config.routes.map(({ credentials, ...route }) => ({
      ...route,
      credentials: { ...credentials, acceptAnyUser: true },
    })),
    audit: config.audit,
  };
  if (config.metrics) out.metrics = config.metrics;
  if (config.limits) out.limits = config.limits;
  if (config.log) out.log = config.log;
  if (config.guardrails) out.guardrails = config.guardrails;
  return out;
}

export async function startGateway(config: GatewayConfig, options: GatewayOptions): Promise<RunningSidecar> {
  const problems = gatewayConfigRules(config);
  if (problems.length > 0) throw new Error(`invalid gateway config:\n  - ${problems.join('\n  - ')}`);
  const logger = options.logger ?? pino({ level: config.log?.level ?? 'info', base: { component: 'gateway' } });
  const verifier = new OidcVerifier(config.oidc.issuers, {
    clockToleranceSeconds: config.oidc.clockToleranceSeconds ?? DEFAULT_CLOCK_TOLERANCE_SECONDS,
    ...options.verifier,
  });
  // An issuer down at start is no reason not to serve the others; its tokens are refused until it answers.
  for (const { issuer, error } of await verifier.start()) {
    if (error) logger.warn({ issuer }, error);
    else logger.info({ issuer }, 'issuer discovered');
  }
  const trusted = config.oidc.identityNamespaces === undefined ? null : new Set(config.oidc.identityNamespaces);
  const clientAuth = new OidcAuthenticator({
    verifier,
    identities: trusted === null ? options.identities : () => inNamespaces(options.identities(), trusted),
    requireTls: config.allowPlaintext !== true,
    maxSessionAgeMs: config.oidc.maxSessionAge === undefined ? null : durationMs(config.oidc.maxSessionAge),
    graceMs: durationMs(config.oidc.sessionGrace ?? DEFAULT_SESSION_GRACE),
  });
  const { verifier: _v, identities: _i, ...sidecarOptions } = options;
  return startSidecar(sidecarConfigFor(config), { ...sidecarOptions, logger, clientAuth });
}

/** The identities that may claim tokens: those in the namespaces the config trusts. */
export function inNamespaces(identities: readonly ListedOidcIdentity[], namespaces: ReadonlySet<string>) {
  return identities.filter((i) => i.metadata?.namespace !== undefined && namespaces.has(i.metadata.namespace));
}
