/**
 * Starts the sidecar from a validated config: one listener per route, one audit pipeline shared
 * by all of them (one hash-chained stream per sidecar process).
 */
import { readFileSync } from 'node:fs';
import type { Server as HttpServer } from 'node:http';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import { createSecureContext, type SecureContext } from 'node:tls';
import {
  type AuditIdentity,
  type AuditIncident,
  DEFAULT_AUTHENTICATION_TIMEOUT_MS,
  DEFAULT_DRAIN_SECONDS,
  DEFAULT_MAX_MESSAGE_BYTES,
  DEFAULT_MAX_SPOOL_BYTES,
  parseListen,
  type RouteConfig,
  type SidecarConfig,
  sidecarConfigRules,
} from '@byline/api';
import pino, { type Logger } from 'pino';
import { EventBuilder } from './audit/event-builder.js';
import { FileSink } from './audit/file-sink.js';
import { incidentEvent } from './audit/incident-event.js';
import { AuditPipeline } from './audit/pipeline.js';
import type { AuditSink } from './audit/sink.js';
import { trustOf } from './collector-ca.js';
import type { ClientAuthenticator } from './identity/client-auth.js';
import { fixedIdentity, type IdentitySource, staticIdentity } from './identity/identity-source.js';
import { KubernetesIdentity } from './identity/kubernetes-identity.js';
import { SidecarMetrics } from './metrics.js';
import { StatementAnalyzer } from './policy/analyzer.js';
import { Authorizer } from './policy/authorizer.js';
import { PolicyClient } from './policy/client.js';
import { PolicyEngine } from './policy/engine.js';
import { staticPolicy } from './policy/static-policy.js';
import { CancelRegistry } from './proxy/cancel-registry.js';
import { ProxySession } from './proxy/session.js';
import { Shipper } from './ship/shipper.js';
import { type RecoveredSpool, Spool, type SpoolDamageReport } from './spool/spool.js';
import { loadedParser, loadParser } from './sql/parser.js';
import { TableExtractor } from './sql/tables.js';

export interface RunningSidecar {
  /** Where each route listens (the actual port when the config asked for port 0). */
  routes: { name: string; host: string; port: number }[];
  pipeline: AuditPipeline;
  metrics: SidecarMetrics;
  spool: Spool | null;
  shippers: Shipper[];
  /**
   * The policy every statement is decided by. With identity.static it starts as the config's, and
   * an in-process owner (`byline demo`) may replace it; with identity.kubernetes the collector's
   * policy client keeps it current.
   */
  policy: PolicyEngine;
  /** Where the metrics server listens, when configured. */
  metricsPort: number | null;
  /** Open client sessions. */
  readonly sessions: number;
  /** The identity a session starting now gets (with identity.kubernetes, as the collector last said). */
  identity(): AuditIdentity;
  /** Writes and syncs everything recorded so far. */
  flush(): Promise<void>;
  /** Stops accepting, closes every session, and flushes the audit trail. */
  close(): Promise<void>;
}

export interface SidecarOptions {
  logger?: Logger;
  /** identity.kubernetes: how often the token file is checked for rotation (default 2 s). */
  identityPollMs?: number;
  /** Gives up waiting for the collector to say who this sidecar is (startSidecar then rejects). */
  signal?: AbortSignal;
  /** byline gateway: each connection's password decides its identity (gateway.ts). */
  clientAuth?: ClientAuthenticator;
  /**
   * byline gateway: its own identity, in place of the config's (the writer identity the collector
   * knows its token by, for its incident events); stopped with the sidecar.
   */
  identity?: IdentitySource;
}

/** Fail closed: with identity.kubernetes this waits, retrying, until the collector says who we are. */
async function identitySource(config: SidecarConfig, logger: Logger, options: SidecarOptions): Promise<IdentitySource> {
  if (options.identity) return options.identity;
  if ('static' in config.identity) return fixedIdentity(staticIdentity(config.identity.static));
  const k = config.identity.kubernetes;
  return KubernetesIdentity.start(
    {
      tokenPath: k.tokenPath,
      url: k.collector.url,
      ...trustOf(k.collector),
      ...(options.identityPollMs ? { pollMs: options.identityPollMs } : {}),
      logger,
    },
    options.signal,
  );
}

