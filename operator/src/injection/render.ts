/** What injection adds to a pod: the sidecar's config, its container, its volumes, the app env. */
import type { SidecarConfig } from '@byline/api';
import type { V1Container, V1EnvVar, V1ResourceRequirements, V1Volume, V1VolumeMount } from '@kubernetes/client-node';
import {
  caDir,
  caVolume,
  LOOPBACK,
  METRICS_PORT,
  routeDir,
  routeVolume,
  SIDECAR_CONFIG_ENV,
  SIDECAR_NAME,
  SPOOL_DIR,
  SPOOL_VOLUME,
  TMP_VOLUME,
  TOKEN_AUDIENCE,
  TOKEN_DIR,
  TOKEN_EXPIRATION_SECONDS,
  TOKEN_PATH,
  TOKEN_VOLUME,
} from './constants.js';
import { type ResolvedRoute, resolveRoute } from './routes.js';
import {
  DEFAULT_SIDECAR_NODE_OPTIONS,
  DEFAULT_SIDECAR_RESOURCES,
  DEFAULT_SPOOL_BYTES,
  SIDECAR_MALLOC_ARENA_MAX,
} from './sidecar-settings.js';
import type { AgentIdentity, DatabaseRoute, InjectionOptions } from './types.js';

/**
 * The sidecar's config for these routes (in the identity's order), as `byline sidecar` reads it.
 * maxSpoolBytes is always written: the spool volume's sizeLimit is derived from it.
 */
export function renderConfig(
  identity: AgentIdentity,
  routes: ResolvedRoute[],
  options: InjectionOptions,
  maxSpoolBytes = options.sidecar?.maxSpoolBytes ?? DEFAULT_SPOOL_BYTES,
  acceptAnyUser = false,
) {
  // Inline, so that no Secret has to exist in (or be readable from) the agent's namespace.
  const ca = options.collectorCaPem ? { caPem: options.collectorCaPem } : {};
  const config: SidecarConfig = {
    identity: { kubernetes: { tokenPath: TOKEN_PATH, collector: { url: options.collectorUrl, ...ca } } },
    routes: routes.map((r) => ({
      name: r.name,
      listen: `${LOOPBACK}:${r.listenPort}`,
      upstream: {
        host: r.upstream.host,
        port: r.upstream.port,
        database: r.upstream.database,
        sslMode: r.upstream.sslMode,
        ...(r.upstream.caSecretRef ? { sslRootCertFile: `${caDir(r.name)}/${r.upstream.caSecretRef.key}` } : {}),
      },
      credentials: {
        mode: 'inject' as const,
        ...(r.username !== undefined
          ? { username: r.username }
          : { usernameFile: `${routeDir(r.name)}/${r.secretRef.usernameKey}` }),
        passwordFile: `${routeDir(r.name)}/${r.secretRef.passwordKey}`,
        // A route that names its role takes only that user name (28000 for any other): the agent's
        // env names the role (renderAppEnv). A pod whose agent has its own name baked in opts out by
        // annotation. A route that does not name it cannot put it in the agent's env (the webhook does
        // not read Secrets), so its sidecar takes any user name, as before the field existed.
        ...(acceptAnyUser || r.username === undefined ? { acceptAnyUser: true } : {}),
      },
    })),
    audit: {
      params: identity.spec.parameters ?? 'redacted',
      spoolDir: SPOOL_DIR,
      maxSpoolBytes,
      sinks: [{ collector: { url: options.collectorUrl, tokenFile: TOKEN_PATH, ...ca } }],
    },
    metrics: { listen: `0.0.0.0:${METRICS_PORT}` },
  };
  return config;
}

/**
 * The sidecar config for an identity and its routes (DatabaseRoutes in the identity's order).
 * Throws when a route cannot be rendered; mutatePod refuses such pods instead.
 */
export function renderSidecarConfig(
  identity: AgentIdentity,
  routes: DatabaseRoute[],
  options: InjectionOptions,
  acceptAnyUser = false,
): SidecarConfig {
  const resolved = routes.map((route) => {
    const r = resolveRoute(route);
    if ('problems' in r) throw new Error(`DatabaseRoute "${route.metadata?.name}": ${r.problems.join('; ')}`);
    return r;
  });
  return renderConfig(identity, resolved, options, undefined, acceptAnyUser);
}

/**
 * Volumes for the sidecar only: the projected token, each route's Secret (and CA), the spool (an
 * emptyDir bounded by `spoolSizeLimit`, or the PersistentVolumeClaim `spoolClaim` so that events
 * outlive the pod).
 */
