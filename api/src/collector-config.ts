/**
 * The collector's configuration (`byline collector --config FILE`). Field names are public interface.
 * Unknown fields are refused so that a typo never silently leaves something unconfigured.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { type Static, Type as T } from '@sinclair/typebox';
import { IdentityKind, MAX_EVENT_BYTES } from './audit-event.js';
import { CollectorOidc, checkCollectorOidc } from './collector-oidc-config.js';
import { HostPort, LogConfig, Strict } from './config-parts.js';
import { resolveStoreUrl } from './config-paths.js';
import { loadConfigFile } from './load-config.js';
import { ValidationError } from './validate.js';

export const StoreUrl = T.String({
  pattern: '^(sqlite:.+|postgres(ql)?://.+)$',
  description: 'sqlite:PATH or postgres://user:password@host:5432/database',
});

/**
 * One static token: `token` or `tokenFile` (exactly one), and `identity` (a writer) or
 * `reader: true` (exactly one). A writer writes only events whose identity is exactly the one
 * configured here: `identity` as the name, `kind` (default agent), `namespace`, `serviceAccount`
 * and `pod` (null when not given), `source: "static"`.
 */
export const StaticToken = T.Object(
  {
    token: T.Optional(T.String({ minLength: 1 })),
    tokenFile: T.Optional(T.String({ minLength: 1 })),
    identity: T.Optional(T.String({ minLength: 1 })),
    kind: T.Optional(IdentityKind),
    namespace: T.Optional(T.String({ minLength: 1 })),
    serviceAccount: T.Optional(T.String({ minLength: 1 })),
    pod: T.Optional(T.String({ minLength: 1 })),
    reader: T.Optional(T.Literal(true)),
  },
  Strict,
);

export const DEFAULT_KUBERNETES_AUDIENCE = 'byline.dev';
export const DEFAULT_KUBERNETES_CACHE_SECONDS = 30;

/**
 * Identity from Kubernetes: service-account tokens for `audience` are reviewed (TokenReview) and
 * mapped to the AgentIdentity claiming the service account (writers); any token the API server
 * accepts may read when RBAC allows `get` on `auditevents.byline.dev` (SubjectAccessReview).
 */
export const KubernetesAuth = T.Object(
  {
    /** The audience writer tokens must be issued for (default byline.dev). */
    audience: T.Optional(T.String({ minLength: 1 })),
    /** How to reach the API server; default: the in-cluster service account, else $KUBECONFIG. */
    kubeconfig: T.Optional(T.String({ minLength: 1 })),
    /** How long reviews and AgentIdentity lists are reused (default 30; never past a token's expiry). */
    cacheSeconds: T.Optional(T.Integer({ minimum: 0, maximum: 3600 })),
  },
  Strict,
);

/** Static tokens, Kubernetes, OIDC readers, or several (static tokens are looked up first, then OIDC). */
export const CollectorAuth = T.Object(
  {
    static: T.Optional(T.Array(StaticToken, { minItems: 1 })),
    kubernetes: T.Optional(KubernetesAuth),
    oidc: T.Optional(CollectorOidc),
  },
  Strict,
);

/** The smallest `limits.maxBatchBytes`: one event of MAX_EVENT_BYTES, its newline, and room to spare. */
export const MIN_BATCH_BYTES = 1024 * 1024;
if (MAX_EVENT_BYTES + 1 > MIN_BATCH_BYTES) throw new Error('MIN_BATCH_BYTES must hold one event of MAX_EVENT_BYTES');

export const CollectorLimits = T.Object(
  {
    /**
     * Largest request body `POST /v1/events` reads; larger ones get 413 without being read. At
     * least 1 MiB, more than any one sidecar event can take (MAX_EVENT_BYTES), so no event is
     * refused for its size alone.
     */
    maxBatchBytes: T.Optional(T.Integer({ minimum: MIN_BATCH_BYTES })),
    /** Most events in one batch. */
    maxBatchEvents: T.Optional(T.Integer({ minimum: 1 })),
  },
  Strict,
);

export const CollectorTls = T.Object(
  {
    /** PEM certificate chain and key the collector serves HTTPS with (re-read every minute: renewals need no restart). */
    certFile: T.String({ minLength: 1 }),
    keyFile: T.String({ minLength: 1 }),
  },
  Strict,
);

/**
 * The collector's own Ed25519 key (PEM, PKCS#8), kept out of the store: it signs a receipt for
 * every key a sidecar registers, so `byline verify` can tell those from keys written into the store.
 */
