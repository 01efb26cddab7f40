/**
 * `byline operator`: caches, reconcilers (leader only), the pod webhook (every replica), webhook TLS
 * and registration, metrics. The order matters: TLS material first (the server needs it), then the
 * caches; leader election starts only once the caches are synced, so a new leader never judges from
 * an empty cache (an identity would look RouteNotFound for a moment).
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { parseListen } from '@byline/api';
import pino, { type Logger } from 'pino';
import { APPROVAL_WEBHOOK_CONFIGURATION_NAME, createApprovals } from './approval/index.js';
import { collectorTlsSource, currentCollectorCa } from './collector-tls/collector-tls.js';
import type { NamespaceLookup } from './injection/admission.js';
import { type SidecarDefaults, type SidecarFlags, sidecarDefaultsFrom } from './injection/sidecar-settings.js';
import type { InjectionOptions } from './injection/types.js';
import { allCaches, type Caches, createCaches } from './kube/caches.js';
import { KubeClient, paths } from './kube/client.js';
import { loadKubeCredentials } from './kube/credentials.js';
import { LeaderElector } from './kube/leader-election.js';
import { httpTransport, type KubeObject, WatchCache } from './kube/watch-cache.js';
import { type AdminServer, OperatorMetrics, startAdminServer } from './metrics.js';
import { Controller } from './reconcile/controller.js';
import { EventRecorder } from './reconcile/events.js';
import { webhookNames } from './webhook/certificates.js';
import {
  desiredWebhookConfiguration,
  ensureWebhookConfiguration,
  syncWebhookCaBundle,
  WEBHOOK_CONFIGURATION_NAME,
  type WebhookTarget,
} from './webhook/registration.js';
import { startWebhookServer, type WebhookServer } from './webhook/server.js';
import {
  ensureTlsSecret,
  loadCertDir,
  materialOf,
  planRotation,
  type ServingMaterial,
  TLS_SECRET_NAME,
} from './webhook/tls-secret.js';

export interface OperatorOptions {
  /** A kubeconfig file; otherwise the in-cluster config or $KUBECONFIG (loadFromDefault). */
  kubeconfig?: string;
  /** The operator's own namespace: its Lease and its webhook TLS Secret live here. */
  namespace: string;
  /** host:port for the webhook's HTTPS server (port 0 picks one; then give no webhookUrl). */
  webhookListen: string;
  /** URL mode: the API server calls `<webhookUrl>/mutate-pods` (outside a cluster, or for tests). */
  webhookUrl?: string;
  /** Service mode: the API server calls Service `<webhookService>.<namespace>` on port 443. */
  webhookService?: string;
  /** cert-manager mode: tls.crt, tls.key and ca.crt from this directory; the Secret is left alone. */
  webhookCertDir?: string;
  /** Name of the MutatingWebhookConfiguration (default byline-pod-injector; approvals: `<name>-approvals`). */
  webhookConfigurationName?: string;
  /**
   * The configurations are owned by a Helm release (rendered by the chart): only keep their caBundle
   * current, never create them, so nothing outlives `helm uninstall`. Selector, failure policy and
   * timeout then come from the chart and the webhook* settings above are not used for registration.
   */
  webhookCaOnly?: boolean;
  /**
   * Labels a namespace needs for the API server to call the webhook (default byline.dev/injection=enabled,
   * which the injector checks in any case). Narrower only when several operators share a cluster, as tests do.
   */
  webhookNamespaceLabels?: Record<string, string>;
  /** Default Fail (fail closed); Ignore lets pods through uninjected while no replica answers. */
  webhookFailurePolicy?: 'Fail' | 'Ignore';
  /** How long the API server waits for the webhook (1–30 s, default 10). */
  webhookTimeoutSeconds?: number;
  /** The sidecar image injected into pods. */
  image: string;
  /** The collector's base URL, given to every sidecar. */
  collectorUrl: string;
  /**
   * TLS to the collector (the URL must then be https): the operator issues and renews the collector's
   * serving certificate in this Secret of its namespace, and injects its CA into every sidecar.
   */
  collectorTlsSecret?: string;
  /** Or: the collector's certificate is issued elsewhere (cert-manager); its CA bundle is read from this file. */
  collectorCaFile?: string;
  /** The sidecar's resources and spool bound unless a pod's annotations say otherwise. */
  sidecar?: SidecarDefaults;
  /** The same as command-line quantities (checked here; `sidecar` wins where both are given). */
  sidecarFlags?: SidecarFlags;
  /** Pull secrets for the sidecar image, added to injected pods. */
  sidecarImagePullSecrets?: string[];
  /** host:port for /metrics, /healthz and /readyz (default 0.0.0.0:8080 in a cluster, else 127.0.0.1:8080). */
  metricsListen?: string;
  /** Default true; false: this replica reconciles and registers the webhook unconditionally. */
  leaderElection?: boolean;
  /** This replica's name in the Lease and in Events (default: $POD_NAME or host name, plus a random suffix). */
  identity?: string;
  logger?: Logger;
  /** How long start waits for the first list of every resource before failing (default 120 s). */
  cacheSyncTimeoutMs?: number;
  /** Per-watch timeoutSeconds asked of the API server (default 300). */
  watchTimeoutSeconds?: number;
  /** Lease timings; the defaults are client-go's: 15 s, 10 s, 2 s. */
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
}

