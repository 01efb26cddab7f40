/**
 * The sidecar's configuration (`byline sidecar --config FILE`). Field names are public interface.
 * Unknown fields are refused so that a typo never silently leaves something unconfigured.
 */
import { type Static, Type as T } from '@sinclair/typebox';
import { IdentityKind, ParamsMode } from './audit-event.js';

const Strict = { additionalProperties: false } as const;
const HostPort = T.String({ pattern: '^(\\[[0-9a-fA-F:.]+\\]|[^:\\s]+):[0-9]{1,5}$', description: 'host:port' });

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
    username: T.String({ minLength: 1 }),
    passwordFile: T.String({ minLength: 1 }),
    /** When set, local clients must present this password (the default asks for none). */
    clientPasswordFile: T.Optional(T.String({ minLength: 1 })),
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

export const FileSink = T.Object({ file: T.String({ minLength: 1 }) }, Strict);

export const Audit = T.Object(
  {
    params: T.Optional(ParamsMode),
    sinks: T.Array(FileSink, { minItems: 1 }),
  },
  Strict,
);

export const Limits = T.Object(
  {
    /** Largest frontend or backend message accepted (PgBouncer's max_packet_size). */
    maxMessageBytes: T.Optional(T.Integer({ minimum: 1024 })),
  },
  Strict,
);

export const SidecarConfigSchema = T.Object(
  {
    identity: StaticIdentity,
    routes: T.Array(Route, { minItems: 1 }),
    audit: Audit,
    limits: T.Optional(Limits),
    log: T.Optional(
      T.Object(
        {
          level: T.Optional(
            T.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => T.Literal(l))),
          ),
        },
        Strict,
      ),
    ),
  },
  Strict,
);

export type SidecarConfig = Static<typeof SidecarConfigSchema>;
export type RouteConfig = Static<typeof Route>;
export type UpstreamConfig = Static<typeof Upstream>;
export type SslModeName = Static<typeof SslMode>;

export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;
