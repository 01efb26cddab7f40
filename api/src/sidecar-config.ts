/**
 * The sidecar's configuration (`byline sidecar --config FILE`). Field names are public interface.
 * Unknown fields are refused so that a typo never silently leaves something unconfigured.
 */
import { type Static, Type as T } from '@sinclair/typebox';
import { IdentityKind, ParamsMode } from './audit-event.js';
import { HostPort, LogConfig, Strict } from './config-parts.js';
import { type Access, AccessWithDefault, Guardrails } from './crds/guardrails.js';

export const SslMode = T.Union([
  T.Literal('disable'),
  T.Literal('prefer'),
  T.Literal('require'),
  T.Literal('verify-full'),
]);

export const Upstream = T.Object(
  {
    host: T.String({ minLength: 1 }),
    port: T.Integer({ minimum: 1, maximum: 65535, default: 5432 }),
    /** The database this route serves; when omitted the client's requested database is used. */
    database: T.Optional(T.String({ minLength: 1 })),
    sslMode: T.Optional(SslMode),
    /** CA bundle for `verify-full`; the system's trust store when omitted. */
    sslRootCertFile: T.Optional(T.String({ minLength: 1 })),
    connectTimeoutMs: T.Optional(T.Integer({ minimum: 1 })),
  },
  Strict,
);

export const InjectCredentials = T.Object(
  {
    mode: T.Literal('inject'),
    /** The database role; or read it from `usernameFile` (a mounted Secret key). One of the two. */
    username: T.Optional(T.String({ minLength: 1 })),
    usernameFile: T.Optional(T.String({ minLength: 1 })),
    passwordFile: T.String({ minLength: 1 }),
    /** When set, local clients must present this password (the default asks for none). */
    clientPasswordFile: T.Optional(T.String({ minLength: 1 })),
    /**
     * By default a client must ask for the route's user (anything else is refused with 28000
     * naming it); true logs any requested user name in as the route's user.
     */
    acceptAnyUser: T.Optional(T.Boolean()),
  },
  Strict,
);

export const PassthroughCredentials = T.Object({ mode: T.Literal('passthrough') }, Strict);

export const ClientTls = T.Object(
  { certFile: T.String({ minLength: 1 }), keyFile: T.String({ minLength: 1 }) },
  Strict,
);

export const Route = T.Object(
  {
    name: T.String({
      minLength: 1,
      pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$',
      description: 'a name of lower-case letters, digits and "-" (like "orders-db")',
    }),
    listen: HostPort,
    upstream: Upstream,
    credentials: T.Union([InjectCredentials, PassthroughCredentials]),
    /** TLS towards clients; without it an SSLRequest is answered "N". */
    tls: T.Optional(ClientTls),
    /** read | readWrite | admin, as in AgentIdentity; DEFAULT_ROUTE_ACCESS when omitted. */
    access: T.Optional(AccessWithDefault('admin')),
  },
  Strict,
);

export const StaticIdentity = T.Object(
  {
    static: T.Object(
      {
        name: T.String({ minLength: 1 }),
        kind: IdentityKind,
        namespace: T.Optional(T.String()),
        serviceAccount: T.Optional(T.String()),
        pod: T.Optional(T.String()),
      },
      Strict,
    ),
  },
  Strict,
);

/** An inline PEM CA bundle, the alternative to caFile (give one or neither). */
const CaPem = T.String({
  pattern: '-----BEGIN CERTIFICATE-----',
  description: 'one or more PEM certificates (-----BEGIN CERTIFICATE-----)',
});

/**
 * In a pod: the identity comes from the collector, which reviews the pod's projected
 * service-account token (audience byline.dev) and finds the AgentIdentity claiming it.
 */
export const KubernetesIdentity = T.Object(
  {
    kubernetes: T.Object(
      {
        /** The projected token (rotated by the kubelet; re-read when it changes). */
        tokenPath: T.String({ minLength: 1 }),
        /** The collector that answers /v1/whoami (usually the same as the collector sink). */
        collector: T.Object(
          {
            url: T.String({ pattern: '^https?://[^\\s]+$', description: 'an http:// or https:// URL' }),
            caFile: T.Optional(T.String({ minLength: 1 })),
            caPem: T.Optional(CaPem),
          },
          Strict,
        ),
      },
      Strict,
    ),
  },
  Strict,
);

export const FileSink = T.Object({ file: T.String({ minLength: 1 }) }, Strict);

export const CollectorSink = T.Object(
  {
    collector: T.Object(
      {
        /** The collector's base URL, e.g. https://byline-collector.byline.svc:8443 */
        url: T.String({ pattern: '^https?://[^\\s]+$', description: 'an http:// or https:// URL' }),
        /** Bearer token, read for every request so a rotated token takes effect. */
        tokenFile: T.String({ minLength: 1 }),
        /** CA bundle for an https collector; the system's trust store when omitted. */
        caFile: T.Optional(T.String({ minLength: 1 })),
        /** The same CA bundle inline (the operator injects it so no Secret is mounted in agent namespaces). */
        caPem: T.Optional(CaPem),
      },
      Strict,
    ),
  },
  Strict,
);

export const Durability = T.Union([T.Literal('none'), T.Literal('batch'), T.Literal('strict')]);

