/** The authenticator a collector config asks for: static tokens first, then OIDC readers, then Kubernetes. */
import {
  type CollectorConfig,
  checkCollectorOidc,
  DEFAULT_KUBERNETES_AUDIENCE,
  DEFAULT_KUBERNETES_CACHE_SECONDS,
  resolveStaticTokens,
} from '@byline/api';
import { OidcVerifier } from '@byline/api/oidc';
import type { Logger } from 'pino';
import { type Authenticator, ChainedAuthenticator, type RefusalReason } from './authenticator.js';
import type { KubeReviewer } from './kube-reviewer.js';
import { KubernetesAuthenticator } from './kubernetes-authenticator.js';
import { OidcReaderAuthenticator } from './oidc-reader-authenticator.js';
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
  const cacheSeconds = kube?.cacheSeconds ?? DEFAULT_KUBERNETES_CACHE_SECONDS;
  let reviewer: KubeReviewer | undefined;
  let server: string | undefined;
  if (kube) {
    // Loaded only when asked for: a collector with static tokens has no use for the client.
    const { ApiServerReviewer, loadKubeConfig } = await import('./kube-reviewer.js');
    const kc = loadKubeConfig(kube.kubeconfig);
    server = kc.getCurrentCluster()?.server;
    reviewer = new ApiServerReviewer(kc);
  }
  const oidc = config.auth.oidc;
  if (oidc) {
    checkCollectorOidc(oidc, kube !== undefined);
    const verifier = new OidcVerifier(oidc.issuers, {
      ...(oidc.clockToleranceSeconds === undefined ? {} : { clockToleranceSeconds: oidc.clockToleranceSeconds }),
      service: 'this collector',
      carrier: 'the bearer token',
    });
    for (const { issuer, error } of await verifier.start()) {
      if (error) logger.warn({ issuer }, `OIDC readers: ${error} (retried when a token names it)`);
    }
    chain.push(
      new OidcReaderAuthenticator(verifier, {
        issuers: oidc.issuers,
        authorization: reviewer ? { rbac: reviewer } : { rules: oidc.readers ?? [] },
        cacheSeconds,
        logger,
        ...(onRefusal ? { onRefusal } : {}),
      }),
    );
    logger.info(
      { issuers: oidc.issuers.map((i) => i.issuer), authorization: reviewer ? 'rbac' : 'auth.oidc.readers' },
      'OIDC readers on',
    );
  }
  if (kube && reviewer) {
    const audience = kube.audience ?? DEFAULT_KUBERNETES_AUDIENCE;
    chain.push(
      new KubernetesAuthenticator(reviewer, {
        audience,
        cacheSeconds,
        logger,
        ...(onRefusal ? { onRefusal } : {}),
      }),
    );
    logger.info({ server, audience, cacheSeconds }, 'Kubernetes token review on');
  }
  return chain.length === 1 ? chain[0]! : new ChainedAuthenticator(chain);
}