/**
 * The policy every statement is decided by. identity.static: the config's routes[].access and
 * guardrails, fixed. identity.kubernetes: the collector's /v1/policy, live; fail closed, like the
 * identity: this waits until a policy has been applied.
 */
async function policySource(
  config: SidecarConfig,
  identity: AuditIdentity,
  metrics: SidecarMetrics,
  logger: Logger,
  options: SidecarOptions,
): Promise<{ authorizer: Authorizer; client: PolicyClient | null }> {
  const engine = new PolicyEngine();
  if ('static' in config.identity) {
    engine.setPolicy(staticPolicy(config, identity.name, identity.namespace));
    // The parser it needs loads with the first connection (see startSidecar).
    return { authorizer: new Authorizer(engine, new StatementAnalyzer(), metrics), client: null };
  }
  const k = config.identity.kubernetes;
  const analyzer = new StatementAnalyzer();
  const client = await PolicyClient.start(
    {
      url: k.collector.url,
      token: () => readFileSync(k.tokenPath, 'utf8').trim(),
      ...trustOf(k.collector),
      logger,
      engine,
      onUpdate: (result) => metrics.policyUpdates.inc({ result }),
    },
    options.signal,
  );
  return { authorizer: new Authorizer(engine, analyzer, metrics), client };
}

