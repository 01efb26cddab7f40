/**
 * The gateway's configuration (`byline gateway --config FILE`): the sidecar's proxy, deployed once
 * for people and off-cluster workloads, whose identity source is per connection — the client's
 * password is an OIDC token from one of `oidc.issuers`. Field names are public interface.
 */
import { type Static, Type as T } from '@sinclair/typebox';
import { HostPort, LogConfig, Strict } from './config-parts.js';
import { AccessWithDefault, Guardrails } from './crds/guardrails.js';
import { loadConfigFile } from './load-config.js';
import { Audit, ClientTls, Limits, Metrics, Upstream } from './sidecar-config.js';

/** Asymmetric JWS algorithms only: `none` and the HMAC family (HS*) are never accepted for a token. */
export const TOKEN_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
] as const;
export type TokenAlgorithm = (typeof TOKEN_ALGORITHMS)[number];

/** A duration such as `90s`, `30m`, `8h` (one unit; what a person reads at a glance). */
export const Duration = T.String({ pattern: '^[1-9][0-9]*(s|m|h)$', description: 'a duration like 90s, 30m or 8h' });

export function durationMs(d: string): number {
  const n = Number(d.slice(0, -1));
  const unit = d.at(-1);
  return n * (unit === 'h' ? 3_600_000 : unit === 'm' ? 60_000 : 1000);
}

export const OidcIssuer = T.Object(
  {
    /** The issuer identifier, exactly as its tokens' `iss` claim and AgentIdentity spec.oidc[].issuer say. */
    issuer: T.String({ pattern: '^https://[^\\s]+$', description: 'an https:// URL' }),
    /** Where its discovery document is, when not at `<issuer>/.well-known/openid-configuration`. */
    discoveryUrl: T.Optional(T.String({ pattern: '^https://[^\\s]+$', description: 'an https:// URL' })),
    /** Accepted `aud` values: the client id for ID tokens, or the API audience of JWT access tokens. */
    audiences: T.Array(T.String({ minLength: 1 }), { minItems: 1 }),
    /** Signature algorithms accepted; default: what discovery lists, without none and HS*. */
    algorithms: T.Optional(T.Array(T.Union(TOKEN_ALGORITHMS.map((a) => T.Literal(a))), { minItems: 1 })),
    /** The claim shown as the person's name in logs and refusals (default email). */
    nameClaim: T.Optional(T.Union([T.Literal('email'), T.Literal('preferred_username'), T.Literal('sub')])),
    /** The claim holding group names (default groups). */
    groupsClaim: T.Optional(T.String({ minLength: 1 })),
    /** Map by email only when `email_verified` is true (default); false trusts every email this issuer puts in a token. */
    requireVerifiedEmail: T.Optional(T.Boolean()),
    /** CA bundle for the issuer's discovery and JWKS endpoints; the system store when omitted. */
    caFile: T.Optional(T.String({ minLength: 1 })),
    /**
     * A bearer token for discovery and JWKS, for issuers that want one (a Kubernetes API server's
     * service-account issuer: a service account's token). Read per fetch.
     */
    bearerTokenFile: T.Optional(T.String({ minLength: 1 })),
  },
  Strict,
);

export const GatewayRoute = T.Object(
  {
    name: T.String({
      minLength: 1,
      pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$',
      description: 'a name of lower-case letters, digits and "-" (like "orders-db")',
    }),
    listen: HostPort,
    upstream: Upstream,
    /** The gateway logs in upstream itself: the client's password is its token, never a database password. */
    credentials: T.Object(
      {
        mode: T.Literal('inject'),
        username: T.Optional(T.String({ minLength: 1 })),
        usernameFile: T.Optional(T.String({ minLength: 1 })),
        passwordFile: T.String({ minLength: 1 }),
      },
      Strict,
    ),
    /** TLS towards clients: a token must never cross the network in clear. */
    tls: T.Optional(ClientTls),
    access: T.Optional(AccessWithDefault('read')),
  },
  Strict,
);