export function renderVolumes(routes: ResolvedRoute[], spoolClaim?: string, spoolSizeLimit?: string): V1Volume[] {
  const volumes: V1Volume[] = [
    {
      name: TOKEN_VOLUME,
      projected: {
        sources: [
          {
            serviceAccountToken: {
              audience: TOKEN_AUDIENCE,
              expirationSeconds: TOKEN_EXPIRATION_SECONDS,
              path: 'token',
            },
          },
        ],
      },
    },
  ];
  for (const r of routes) {
    // Only the two keys the sidecar reads; a missing key then fails the pod's start with the kubelet's
    // message rather than the sidecar's.
    const keys =
      r.username !== undefined
        ? [r.secretRef.passwordKey]
        : [...new Set([r.secretRef.usernameKey, r.secretRef.passwordKey])];
    volumes.push({
      name: routeVolume(r.name),
      secret: { secretName: r.secretRef.name, items: keys.map((key) => ({ key, path: key })) },
    });
    if (r.upstream.caSecretRef) {
      const { name, key } = r.upstream.caSecretRef;
      volumes.push({ name: caVolume(r.name), secret: { secretName: name, items: [{ key, path: key }] } });
    }
  }
  volumes.push(
    spoolClaim
      ? { name: SPOOL_VOLUME, persistentVolumeClaim: { claimName: spoolClaim } }
      : { name: SPOOL_VOLUME, emptyDir: spoolSizeLimit ? { sizeLimit: spoolSizeLimit } : {} },
  );
  // The root filesystem is read-only; Node (tsx's compile cache) needs a writable /tmp.
  volumes.push({ name: TMP_VOLUME, emptyDir: { medium: 'Memory', sizeLimit: '64Mi' } });
  return volumes;
}

function renderMounts(routes: ResolvedRoute[]): V1VolumeMount[] {
  const mounts: V1VolumeMount[] = [{ name: TOKEN_VOLUME, mountPath: TOKEN_DIR, readOnly: true }];
  for (const r of routes) {
    mounts.push({ name: routeVolume(r.name), mountPath: routeDir(r.name), readOnly: true });
    if (r.upstream.caSecretRef) mounts.push({ name: caVolume(r.name), mountPath: caDir(r.name), readOnly: true });
  }
  mounts.push({ name: SPOOL_VOLUME, mountPath: SPOOL_DIR });
  mounts.push({ name: TMP_VOLUME, mountPath: '/tmp' });
  return mounts;
}

/** The native sidecar: an init container with restartPolicy Always, started before the app's containers. */
export function renderSidecarContainer(
  config: SidecarConfig,
  routes: ResolvedRoute[],
  options: InjectionOptions,
  resources: V1ResourceRequirements = DEFAULT_SIDECAR_RESOURCES,
) {
  if (routes.length === 0) throw new Error('a sidecar needs at least one route');
  const container: V1Container = {
    name: SIDECAR_NAME,
    image: options.image,
    ...(options.imagePullPolicy ? { imagePullPolicy: options.imagePullPolicy } : {}),
    restartPolicy: 'Always',
    args: ['sidecar', '--config-env', SIDECAR_CONFIG_ENV],
    env: [
      { name: SIDECAR_CONFIG_ENV, value: JSON.stringify(config) },
      ...nodeOptionsEnv(options),
      { name: 'MALLOC_ARENA_MAX', value: SIDECAR_MALLOC_ARENA_MAX },
    ],
    ports: [{ name: 'byline-metrics', containerPort: METRICS_PORT, protocol: 'TCP' }],
    // The app's containers start only once this succeeds, so they find the proxy listening. The
    // kubelet probes the pod's IP, where only the metrics listener is: its /readyz answers 200
    // once every route listens on the pod's loopback and the sidecar knows its identity.
    startupProbe: { httpGet: { path: '/readyz', port: METRICS_PORT }, periodSeconds: 1, failureThreshold: 120 },
    resources,
    securityContext: {
      runAsNonRoot: true,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    },
    terminationMessagePolicy: 'FallbackToLogsOnError',
    volumeMounts: renderMounts(routes),
  };
  return container;
}

/** NODE_OPTIONS for the sidecar: the operator's (heap sizing only, checked at its start) or the default. */
function nodeOptionsEnv(options: InjectionOptions): V1EnvVar[] {
  const value = options.sidecar?.nodeOptions ?? DEFAULT_SIDECAR_NODE_OPTIONS;
  return value ? [{ name: 'NODE_OPTIONS', value }] : [];
}

/** The variables app containers get, per route, in the identity's route order. */
export function renderAppEnv(identityName: string, routes: ResolvedRoute[]): V1EnvVar[] {
  const env: V1EnvVar[] = [];
  for (const r of routes) {
    const port = String(r.listenPort);
    if (r.env.host) env.push({ name: r.env.host, value: LOOPBACK });
    if (r.env.port) env.push({ name: r.env.port, value: port });
    if (r.env.user && r.username !== undefined) env.push({ name: r.env.user, value: r.username });
    if (r.env.url) {
      // The role the sidecar logs in as, which is the only user name it takes (unless the pod opted
      // out); a route that does not name it leaves the identity's name, which its sidecar accepts
      // and records as session.dbUser while logging in as the role. No TLS on the loopback hop.
      const user = r.username ?? identityName;
      const url = `postgres://${encodeURIComponent(user)}@${LOOPBACK}:${port}/${encodeURIComponent(r.upstream.database)}?sslmode=disable`;
      env.push({ name: r.env.url, value: url });
    }
  }
  return env;
}