export const Audit = T.Object(
  {
    params: T.Optional(ParamsMode),
    /** The durable spool, on a volume the agent container never mounts. Needed for a collector sink. */
    spoolDir: T.Optional(T.String({ minLength: 1 })),
    /** none | batch (default: fsync at most every 100 ms) | strict (fsync before each result). */
    durability: T.Optional(Durability),
    /** The backlog bound (default 1 GiB). */
    maxSpoolBytes: T.Optional(T.Integer({ minimum: 65536 })),
    /** reject (default): refuse statements while the spool is full; drop: run them unrecorded, counted. */
    onBacklogFull: T.Optional(T.Union([T.Literal('reject'), T.Literal('drop')])),
    /** Size at which a spool segment is closed and a new one begun (default 64 MiB). */
    segmentBytes: T.Optional(T.Integer({ minimum: 4096 })),
    /**
     * On SIGTERM, how long to keep shipping unshipped events before exiting (default 25: inside
     * Kubernetes' default 30 s grace period). Whatever is left stays in the spool.
     */
    drainSeconds: T.Optional(T.Integer({ minimum: 0, maximum: 3600 })),
    sinks: T.Array(T.Union([FileSink, CollectorSink]), { minItems: 1 }),
  },
  Strict,
);

export const Metrics = T.Object({ listen: HostPort }, Strict);

export const Limits = T.Object(
  {
    /** Largest frontend or backend message accepted (PgBouncer's max_packet_size). */
    maxMessageBytes: T.Optional(T.Integer({ minimum: 1024 })),
    /**
     * A client must finish its startup and authentication within this time or be disconnected,
     * like Postgres's authentication_timeout (default 60 s).
     */
    authenticationTimeoutMs: T.Optional(T.Integer({ minimum: 1 })),
  },
  Strict,
);

export const SidecarConfigSchema = T.Object(
  {
    identity: T.Union([StaticIdentity, KubernetesIdentity]),
    routes: T.Array(Route, { minItems: 1 }),
    audit: Audit,
    metrics: T.Optional(Metrics),
    limits: T.Optional(Limits),
    log: T.Optional(LogConfig),
    /** The guardrails of every route, with the same meaning as AgentIdentity spec.guardrails. */
    guardrails: T.Optional(Guardrails),
  },
  Strict,
);

/**
 * The access of a route that names none: admin, what a hand-run sidecar allowed before access levels
 * existed, so that existing configs keep working. `byline sidecar` warns about it at start.
 * (An AgentIdentity's routes default to readWrite; in a cluster the policy comes from there.)
 */
export const DEFAULT_ROUTE_ACCESS: Access = 'admin';

export function routeAccess(route: RouteConfig): Access {
  return route.access ?? DEFAULT_ROUTE_ACCESS;
}

/**
 * Start-up warnings for routes that allow everything (DDL, roles). Only for a static identity: with a
 * kubernetes identity the control plane's policy decides, not the file.
 */
export function adminAccessWarnings(config: SidecarConfig): string[] {
  if (!('static' in config.identity)) return [];
  return config.routes.flatMap((route, i) =>
    routeAccess(route) === 'admin'
      ? [
          `routes[${i}] (${route.name}): access is admin${route.access === undefined ? ' (the default when none is named)' : ''}: every statement class is allowed, DDL and role changes included; set routes[${i}].access to read or readWrite to restrict it`,
        ]
      : [],
  );
}

export type SidecarConfig = Static<typeof SidecarConfigSchema>;
export type RouteConfig = Static<typeof Route>;
export type UpstreamConfig = Static<typeof Upstream>;
export type SslModeName = Static<typeof SslMode>;

export type DurabilityName = Static<typeof Durability>;

export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;
export const DEFAULT_DRAIN_SECONDS = 25;
export const DEFAULT_MAX_SPOOL_BYTES = 1024 * 1024 * 1024;
export const DEFAULT_AUTHENTICATION_TIMEOUT_MS = 60_000;

/** What the sidecar config schema cannot say by itself. */
export function sidecarConfigRules(config: SidecarConfig): string[] {
  const problems: string[] = [];
  const names = new Map<string, number>();
  const listens = new Map<string, number>();
  config.routes.forEach((route, i) => {
    const c = route.credentials;
    if (c.mode === 'inject' && (c.username === undefined) === (c.usernameFile === undefined)) {
      problems.push(`routes[${i}].credentials: give username or usernameFile (exactly one)`);
    }
    const sameName = names.get(route.name);
    if (sameName !== undefined)
      problems.push(`routes[${i}].name: "${route.name}" is already the name of routes[${sameName}]`);
    else names.set(route.name, i);
    const sameListen = listens.get(route.listen);
    if (sameListen !== undefined && !route.listen.endsWith(':0')) {
      problems.push(`routes[${i}].listen: ${route.listen} is already where routes[${sameListen}] listens`);
    } else listens.set(route.listen, i);
  });
  if ('kubernetes' in config.identity) {
    const c = config.identity.kubernetes.collector;
    if (c.caFile !== undefined && c.caPem !== undefined)
      problems.push('identity.kubernetes.collector: give caFile or caPem, not both');
  }
  config.audit.sinks.forEach((s, i) => {
    if ('collector' in s && s.collector.caFile !== undefined && s.collector.caPem !== undefined)
      problems.push(`audit.sinks[${i}].collector: give caFile or caPem, not both`);
  });
  const collector = config.audit.sinks.some((s) => 'collector' in s);
  if (collector && !config.audit.spoolDir) {
    problems.push('audit.spoolDir: required with a collector sink (events are shipped from the spool)');
  }
  return problems;
}