export interface RunningOperator {
  identity: string;
  /** This replica's webhook server, https://host:port. */
  webhookUrl: string;
  /** The plain-HTTP server for /metrics, /healthz, /readyz. */
  metricsUrl: string;
  metrics: OperatorMetrics;
  caches: Caches;
  isLeader(): boolean;
  /** Resolves when the caches are synced (already so when startOperator has resolved). */
  synced(): Promise<void>;
  /** Stops everything; `releaseLease: false` leaves the Lease held, as a crash would. */
  close(options?: { releaseLease?: boolean }): Promise<void>;
}

const TLS_CHECK_INTERVAL_MS = 60 * 60 * 1000;
const REGISTRATION_INTERVAL_MS = 5 * 60 * 1000;
const CA_SYNC_INTERVAL_MS = 30 * 1000;

export async function startOperator(options: OperatorOptions): Promise<RunningOperator> {
  const logger = options.logger ?? pino({ base: { component: 'operator' } });
  const identity = options.identity ?? `${process.env.POD_NAME || hostname()}_${randomUUID().slice(0, 8)}`;
  const namespace = options.namespace;
  if (!namespace) throw new Error('--namespace is required (the operator keeps its Lease and TLS Secret there)');
  if (options.webhookUrl && options.webhookService)
    throw new Error('give --webhook-url or --webhook-service, not both');
  const webhookListen = parseListen(options.webhookListen, '--webhook-listen');
  const inCluster = Boolean(process.env.KUBERNETES_SERVICE_HOST);
  const metricsListen = parseListen(
    options.metricsListen ?? (inCluster ? '0.0.0.0:8080' : '127.0.0.1:8080'),
    '--metrics-listen',
  );
  const timeout = options.webhookTimeoutSeconds;
  if (timeout !== undefined && !(Number.isInteger(timeout) && timeout >= 1 && timeout <= 30)) {
    throw new Error(`--webhook-timeout-seconds must be a whole number from 1 to 30, got ${timeout}`);
  }
  if (options.webhookFailurePolicy && !['Fail', 'Ignore'].includes(options.webhookFailurePolicy)) {
    throw new Error(`--webhook-failure-policy must be Fail or Ignore, got ${options.webhookFailurePolicy}`);
  }
  if (options.webhookUrl && new URL(options.webhookUrl).protocol !== 'https:') {
    throw new Error(
      `--webhook-url must be https:// (the API server calls webhooks over TLS), got ${options.webhookUrl}`,
    );
  }
  if (!options.webhookUrl && !options.webhookService && ['0.0.0.0', '::'].includes(webhookListen.host)) {
    throw new Error('give --webhook-url or --webhook-service when --webhook-listen has no specific host');
  }

  const collectorTls = collectorTlsSource({ ...options, namespace });
  if (collectorTls && 'problem' in collectorTls) throw new Error(collectorTls.problem);

  const flagged = sidecarDefaultsFrom(options.sidecarFlags ?? {});
  if ('problem' in flagged) throw new Error(flagged.problem);
  const sidecar: SidecarDefaults = { ...flagged, ...options.sidecar };

  // Not @kubernetes/client-node's KubeConfig unless the kubeconfig needs it (~40 MiB of heap).
  const client = new KubeClient(await loadKubeCredentials(options.kubeconfig));
  const metrics = new OperatorMetrics();
  const cleanups: Array<() => unknown> = [];
  const fail = async (err: unknown): Promise<never> => {
    for (const c of cleanups.reverse()) await c();
    throw err;
  };

  // TLS material, then the webhook server.
  const urlHost = options.webhookUrl ?? (options.webhookService ? undefined : `https://${options.webhookListen}`);
  const names = options.webhookService
    ? webhookNames({ service: options.webhookService, namespace })
    : webhookNames({ url: urlHost! });
  let material: ServingMaterial;
  const refreshTls = async (): Promise<boolean> => {
    const before = material;
    if (options.webhookCertDir) material = loadCertDir(options.webhookCertDir);
    else {
      const result = await ensureTlsSecret(client, namespace, names);
      if (result.issued !== 'none') {
        metrics.certificateRotations.inc({ what: result.issued });
        logger.info({ issued: result.issued, why: result.why, names }, 'webhook certificate issued');
      }
      material = result.material;
    }
    return before === undefined || before.certPem !== material.certPem || before.caBundlePem !== material.caBundlePem;
  };
  try {
    await refreshTls();
  } catch (err) {
    await fail(err);
  }

  // Read by the webhook server per admission: a renewed collector CA reaches pods created after it.
  const injection: InjectionOptions = {
    image: options.image,
    collectorUrl: options.collectorUrl,
    sidecar,
    ...(options.sidecarImagePullSecrets?.length ? { imagePullSecrets: options.sidecarImagePullSecrets } : {}),
  };
  const refreshCollectorCa = async (): Promise<void> => {
    if (!collectorTls) return;
    const current = await currentCollectorCa(client, namespace, options.collectorUrl, collectorTls);
    if (current.issued && current.issued !== 'none')
      logger.info({ issued: current.issued, why: current.why, source: collectorTls }, 'collector certificate issued');
    if (injection.collectorCaPem !== undefined && injection.collectorCaPem !== current.caPem)
      logger.info({ source: collectorTls }, 'collector CA changed; injecting the new bundle');
    injection.collectorCaPem = current.caPem;
  };
  try {
    await refreshCollectorCa();
  } catch (err) {
    await fail(err);
  }

  const caches = createCaches(client, {
    ...(options.watchTimeoutSeconds !== undefined ? { timeoutSeconds: options.watchTimeoutSeconds } : {}),
    onRestart: (resource, cause) => metrics.watchRestarts.inc({ resource, cause }),
    onRelist: (resource, cause) => metrics.watchRelists.inc({ resource, cause }),
    log: (level, message, err) => logger[level]({ err: err ? (err as Error).message : undefined }, message),
  });
  const lookup: NamespaceLookup = (ns) => {
    const object = caches.namespaces.get(undefined, ns);
    if (!object) return undefined;
    return {
      labels: object.metadata.labels ?? {},
      identities: caches.identities.byNamespace(ns),
      routes: caches.routes.byNamespace(ns),
    };
  };

  const approvals = createApprovals({
    client,
    identities: caches.identities,
    routes: caches.routes,
    isLeader: () => isLeader(),
    logger,
    metrics,
    ...(options.watchTimeoutSeconds !== undefined ? { watchTimeoutSeconds: options.watchTimeoutSeconds } : {}),
  });

  let server: WebhookServer;
  try {
    server = await startWebhookServer({
      listen: webhookListen,
      tls: material!,
      lookup,
      injection,
      metrics,
      log: (level, fields, message) => logger[level](fields, message),
      routes: approvals.routes,
    });
  } catch (err) {
    return fail(err);
  }
  cleanups.push(() => server.close());

  const target: WebhookTarget = options.webhookService
    ? { service: { namespace, name: options.webhookService } }
    : { url: options.webhookUrl ?? server.url };
  const configurationName = options.webhookConfigurationName ?? WEBHOOK_CONFIGURATION_NAME;

  for (const cache of allCaches(caches)) {
    cache.start();
    cleanups.push(() => cache.stop());
  }
  const synced = Promise.all(allCaches(caches).map((c) => c.synced())).then(() => undefined);

  let admin: AdminServer;
  try {
    admin = await startAdminServer(metricsListen, metrics, () => {
      const pending = allCaches(caches)
        .filter((c) => !c.isSynced())
        .map((c) => c.name);
      return pending.length === 0
        ? { ready: true, detail: 'ok' }
        : { ready: false, detail: `waiting for caches: ${pending.join(', ')}` };
    });
  } catch (err) {
    return fail(err);
  }
  cleanups.push(() => admin.close());

  let elector: LeaderElector | undefined;
  let closed = false;
  const isLeader = () => !closed && (options.leaderElection === false || (elector?.isLeader() ?? false));
  const events = new EventRecorder({
    client,
    instance: identity,
    log: (message, err) => logger.warn({ err: (err as Error).message }, message),
  });
  const controller = new Controller({ client, caches, events, metrics, isLeader, logger });
  controller.start();
  cleanups.push(() => controller.stop());
  approvals.start();
  cleanups.push(() => approvals.stop());

  // Registration is the leader's job: in URL mode each replica has its own URL, and replicas must
  // not take the configuration from each other.
  let registering: Promise<void> = Promise.resolve();
  const register = () => {
    registering = registering.then(async () => {
      if (!isLeader()) return;
      const approvalsName =
        configurationName === WEBHOOK_CONFIGURATION_NAME
          ? APPROVAL_WEBHOOK_CONFIGURATION_NAME
          : `${configurationName}-approvals`;
      if (options.webhookCaOnly) {
        for (const name of [configurationName, approvalsName]) {
          try {
            if (await syncWebhookCaBundle(client, name, material.caBundlePem))
              logger.info({ name }, 'MutatingWebhookConfiguration caBundle updated');
          } catch (err) {
            logger.warn({ err: (err as Error).message }, 'keeping the webhook caBundle current failed; retrying later');
          }
        }
        return;
      }
      try {
        const wrote = await ensureWebhookConfiguration(
          client,
          desiredWebhookConfiguration(target, material.caBundlePem, {
            name: configurationName,
            ...(options.webhookNamespaceLabels ? { namespaceLabels: options.webhookNamespaceLabels } : {}),
            ...(options.webhookFailurePolicy ? { failurePolicy: options.webhookFailurePolicy } : {}),
            ...(options.webhookTimeoutSeconds ? { timeoutSeconds: options.webhookTimeoutSeconds } : {}),
          }),
        );
        if (wrote) logger.info({ name: configurationName, target }, 'MutatingWebhookConfiguration updated');
        const namespaceLabels = options.webhookNamespaceLabels;
        if (
          await approvals.register(target, material.caBundlePem, {
            name: approvalsName,
            ...(namespaceLabels ? { namespaceLabels } : {}),
          })
        )
          logger.info({ name: approvalsName, target }, 'MutatingWebhookConfiguration updated');
      } catch (err) {
        logger.warn({ err: (err as Error).message }, 'registering the webhook failed; retrying later');
      }
    });
    return registering;
  };
  const applyTls = () => {
    server.setCertificate(material);
    void register();
  };

  // Certificates issued by another replica arrive through the Secret; our own check runs hourly.
  if (!options.webhookCertDir) {
    const tlsCache = new WatchCache<KubeObject & { data?: Record<string, string> }>({
      name: 'webhook-tls-secret',
      transport: httpTransport(client, paths.core('secrets', namespace), {
        fieldSelector: `metadata.name=${TLS_SECRET_NAME}`,
      }),
      onRestart: (cause) => metrics.watchRestarts.inc({ resource: 'webhook-tls-secret', cause }),
      onRelist: (cause) => metrics.watchRelists.inc({ resource: 'webhook-tls-secret', cause }),
    });
    tlsCache.onChange((change) => {
      if (change.type === 'deleted') return;
      const stored = materialOf(change.object);
      if (planRotation(stored, names, new Date()).action !== 'keep') return;
      if (stored.certPem === material.certPem && stored.caBundlePem === material.caBundlePem) return;
      material = stored;
      logger.info('webhook certificate reloaded from the Secret');
      applyTls();
    });
    tlsCache.start();
    cleanups.push(() => tlsCache.stop());
  }
  const tlsTimer = setInterval(
    () => {
      refreshTls().then(
        (changed) => {
          if (changed) applyTls();
        },
        (err: Error) => logger.warn({ err: err.message }, 'checking the webhook certificate failed'),
      );
    },
    options.webhookCertDir ? 60_000 : TLS_CHECK_INTERVAL_MS,
  );
  tlsTimer.unref();
  const collectorTlsTimer = setInterval(
    () =>
      refreshCollectorCa().catch((err: Error) =>
        logger.warn({ err: err.message }, 'checking the collector certificate failed; injecting the last CA'),
      ),
    collectorTls && 'caFile' in collectorTls ? 60_000 : TLS_CHECK_INTERVAL_MS,
  );
  collectorTlsTimer.unref();
  // CA-only: a cheap GET; a `helm upgrade` that replaced the configuration gets its caBundle back soon.
  const registrationTimer = setInterval(
    () => void register(),
    options.webhookCaOnly ? CA_SYNC_INTERVAL_MS : REGISTRATION_INTERVAL_MS,
  );
  registrationTimer.unref();
  cleanups.push(
    () => clearInterval(tlsTimer),
    () => clearInterval(collectorTlsTimer),
    () => clearInterval(registrationTimer),
  );

  const startLeading = () => {
    metrics.leader.set(1);
    logger.info({ identity }, 'leading: reconciling and registering the webhook');
    controller.resume();
    approvals.resume();
    void register();
  };
  // Returning only once the caches hold the cluster's state (and, without leader election, once the
  // webhook is registered) means a caller can create pods right away; a cluster that cannot be listed
  // at all fails the start, as controller-runtime's cache-sync timeout does.
  const syncTimeoutMs = options.cacheSyncTimeoutMs ?? 120_000;
  let syncTimer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      synced,
      new Promise<never>((_, reject) => {
        syncTimer = setTimeout(() => {
          const pending = allCaches(caches)
            .filter((c) => !c.isSynced())
            .map((c) => c.name);
          reject(new Error(`caches not synced within ${syncTimeoutMs / 1000} s: ${pending.join(', ')}`));
        }, syncTimeoutMs);
      }),
    ]);
  } catch (err) {
    return fail(err);
  } finally {
    clearTimeout(syncTimer);
  }
  logger.info('caches synced');
  if (options.leaderElection === false) {
    startLeading();
    await registering;
  } else {
    elector = new LeaderElector({
      client,
      namespace,
      identity,
      ...(options.leaseDurationMs !== undefined ? { leaseDurationMs: options.leaseDurationMs } : {}),
      ...(options.renewDeadlineMs !== undefined ? { renewDeadlineMs: options.renewDeadlineMs } : {}),
      ...(options.retryPeriodMs !== undefined ? { retryPeriodMs: options.retryPeriodMs } : {}),
      onStartedLeading: startLeading,
      onStoppedLeading: () => {
        metrics.leader.set(0);
        controller.pause();
      },
      log: (level, message, err) => logger[level]({ err: err ? (err as Error).message : undefined }, message),
    });
    elector.start();
  }

  logger.info({ webhook: server.url, target, metrics: admin.url, identity }, 'operator started');
  return {
    identity,
    webhookUrl: server.url,
    metricsUrl: admin.url,
    metrics,
    caches,
    isLeader,
    synced: () => synced,
    close: async (closeOptions = {}) => {
      if (closed) return;
      closed = true;
      await elector?.stop({ release: closeOptions.releaseLease !== false });
      metrics.leader.set(0);
      await registering;
      for (const c of cleanups.reverse()) await c();
      client.close();
      logger.info('operator stopped');
    },
  };
}
