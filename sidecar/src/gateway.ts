/**
 * `byline gateway`: the sidecar's proxy for people and off-cluster workloads. Same routes, audit
 * and spool; the identity is per connection — the client's password is an OIDC token, verified and
 * mapped to an AgentIdentity (OidcAuthenticator) — and clients must use TLS unless the config says
 * allowPlaintext. Statements run as the route's injected database user, whatever user name the
 * client asks for (people connect with their own names), and are decided by the policy of the
 * AgentIdentity each person signed in as (GatewayPolicies: from the collector when the gateway
 * ships to one), which the gateway's own routes[].access and guardrails can only tighten.
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
import pino, { type Logger } from 'pino';
import { trustOf } from './collector-ca.js';
import { gatewayPolicies } from './identity/gateway-policies.js';
import type { IdentitySource } from './identity/identity-source.js';
import { KubernetesIdentity } from './identity/kubernetes-identity.js';
import { OidcAuthenticator } from './identity/oidc-authenticator.js';
import type { ListedOidcIdentity } from './identity/oidc-claims.js';
import { StatementAnalyzer } from './policy/analyzer.js';
import { type RunningSidecar, type SidecarOptions, startSidecar } from './sidecar.js';

export interface GatewayOptions extends Omit<SidecarOptions, 'clientAuth'> {
  /** The AgentIdentities as currently known (in a cluster: a watch of the API server). */
  identities: () => readonly ListedOidcIdentity[];
  verifier?: VerifierOptions;
  /** How long a sign-in waits for its identity's first policy from the collector (default 5 s). */
  firstPolicyWaitMs?: number;
  /** How long an identity's policy is followed with no session signed in as it (default 5 min). */
  policyIdleMs?: number;
  /** The policy clients' retry pace (default: 250 ms doubling to 2 s). */
  policyBackoff?: { baseMs?: number; capMs?: number };
}

/** The gateway as a sidecar config: its own name on incidents (without a collector), any client user name accepted. */
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

export interface RunningGateway extends RunningSidecar {
  /** The AgentIdentities (`<namespace>/<name>`) whose policy the gateway follows now. */
  policyStreams(): string[];
}

export async function startGateway(config: GatewayConfig, options: GatewayOptions): Promise<RunningGateway> {
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
  const policies = gatewayPolicies({
    config,
    analyzer: await StatementAnalyzer.create(),
    logger,
    ...(options.firstPolicyWaitMs !== undefined ? { firstPolicyWaitMs: options.firstPolicyWaitMs } : {}),
    ...(options.policyIdleMs !== undefined ? { idleMs: options.policyIdleMs } : {}),
    ...(options.policyBackoff ? { backoff: options.policyBackoff } : {}),
  });
  const trusted = config.oidc.identityNamespaces === undefined ? null : new Set(config.oidc.identityNamespaces);
  const clientAuth = new OidcAuthenticator({
    verifier,
    identities: trusted === null ? options.identities : () => inNamespaces(options.identities(), trusted),
    policies,
    requireTls: config.allowPlaintext !== true,
    maxSessionAgeMs: config.oidc.maxSessionAge === undefined ? null : durationMs(config.oidc.maxSessionAge),
    graceMs: durationMs(config.oidc.sessionGrace ?? DEFAULT_SESSION_GRACE),
  });
  const {
    verifier: _v,
    identities: _i,
    firstPolicyWaitMs: _w,
    policyIdleMs: _d,
    policyBackoff: _b,
    ...sidecarOptions
  } = options;
  let running: RunningSidecar;
  try {
    const identity = await writerIdentity(config, logger, options);
    running = await startSidecar(sidecarConfigFor(config), {
      ...sidecarOptions,
      logger,
      clientAuth,
      ...(identity ? { identity } : {}),
    });
  } catch (e) {
    await policies.stop();
    throw e;
  }
  policies.metrics = running.metrics;
  const closeProxy = running.close.bind(running);
  running.close = async () => {
    await closeProxy();
    await policies.stop();
  };
  return Object.assign(running, { policyStreams: () => policies.following() });
}

/**
 * The gateway's own identity, for its incident events (spool damage, dead letters): with a collector,
 * the writer identity the collector knows its token by (`/v1/whoami`), which is the only non-OIDC
 * identity a gateway may write events for, and only incident events. Like a sidecar's, asked until
 * answered: the spool's recovery may record incidents at once. Without a collector: the config's.
 */
async function writerIdentity(
  config: GatewayConfig,
  logger: Logger,
  options: GatewayOptions,
): Promise<IdentitySource | null> {
  const sink = config.audit.sinks.find((s) => 'collector' in s);
  if (sink === undefined || !('collector' in sink)) return null;
  const { collector } = sink;
  return KubernetesIdentity.start(
    {
      tokenPath: collector.tokenFile,
      url: collector.url,
      ...trustOf(collector),
      logger,
      ...(options.identityPollMs ? { pollMs: options.identityPollMs } : {}),
    },
    options.signal,
  );
}

/** The identities that may claim tokens: those in the namespaces the config trusts. */
export function inNamespaces(identities: readonly ListedOidcIdentity[], namespaces: ReadonlySet<string>) {
  return identities.filter((i) => i.metadata?.namespace !== undefined && namespaces.has(i.metadata.namespace));
}
