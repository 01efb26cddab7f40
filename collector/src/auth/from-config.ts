/** The authenticator a collector config asks for: static tokens first, then Kubernetes. */
import {
  type CollectorConfig,
  DEFAULT_KUBERNETES_AUDIENCE,
  DEFAULT_KUBERNETES_CACHE_SECONDS,
  resolveStaticTokens,
} from '@byline/api';
import type { Logger } from 'pino';
import { type Authenticator, ChainedAuthenticator, type RefusalReason } from './authenticator.js';
import { KubernetesAuthenticator } from './kubernetes-authenticator.js';
import { StaticAuthenticator } from './static-authenticator.js';

export async function authenticatorFor(
  config: CollectorConfig,
  logger: Logger,
  onRefusal?: (reason: RefusalReason) => void,
): Promise<Authenticator> {
  const chain: Authenticator[] = [];
  const tokens = resolveStaticTokens(config);
  if (tokens.length > 0) chain.push(new StaticAuthenticator(tokens));
  const kube = config.auth.kubernetes;
  if (kube) {
    // Loaded only when asked for: a collector with static tokens has no use for the client.
    const { ApiServerReviewer, loadKubeConfig } = await import('./kube-reviewer.js');
    const kc = loadKubeConfig(kube.kubeconfig);
    const audience = kube.audience ?? DEFAULT_KUBERNETES_AUDIENCE;
    const cacheSeconds = kube.cacheSeconds ?? DEFAULT_KUBERNETES_CACHE_SECONDS;
    chain.push(
      new KubernetesAuthenticator(new ApiServerReviewer(kc), {
        audience,
        cacheSeconds,
        logger,
        ...(onRefusal ? { onRefusal } : {}),
      }),
    );
    logger.info({ server: kc.getCurrentCluster()?.server, audience, cacheSeconds }, 'Kubernetes token review on');
  }
  return chain.length === 1 ? chain[0]! : new ChainedAuthenticator(chain);
}
