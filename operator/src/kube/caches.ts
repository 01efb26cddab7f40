/**
 * The caches the operator answers from: namespaces (labels), AgentIdentities, DatabaseRoutes,
 * Secrets (key names only: values are dropped on arrival) and ServiceAccounts, all cluster-wide.
 * The webhook and the reconcilers read the same caches, so they judge from the same facts.
 */
import type { AgentIdentity, DatabaseRoute } from '../injection/types.js';
import { type SecretKeys, secretKeysOnly } from '../reconcile/database-route.js';
import { type KubeClient, paths } from './client.js';
import { httpTransport, type KubeObject, type RelistCause, type RestartCause, WatchCache } from './watch-cache.js';

export interface Caches {
  namespaces: WatchCache<KubeObject>;
  identities: WatchCache<AgentIdentity>;
  routes: WatchCache<DatabaseRoute>;
  secrets: WatchCache<SecretKeys & KubeObject>;
  serviceAccounts: WatchCache<KubeObject>;
}

export interface CacheHooks {
  timeoutSeconds?: number;
  inactivityMs?: number;
  onRestart?: (resource: string, cause: RestartCause) => void;
  onRelist?: (resource: string, cause: RelistCause) => void;
  log?: (level: 'debug' | 'warn', message: string, err?: unknown) => void;
}

export function createCaches(client: KubeClient, hooks: CacheHooks = {}): Caches {
  const make = <T extends KubeObject>(
    name: string,
    path: string,
    extra: Partial<ConstructorParameters<typeof WatchCache<T>>[0]> = {},
    fieldSelector?: string,
  ) =>
    new WatchCache<T>({
      name,
      transport: httpTransport<T>(client, path, fieldSelector ? { fieldSelector } : {}),
      ...(hooks.timeoutSeconds !== undefined ? { timeoutSeconds: hooks.timeoutSeconds } : {}),
      ...(hooks.inactivityMs !== undefined ? { inactivityMs: hooks.inactivityMs } : {}),
      onRestart: (cause) => hooks.onRestart?.(name, cause),
      onRelist: (cause) => hooks.onRelist?.(name, cause),
      ...(hooks.log ? { log: hooks.log } : {}),
      ...extra,
    });
  return {
    namespaces: make('namespaces', paths.namespaces()),
    identities: make<AgentIdentity>('agentidentities', paths.group('byline.dev', 'v1alpha1', 'agentidentities')),
    routes: make<DatabaseRoute>('databaseroutes', paths.group('byline.dev', 'v1alpha1', 'databaseroutes')),
    // Token and Helm release Secrets are never a route's credentials; leaving them out keeps the cache small.
    secrets: make<SecretKeys & KubeObject>(
      'secrets',
      paths.core('secrets'),
      { transform: secretKeysOnly },
      'type!=kubernetes.io/service-account-token,type!=helm.sh/release.v1',
    ),
    serviceAccounts: make('serviceaccounts', paths.core('serviceaccounts')),
  };
}

export const allCaches = (c: Caches): WatchCache<KubeObject>[] =>
  [c.namespaces, c.identities, c.routes, c.secrets, c.serviceAccounts] as unknown as WatchCache<KubeObject>[];
