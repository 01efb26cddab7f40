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
  const [{ KubeClient, WatchCache, httpTransport }, { KubeConfig }] = await Promise.all([
    import('@byline/operator'),
    import('@kubernetes/client-node'),
  ]);
  const kc = new KubeConfig();
  if (kubeconfig !== undefined) kc.loadFromFile(kubeconfig);
  else if (process.env.KUBERNETES_SERVICE_HOST) kc.loadFromCluster();
  else kc.loadFromDefault();
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