export async function startSidecar(config: SidecarConfig, options: SidecarOptions = {}): Promise<RunningSidecar> {
  const logger = options.logger ?? pino({ level: config.log?.level ?? 'info', base: { component: 'sidecar' } });
  const paramsMode = config.audit.params ?? 'redacted';
  checkReadable(config);
  const identity = await identitySource(config, logger, options);

  const tables = new TableExtractor();
  const metrics = new SidecarMetrics();
  let policy: Awaited<ReturnType<typeof policySource>>;
  try {
    policy = await policySource(config, identity.current(), metrics, logger, options);
  } catch (e) {
    identity.stop();
    throw e;
  }
  const audit = config.audit;
  const durability = audit.durability ?? 'batch';
  const collectors = audit.sinks.flatMap((s) => ('collector' in s ? [s.collector] : []));
  let spool: Spool | null = null;
  let recovered: RecoveredSpool | null = null;
  if (audit.spoolDir) {
    ({ spool, recovered } = Spool.open({
      dir: audit.spoolDir,
      durability,
      maxBytes: audit.maxSpoolBytes ?? DEFAULT_MAX_SPOOL_BYTES,
      ...(audit.segmentBytes ? { segmentBytes: audit.segmentBytes } : {}),
      logger,
    }));
    metrics.spoolMaxBytes.set(audit.maxSpoolBytes ?? DEFAULT_MAX_SPOOL_BYTES);
  }
  const sinks: AuditSink[] = spool ? [spool] : [];
  for (const s of audit.sinks) if ('file' in s) sinks.push(await FileSink.open(s.file, logger));
  const pipeline = new AuditPipeline(
    new EventBuilder(paramsMode, tables),
    sinks,
    logger,
    spool?.stream,
    recovered?.chain,
    metrics,
  );
  if (recovered) {
    // Their events name their tables, which takes the parser.
    if (recovered.unfinished.length > 0) await loadParser();
    await recordRecovered(recovered, pipeline, logger);
  }
  // Events about the trail itself (spool damage, dead letters): from the sidecar's stream, under
  // its identity now, against its first route.
  const first = config.routes[0]!;
  const recordIncident = async (incident: AuditIncident) => {
    pipeline.incident(
      incidentEvent(incident, {
        stream: pipeline.chain.stream,
        identity: identity.current(),
        target: {
          database: first.upstream.database ?? null,
          host: first.upstream.host,
          port: first.upstream.port,
          route: first.name,
        },
      }),
    );
    await pipeline.flush();
  };
  const recordDamage = async (report: SpoolDamageReport) => {
    metrics.spoolDamage.inc();
    await recordIncident({
      end: report.end,
      kind: 'spool.damaged',
      quarantine: report.quarantine,
      segment: report.segment,
      seqAfter: report.seqAfter,
      seqBefore: report.seqBefore,
      start: report.start,
    });
    spool?.damageRecorded(report);
  };
  if (spool && recovered) {
    for (const report of recovered.damaged) await recordDamage(report);
    spool.onDamage = (report) => {
      recordDamage(report).catch((e) => logger.error({ err: e, report }, 'could not record spool damage'));
    };
  }
  const shippers = collectors.map(
    (c) =>
      new Shipper(spool!, c, metrics, logger, {
        record: recordIncident,
        refreshIdentity: () => identity.refresh?.() ?? Promise.resolve(),
      }),
  );
  for (const shipper of shippers) shipper.start();
  let metricsServer: HttpServer | null = null;
  if (config.metrics) {
    const { host, port } = parseListen(config.metrics.listen, 'metrics.listen');
    metrics.beforeScrape = () => {
      if (spool) {
        metrics.spoolBytes.set(spool.bytes);
        metrics.unshippedEvents.set(spool.unshipped);
      }
    };
    metricsServer = await metrics.listen(host, port);
  }
  const cancels = new CancelRegistry();
  const sessions = new Set<ProxySession>();
  const sockets = new Set<Socket>();
  const servers: Server[] = [];
  const routes: RunningSidecar['routes'] = [];

  try {
    for (const route of config.routes) {
      const startSession = (socket: Socket) => {
        const session = new ProxySession(socket, {
          route,
          identity,
          pipeline,
          cancels,
          logger,
          maxMessageBytes: config.limits?.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
          authenticationTimeoutMs: config.limits?.authenticationTimeoutMs ?? DEFAULT_AUTHENTICATION_TIMEOUT_MS,
          paramsMode,
          clientTls: clientTlsFor(route),
          metrics,
          spool,
          durability,
          onBacklogFull: audit.onBacklogFull ?? 'reject',
          authorizer: policy.authorizer,
          onClosed: (s) => sessions.delete(s),
          clientAuth: options.clientAuth,
        });
        sessions.add(session);
      };
      const server = createServer({ noDelay: true }, (socket) => {
        sockets.add(socket);
        socket.once('close', () => sockets.delete(socket));
        if (loadedParser() !== undefined) startSession(socket);
        else afterParserLoads(socket, startSession, logger);
      });
      servers.push(server);
      const { host, port } = parseListen(route.listen, `route ${route.name}: listen`);
      await new Promise<void>((resolve, reject) => {
        server.once('error', (e) =>
          reject(new Error(`route "${route.name}" cannot listen on ${route.listen}: ${e.message}`)),
        );
        server.listen(port, host, () => resolve());
      });
      const address = server.address();
      routes.push({ name: route.name, host, port: typeof address === 'object' && address ? address.port : port });
      logger.info(
        {
          route: route.name,
          listen: `${host}:${routes.at(-1)!.port}`,
          upstream: `${route.upstream.host}:${route.upstream.port}`,
        },
        'route listening',
      );
    }
  } catch (e) {
    identity.stop();
    await policy.client?.stop();
    for (const s of servers) s.close();
    for (const shipper of shippers) await shipper.stop();
    metricsServer?.close();
    await pipeline.close();
    throw e;
  }
  metrics.ready = true;
  const drainMs = (audit.drainSeconds ?? DEFAULT_DRAIN_SECONDS) * 1000;

  return {
    routes,
    pipeline,
    metrics,
    spool,
    shippers,
    policy: policy.authorizer.engine,
    metricsPort: metricsServer ? (metricsServer.address() as AddressInfo).port : null,
    get sessions() {
      return sessions.size;
    },
    identity: () => identity.current(),
    flush: () => pipeline.flush(),
    async close() {
      metrics.ready = false;
      identity.stop();
      await policy.client?.stop();
      // server.close() calls back only once every connection is gone, so stop accepting first,
      // then end the sessions, then wait.
      const stopped = Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
      for (const s of sessions) s.close({ ok: false, error: 'the sidecar is shutting down' });
      for (const s of sockets) s.destroy();
      await stopped;
      await pipeline.flush();
      if (spool && shippers.length > 0) await shipBeforeExit(spool, shippers, drainMs, logger);
      for (const shipper of shippers) await shipper.stop();
      metricsServer?.close();
      await pipeline.close();
    },
  };
}

