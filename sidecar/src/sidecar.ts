/**
 * Starts the sidecar from a validated config: one listener per route, one audit pipeline shared
 * by all of them (one hash-chained stream per sidecar process).
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { createSecureContext, type SecureContext } from 'node:tls';
import { type AuditIdentity, DEFAULT_MAX_MESSAGE_BYTES, type RouteConfig, type SidecarConfig } from '@byline/api';
import pino, { type Logger } from 'pino';
import { EventBuilder } from './audit/event-builder.js';
import { FileSink } from './audit/file-sink.js';
import { AuditPipeline } from './audit/pipeline.js';
import type { AuditSink } from './audit/sink.js';
import { CancelRegistry } from './proxy/cancel-registry.js';
import { ProxySession } from './proxy/session.js';
import { TableExtractor } from './sql/tables.js';

export interface RunningSidecar {
  /** Where each route listens (the actual port when the config asked for port 0). */
  routes: { name: string; host: string; port: number }[];
  pipeline: AuditPipeline;
  /** Open client sessions. */
  readonly sessions: number;
  /** Writes and syncs everything recorded so far. */
  flush(): Promise<void>;
  /** Stops accepting, closes every session, and flushes the audit trail. */
  close(): Promise<void>;
}

export interface SidecarOptions {
  logger?: Logger;
}

export function identityFrom(config: SidecarConfig): AuditIdentity {
  const s = config.identity.static;
  return {
    kind: s.kind,
    name: s.name,
    namespace: s.namespace ?? null,
    pod: s.pod ?? null,
    serviceAccount: s.serviceAccount ?? null,
    source: 'static',
  };
}

export function splitListen(listen: string): { host: string; port: number } {
  const i = listen.lastIndexOf(':');
  const host = listen.slice(0, i).replace(/^\[(.*)\]$/, '$1');
  return { host, port: Number(listen.slice(i + 1)) };
}

export async function startSidecar(config: SidecarConfig, options: SidecarOptions = {}): Promise<RunningSidecar> {
  const logger = options.logger ?? pino({ level: config.log?.level ?? 'info', base: { component: 'sidecar' } });
  const paramsMode = config.audit.params ?? 'redacted';
  const identity = identityFrom(config);
  checkReadable(config);

  const tables = await TableExtractor.create();
  const sinks: AuditSink[] = [];
  for (const s of config.audit.sinks) sinks.push(await FileSink.open(s.file, logger));
  const pipeline = new AuditPipeline(new EventBuilder(paramsMode, tables), sinks, logger);
  const cancels = new CancelRegistry();
  const sessions = new Set<ProxySession>();
  const sockets = new Set<Socket>();
  const servers: Server[] = [];
  const routes: RunningSidecar['routes'] = [];

  try {
    for (const route of config.routes) {
      const server = createServer({ noDelay: true }, (socket) => {
        sockets.add(socket);
        socket.once('close', () => sockets.delete(socket));
        const session = new ProxySession(socket, {
          route,
          identity,
          pipeline,
          cancels,
          logger,
          maxMessageBytes: config.limits?.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
          paramsMode,
          clientTls: clientTlsFor(route),
          onClosed: (s) => sessions.delete(s),
        });
        sessions.add(session);
      });
      servers.push(server);
      const { host, port } = splitListen(route.listen);
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
    for (const s of servers) s.close();
    await pipeline.close();
    throw e;
  }

  return {
    routes,
    pipeline,
    get sessions() {
      return sessions.size;
    },
    flush: () => pipeline.flush(),
    async close() {
      // server.close() calls back only once every connection is gone, so stop accepting first,
      // then end the sessions, then wait.
      const stopped = Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
      for (const s of sessions) s.close({ ok: false, error: 'the sidecar is shutting down' });
      for (const s of sockets) s.destroy();
      await stopped;
      await pipeline.close();
    },
  };
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
  for (const route of config.routes) {
    const files: [string, string | undefined][] = [];
    if (route.credentials.mode === 'inject') {
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
  const names = new Set<string>();
  const listens = new Set<string>();
  for (const route of config.routes) {
    if (names.has(route.name)) throw new Error(`route name "${route.name}" is used twice`);
    if (listens.has(route.listen) && !route.listen.endsWith(':0')) {
      throw new Error(`routes "${route.name}" and another both listen on ${route.listen}`);
    }
    names.add(route.name);
    listens.add(route.listen);
  }
}