export const CollectorReceipts = T.Object(
  {
    keyFile: T.String({ minLength: 1 }),
  },
  Strict,
);

/** What every exporter takes: a name (its durable cursor is kept under it), where, and how. */
const exporterFields = {
  /** Unique among exporters; renaming one starts it over (from `startAt`). */
  name: T.String({ pattern: '^[a-z0-9][a-z0-9-]{0,62}$', description: 'lowercase letters, digits and dashes' }),
  url: T.String({ pattern: '^https?://.+', description: 'an http:// or https:// URL' }),
  /** Extra request headers (not secrets: use `authorizationFile`). */
  headers: T.Optional(T.Record(T.String({ pattern: '^[A-Za-z0-9-]{1,64}$' }), T.String())),
  /** A file whose content (trailing newline dropped) is sent as the Authorization header, read at start. */
  authorizationFile: T.Optional(T.String({ minLength: 1 })),
  /** Most events per request (default 500). */
  batchSize: T.Optional(T.Integer({ minimum: 1, maximum: 5000 })),
  /** Where a new exporter (no saved cursor) begins: the first stored event (default) or events stored from now on. */
  startAt: T.Optional(T.Union([T.Literal('start'), T.Literal('end')])),
  /** Longest pause between retries of a batch the receiver could not take (default 30). */
  maxBackoffSeconds: T.Optional(T.Integer({ minimum: 1, maximum: 3600 })),
  /** Seconds a request may take before it counts as failed and is retried (default 10). */
  timeoutSeconds: T.Optional(T.Integer({ minimum: 1, maximum: 300 })),
};

export const OtlpExporterConfig = T.Object(exporterFields, Strict);

export const WebhookExporterConfig = T.Object(
  {
    ...exporterFields,
    /** ndjson (default): one canonical event per line; json: a JSON array of the events. */
    format: T.Optional(T.Union([T.Literal('ndjson'), T.Literal('json')])),
  },
  Strict,
);

/**
 * Exporters the collector runs from its store, each with its own durable cursor: at least once, in
 * store order, each event carrying its `id` for the receiver to drop repeats.
 */
export const CollectorExporters = T.Object(
  {
    /** OpenTelemetry logs over OTLP/HTTP; `url` is the logs endpoint, e.g. http://otel:4318/v1/logs. */
    otlp: T.Optional(T.Array(OtlpExporterConfig)),
    /** HTTP POST of batches of events, for SIEM HTTP collectors. */
    webhook: T.Optional(T.Array(WebhookExporterConfig)),
  },
  Strict,
);

export type OtlpExporterSettings = Static<typeof OtlpExporterConfig>;
export type WebhookExporterSettings = Static<typeof WebhookExporterConfig>;

/**
 * How long events are kept: `days` for every namespace, `namespaces` per namespace (the
 * `identity.namespace` a stream's events carry). Without it, nothing is deleted. Only a stream's
 * prefix is retired, with a checkpoint `byline verify` checks the remainder from.
 */
export const CollectorRetention = T.Object(
  {
    days: T.Optional(T.Integer({ minimum: 1 })),
    namespaces: T.Optional(T.Record(T.String({ minLength: 1 }), T.Integer({ minimum: 1 }))),
    /** How often the collector retires (default 60 minutes; also once at start). */
    intervalMinutes: T.Optional(T.Integer({ minimum: 1, maximum: 10080 })),
  },
  Strict,
);

export const CollectorConfigSchema = T.Object(
  {
    listen: HostPort,
    /** HTTPS; without it the collector serves plain HTTP (for loopback and tests only). */
    tls: T.Optional(CollectorTls),
    store: StoreUrl,
    auth: CollectorAuth,
    receipts: T.Optional(CollectorReceipts),
    limits: T.Optional(CollectorLimits),
    log: T.Optional(LogConfig),
    exporters: T.Optional(CollectorExporters),
    retention: T.Optional(CollectorRetention),
  },
  Strict,
);

export type CollectorConfig = Static<typeof CollectorConfigSchema>;
export type StaticTokenConfig = Static<typeof StaticToken>;
export type KubernetesAuthConfig = Static<typeof KubernetesAuth>;

export const DEFAULT_MAX_BATCH_BYTES = 8 * 1024 * 1024;
export const DEFAULT_MAX_BATCH_EVENTS = 10_000;

/** The identity fields a static writer token may name beside `identity`. */
export const STATIC_IDENTITY_FIELDS = ['kind', 'namespace', 'serviceAccount', 'pod'] as const;