/**
 * The first connections wait for the SQL parser, which the sidecar loads only now that a client
 * needs it (idle memory; see sql/parser.ts): their statements' policy and tables need it. What the
 * client sends meanwhile stays in the socket's buffer (no reader is attached yet).
 */
function afterParserLoads(socket: Socket, startSession: (socket: Socket) => void, logger: Logger): void {
  const ignore = () => {}; // an error while waiting: the socket closes, and no session starts
  socket.on('error', ignore);
  loadParser().then(
    () => {
      socket.off('error', ignore);
      if (!socket.destroyed) startSession(socket);
    },
    (e: unknown) => {
      logger.error({ err: e }, 'the SQL parser (libpg-query) does not load; the connection is closed');
      socket.destroy();
    },
  );
}

/**
 * On shutdown: keep shipping until everything is acknowledged or the grace period is over, and
 * say loudly what is left and where (an emptyDir spool dies with the pod).
 */
async function shipBeforeExit(spool: Spool, shippers: Shipper[], graceMs: number, logger: Logger): Promise<void> {
  const left = () => ({ unshipped: spool.unshipped, spool: spool.dir });
  if (spool.unshipped > 0) {
    logger.info({ ...left(), graceSeconds: graceMs / 1000 }, 'shutting down: shipping the events not yet shipped');
  }
  const drained = await Promise.all(shippers.map((s) => s.drain(graceMs)));
  if (drained.every(Boolean)) {
    logger.info({ spool: spool.dir }, 'shutting down: every event is shipped');
    return;
  }
  logger.error(
    { ...left(), lastError: shippers.map((s) => s.lastError).find((e) => e !== null) ?? null },
    `shutting down with ${spool.unshipped} events not shipped; they stay in ${spool.dir} and ship when a sidecar starts on it again (lost if that is an emptyDir and the pod is deleted)`,
  );
}

/** Statements begun before a crash get their events (result unknown); open sessions get their end. */
async function recordRecovered(recovered: RecoveredSpool, pipeline: AuditPipeline, logger: Logger): Promise<void> {
  for (const { session, record } of recovered.unfinished) pipeline.statement(session, record);
  for (const session of recovered.openSessions) {
    pipeline.session(session, 'session.end', { ok: false, error: 'the sidecar stopped while the session was open' });
  }
  await pipeline.flush();
  if (recovered.unfinished.length > 0 || recovered.openSessions.length > 0) {
    logger.warn(
      { statements: recovered.unfinished.length, sessions: recovered.openSessions.length },
      'recovered from the spool: statements begun before the last stop are recorded with an unknown result',
    );
  }
}

const tlsContexts = new Map<string, SecureContext>();

function clientTlsFor(route: RouteConfig): SecureContext | null {
  if (!route.tls) return null;
  // Keyed by the files, not the route name: two sidecars in one process may both have a route "db".
  const key = `${route.tls.certFile}\0${route.tls.keyFile}`;
  let ctx = tlsContexts.get(key);
  if (!ctx) {
    ctx = createSecureContext({ cert: readFileSync(route.tls.certFile), key: readFileSync(route.tls.keyFile) });
    tlsContexts.set(key, ctx);
  }
  return ctx;
}

/** Fails at start, naming the file, rather than on the first connection. */
function checkReadable(config: SidecarConfig): void {
  const problems = sidecarConfigRules(config);
  if (problems.length > 0) throw new Error(`invalid sidecar config:\n  - ${problems.join('\n  - ')}`);
  for (const route of config.routes) {
    const files: [string, string | undefined][] = [];
    if (route.credentials.mode === 'inject') {
      files.push(['credentials.usernameFile', route.credentials.usernameFile]);
      files.push(['credentials.passwordFile', route.credentials.passwordFile]);
      files.push(['credentials.clientPasswordFile', route.credentials.clientPasswordFile]);
    }
    files.push(['upstream.sslRootCertFile', route.upstream.sslRootCertFile]);
    files.push(['tls.certFile', route.tls?.certFile], ['tls.keyFile', route.tls?.keyFile]);
    for (const [field, file] of files) {
      if (!file) continue;
      try {
        readFileSync(file);
      } catch (e) {
        throw new Error(`route "${route.name}": ${field} ${file} cannot be read: ${(e as Error).message}`);
      }
    }
    if (route.tls) clientTlsFor(route);
  }
}
