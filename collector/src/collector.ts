/** Starts the collector from a validated config: the store, the authenticator, the HTTP server. */
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import {
  type CollectorConfig,
  DEFAULT_MAX_BATCH_BYTES,
  DEFAULT_MAX_BATCH_EVENTS,
  parseListen,
  ReceiptSigner,
} from '@byline/api';
import pino, { type Logger } from 'pino';
import type { Authenticator } from './auth/authenticator.js';
import { authenticatorFor } from './auth/from-config.js';
import { type ExportTuning, startExporters } from './export/start-exporters.js';
import { createCollectorServer } from './http/server.js';
import { reloadTlsEvery } from './http/tls-reload.js';
import { uiSettingsFor } from './http/ui-sign-in.js';
import { VerifyPool, type VerifyPoolOptions } from './ingest/verify-pool.js';
import { CollectorMetrics } from './metrics.js';
import type { PolicySource } from './policy/policy-source.js';
import { startRetention } from './retention/retention-runner.js';
import { openStore, redact } from './store/open-store.js';
import { PostgresStore } from './store/postgres-store.js';
import type { EventStore } from './store/types.js';

export interface RunningCollector {
  host: string;
  /** The actual port (when the config asked for port 0). */
  port: number;
  /** `http://host:port` */
  url: string;
  store: EventStore;
  metrics: CollectorMetrics;
  /** Stops accepting, lets requests in flight finish (up to a few seconds), closes the store. */
  close(): Promise<void>;
}

export interface CollectorOptions {
  logger?: Logger;
  /** Defaults to the config's: its static tokens first, then Kubernetes (auth.kubernetes). */
  authenticator?: Authenticator;
  /** How long `GET /v1/policy?after=…` waits for a change (default 25 s). */
  policyWaitSeconds?: number;
  /** Exporter pacing (tests make it quick). */
  exportTuning?: ExportTuning;
  /** How often tls.certFile/keyFile are re-read for a renewed certificate (default 60 s). */
  tlsReloadMs?: number;
  /** The verification workers (default: sized to the cores; tests start misbehaving ones). */
  verifyPool?: VerifyPoolOptions;
}

export async function startCollector(
  config: CollectorConfig,
  options: CollectorOptions = {},
): Promise<RunningCollector> {
  const logger = options.logger ?? pino({ level: config.log?.level ?? 'info', base: { component: 'collector' } });
  const metrics = new CollectorMetrics();
  const auth =
    options.authenticator ?? (await authenticatorFor(config, logger, (reason) => metrics.authRefusals.inc({ reason })));
  let tls: { cert: Buffer; key: Buffer } | undefined;
  if (config.tls) {
    try {
      tls = { cert: readFileSync(config.tls.certFile), key: readFileSync(config.tls.keyFile) };
    } catch (e) {
      throw new Error(`tls: cannot read the certificate or key: ${(e as Error).message}`);
    }
  }
  let receipts: ReceiptSigner | undefined;
  if (config.receipts) {
    try {
      receipts = new ReceiptSigner(readFileSync(config.receipts.keyFile));
    } catch (e) {
      throw new Error(`receipts.keyFile: cannot use ${config.receipts.keyFile}: ${(e as Error).message}`);
    }
  }
  const store = await openStore(config.store);
  if (store instanceof PostgresStore && !store.textIndexed)
    logger.warn(
      'statement text search scans: pg_trgm could not be created in this database (collector/README.md, Stores, says how to add the index)',
    );
  const shutdown = new AbortController();
  // Workers start with the first batch; closed last, after the server stopped taking batches.
  const verifyPool = new VerifyPool(options.verifyPool);
  const policy = config.auth.kubernetes ? await policySource(config.auth.kubernetes.kubeconfig, logger) : undefined;
  const server = createCollectorServer(
    {
      auth,
      store,
      metrics,
      logger,
      maxBatchBytes: config.limits?.maxBatchBytes ?? DEFAULT_MAX_BATCH_BYTES,
      maxBatchEvents: config.limits?.maxBatchEvents ?? DEFAULT_MAX_BATCH_EVENTS,
      ...(policy ? { policy } : {}),
      ...(options.policyWaitSeconds !== undefined ? { policyWaitSeconds: options.policyWaitSeconds } : {}),
      onPolicyProblems: (identity, problems) =>
        logger.warn({ identity, problems }, 'served a policy with parts that cannot be read (failed closed)'),
      onPolicyRejected: ({ namespace, name, rejected, current }) => {
        metrics.policyRejections.inc({ namespace, identity: name });
        logger.error(
          { identity: `${namespace}/${name}`, rejected, current },
          'a sidecar could not use the policy it was served (version skew?); it keeps its previous one',
        );
      },
      ...(receipts ? { receipts } : {}),
      verify: verifyPool.verify,
      ui: uiSettingsFor(config),
      shutdown: shutdown.signal,
    },
    tls,
  );
  const { host, port } = parseListen(config.listen, 'listen');
  try {
    await listen(server, host, port);
  } catch (e) {
    policy?.stop();
    await verifyPool.close();
    await store.close();
    throw new Error(`cannot listen on ${config.listen}: ${(e as Error).message}`);
  }
  let exporters: Awaited<ReturnType<typeof startExporters>>;
  try {
    exporters = await startExporters(config, store, metrics, logger, options.exportTuning);
  } catch (e) {
    policy?.stop();
    server.close();
    await verifyPool.close();
    await store.close();
    throw e;
  }
  const stopTlsReload =
    tls && config.tls
      ? reloadTlsEvery(server as unknown as HttpsServer, config.tls, tls, options.tlsReloadMs ?? 60_000, logger)
      : undefined;
  const exporterNames = [...(config.exporters?.otlp ?? []), ...(config.exporters?.webhook ?? [])].map((e) => e.name);
  const retention = config.retention
    ? startRetention(config.retention, store, logger, exporterNames, receipts)
    : undefined;
  const actual = (server.address() as AddressInfo).port;
  const url = `${tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${actual}`;
  logger.info({ url, store: redact(config.store), receiptKey: receipts?.key ?? null }, 'collector listening');

  let closing: Promise<void> | undefined;
  return {
    host,
    port: actual,
    url,
    store,
    metrics,
    close() {
      closing ??= (async () => {
        // Stopping the watches also ends the long-polls waiting on them.
        policy?.stop();
        stopTlsReload?.();
        shutdown.abort();
        await Promise.all(exporters.map((x) => x.stop()));
        await retention?.stop();
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        const timer = setTimeout(() => server.closeAllConnections(), 5000);
        await stopped;
        clearTimeout(timer);
        await verifyPool.close();
        await store.close();
        logger.info('collector stopped');
      })();
      return closing;
    },
  };
}

/** Watches AgentIdentities, DatabaseRoutes and Approvals for `/v1/policy` (with the authenticator's credentials). */
async function policySource(kubeconfig: string | undefined, logger: Logger): Promise<PolicySource> {
  const [{ loadKubeConfig }, { KubeClient }, { PolicySource }] = await Promise.all([
    import('./auth/kube-reviewer.js'),
    import('@byline/operator'),
    import('./policy/policy-source.js'),
  ]);
  const source = await PolicySource.create(new KubeClient(loadKubeConfig(kubeconfig)), {
    log: (level, message, err) => logger[level]({ err }, message),
  });
  return source.start();
}

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
