/**
 * `byline gateway --config FILE [--kubeconfig FILE]`: the proxy for people and off-cluster
 * workloads (sidecar/src/gateway.ts). The AgentIdentities that claim OIDC subjects come from a
 * watch of the API server; the gateway accepts no connection before the first list is in.
 */
import type { ListedOidcIdentity } from '@byline/sidecar';

export interface IdentityWatch {
  list(): readonly ListedOidcIdentity[];
  stop(): void;
}

/** A watch cache of every AgentIdentity, listed before this resolves. */
export async function watchIdentities(
  kubeconfig: string | undefined,
  log: (message: string) => void,
): Promise<IdentityWatch> {
  // Through the operator's client layer: a dynamic import of @kubernetes/client-node would bundle
  // its generated API clients (14 MB) for the sake of KubeConfig.
  const { KubeClient, WatchCache, httpTransport, loadKubeConfig } = await import('@byline/operator');
  const kc = await loadKubeConfig(kubeconfig);
  const cache = new WatchCache<ListedOidcIdentity & { metadata: { name: string; namespace?: string } }>({
    name: 'agentidentities',
    transport: httpTransport(new KubeClient(kc), '/apis/byline.dev/v1alpha1/agentidentities'),
    log: (level, message, err) => {
      if (level === 'warn') log(`${message}${err ? `: ${(err as Error).message}` : ''}`);
    },
  }).start();
  await cache.synced();
  return { list: () => cache.list(), stop: () => cache.stop() };
}