export const GatewayConfigSchema = T.Object(
  {
    routes: T.Array(GatewayRoute, { minItems: 1 }),
    oidc: T.Object(
      {
        issuers: T.Array(OidcIssuer, { minItems: 1 }),
        /** Leeway for exp/nbf/iat against clock skew (default 30, at most 300). */
        clockToleranceSeconds: T.Optional(T.Integer({ minimum: 0, maximum: 300 })),
        /**
         * How long a session may run. Default: the token's remaining lifetime plus `sessionGrace`;
         * then the gateway ends it with a FATAL.
         */
        maxSessionAge: T.Optional(Duration),
        sessionGrace: T.Optional(Duration),
        /**
         * Only AgentIdentities in these namespaces may claim tokens (default: every namespace). Who can
         * write an AgentIdentity can claim a person's subject; this keeps that to the namespaces trusted to.
         */
        identityNamespaces: T.Optional(
          T.Array(T.String({ minLength: 1, maxLength: 63, pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$' }), {
            minItems: 1,
          }),
        ),
      },
      Strict,
    ),
    /** Only for a gateway behind something that already encrypts (a mesh): accept routes without tls. */
    allowPlaintext: T.Optional(T.Boolean()),
    audit: Audit,
    metrics: T.Optional(Metrics),
    limits: T.Optional(Limits),
    log: T.Optional(LogConfig),
    guardrails: T.Optional(Guardrails),
  },
  Strict,
);

export type GatewayConfig = Static<typeof GatewayConfigSchema>;
export type OidcIssuerConfig = Static<typeof OidcIssuer>;
export const DEFAULT_CLOCK_TOLERANCE_SECONDS = 30;
export const DEFAULT_SESSION_GRACE = '5m';

/** What the gateway config schema cannot say by itself. */
export function gatewayConfigRules(config: GatewayConfig): string[] {
  const problems: string[] = [];
  const names = new Map<string, number>();
  config.routes.forEach((route, i) => {
    const c = route.credentials;
    if ((c.username === undefined) === (c.usernameFile === undefined)) {
      problems.push(`routes[${i}].credentials: give username or usernameFile (exactly one)`);
    }
    if (route.tls === undefined && config.allowPlaintext !== true) {
      problems.push(
        `routes[${i}].tls: required (clients send their OIDC token as the password; set allowPlaintext: true only behind an encrypting mesh)`,
      );
    }
    const same = names.get(route.name);
    if (same !== undefined) problems.push(`routes[${i}].name: "${route.name}" is already the name of routes[${same}]`);
    else names.set(route.name, i);
  });
  const issuers = new Map<string, number>();
  config.oidc.issuers.forEach((issuer, i) => {
    const same = issuers.get(issuer.issuer);
    if (same !== undefined)
      problems.push(`oidc.issuers[${i}].issuer: "${issuer.issuer}" is already oidc.issuers[${same}]`);
    else issuers.set(issuer.issuer, i);
  });
  if (config.audit.sinks.some((s) => 'collector' in s) && !config.audit.spoolDir) {
    problems.push('audit.spoolDir: required with a collector sink (events are shipped from the spool)');
  }
  return problems;
}

export function loadGatewayConfig(path: string): GatewayConfig {
  return loadConfigFile(path, GatewayConfigSchema, 'gateway config', gatewayConfigRules);
}

/**
 * The client side (`byline env` / `byline connect`): where each route's gateway listener is, in
 * `$XDG_CONFIG_HOME/byline/routes.yaml`, keyed by route name. Flags override any field.
 */
export const ClientRoute = T.Object(
  {
    host: T.String({ minLength: 1 }),
    port: T.Integer({ minimum: 1, maximum: 65535 }),
    database: T.Optional(T.String({ minLength: 1 })),
    /** libpq sslmode: verify-full (default) or require; the gateway never accepts less. */
    sslmode: T.Optional(T.Union([T.Literal('verify-full'), T.Literal('verify-ca'), T.Literal('require')])),
    sslrootcert: T.Optional(T.String({ minLength: 1 })),
    /** The issuer and client to take the token from; default: the last `byline login`. */
    issuer: T.Optional(T.String({ pattern: '^https://[^\\s]+$', description: 'an https:// URL' })),
    clientId: T.Optional(T.String({ minLength: 1 })),
  },
  Strict,
);
export const ClientRoutesSchema = T.Record(T.String({ pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$' }), ClientRoute);
export type ClientRouteConfig = Static<typeof ClientRoute>;