/** A static token with its secret resolved (read from `tokenFile` when given so). */
export type ResolvedStaticToken = { token: string } & (
  | ({ identity: string } & Partial<Pick<StaticTokenConfig, (typeof STATIC_IDENTITY_FIELDS)[number]>>)
  | { reader: true }
);

/**
 * The checks a JSON Schema cannot say well: some way to authenticate, exactly one of token/tokenFile
 * and of identity/reader, tokens of at least 16 characters, token files readable, no token listed
 * twice. Returns the static tokens resolved (none when only Kubernetes is configured).
 */
export function resolveStaticTokens(config: CollectorConfig, what = 'collector config'): ResolvedStaticToken[] {
  const problems: string[] = [];
  const resolved: ResolvedStaticToken[] = [];
  const seen = new Map<string, number>();
  if (config.auth.static === undefined && config.auth.kubernetes === undefined) {
    throw new ValidationError(what, ['auth: give "static" tokens, "kubernetes", or both']);
  }
  if (config.auth.oidc) checkCollectorOidc(config.auth.oidc, config.auth.kubernetes !== undefined, what);
  (config.auth.static ?? []).forEach((entry, i) => {
    const field = `auth.static[${i}]`;
    let token: string | undefined;
    if ((entry.token === undefined) === (entry.tokenFile === undefined)) {
      problems.push(`${field}: give exactly one of "token" and "tokenFile"`);
    } else if (entry.tokenFile !== undefined) {
      try {
        // A trailing newline is how files usually end, not part of the token.
        token = readFileSync(entry.tokenFile, 'utf8').replace(/\r?\n$/, '');
        if (token.length < 16) problems.push(`${field}.tokenFile: ${entry.tokenFile} holds fewer than 16 characters`);
      } catch (e) {
        problems.push(`${field}.tokenFile: cannot read ${entry.tokenFile}: ${(e as Error).message}`);
      }
    } else {
      token = entry.token;
      // Checked here rather than in the schema, whose messages would echo the token.
      if (token !== undefined && token.length < 16) problems.push(`${field}.token: shorter than 16 characters`);
    }
    if ((entry.identity === undefined) === (entry.reader === undefined)) {
      problems.push(`${field}: give exactly one of "identity" (a writer) and "reader: true" (a reader)`);
      return;
    }
    if (entry.reader !== undefined) {
      for (const f of STATIC_IDENTITY_FIELDS) {
        if (entry[f] !== undefined) problems.push(`${field}.${f}: only a writer ("identity") has identity fields`);
      }
    }
    if (token === undefined || token.length < 16) return;
    const earlier = seen.get(token);
    if (earlier !== undefined) {
      problems.push(`${field}: the same token as auth.static[${earlier}] (each token must name one principal)`);
      return;
    }
    seen.set(token, i);
    if (entry.identity === undefined) {
      resolved.push({ token, reader: true });
      return;
    }
    const writer: ResolvedStaticToken = { token, identity: entry.identity };
    for (const f of STATIC_IDENTITY_FIELDS) if (entry[f] !== undefined) Object.assign(writer, { [f]: entry[f] });
    resolved.push(writer);
  });
  if (problems.length > 0) throw new ValidationError(what, problems);
  return resolved;
}

/** Exporter names must be unique: each names a durable cursor. */
export function checkExporterNames(config: CollectorConfig, what = 'collector config'): void {
  const seen = new Map<string, string>();
  const problems: string[] = [];
  for (const kind of ['otlp', 'webhook'] as const) {
    (config.exporters?.[kind] ?? []).forEach((e, i) => {
      const field = `exporters.${kind}[${i}]`;
      const earlier = seen.get(e.name);
      if (earlier)
        problems.push(`${field}.name: "${e.name}" is also the name of ${earlier} (each names its own cursor)`);
      else seen.set(e.name, field);
    });
  }
  if (problems.length > 0) throw new ValidationError(what, problems);
}

/** Reads, validates and resolves a collector config file; throws a ValidationError naming each problem. */
export function loadCollectorConfig(path: string): { config: CollectorConfig; tokens: ResolvedStaticToken[] } {
  const config = loadConfigFile(path, CollectorConfigSchema, 'collector config');
  config.store = resolveStoreUrl(config.store, dirname(resolve(path)));
  checkExporterNames(config, `collector config (${path})`);
  return { config, tokens: resolveStaticTokens(config, `collector config (${path})`) };
}
