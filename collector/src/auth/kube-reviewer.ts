/**
 * The API-server calls the Kubernetes authenticator makes, behind a narrow interface: TokenReview,
 * SubjectAccessReview, and listing AgentIdentities. Built on @kubernetes/client-node from a
 * kubeconfig file, the in-cluster service account, or $KUBECONFIG, in that order.
 */
import { existsSync } from 'node:fs';
import { crds } from '@byline/api';
import {
  ApiException,
  AuthenticationV1Api,
  AuthorizationV1Api,
  CustomObjectsApi,
  KubeConfig,
} from '@kubernetes/client-node';
import type { ListedIdentity } from './identity-claims.js';

export interface ReviewedUser {
  username: string;
  uid?: string;
  groups: string[];
  extra: Record<string, string[]>;
}

export type TokenReviewResult =
  | { authenticated: true; user: ReviewedUser; audiences: string[] }
  | { authenticated: false; error: string };

export interface KubeReviewer {
  /** TokenReview; without audiences, the token must be for the API server's own. */
  reviewToken(token: string, audiences?: string[]): Promise<TokenReviewResult>;
  /** SubjectAccessReview for `user`: may it do `verb` on `group`/`resource`, cluster-wide or in `namespace`? */
  allowed(
    user: ReviewedUser,
    verb: string,
    group: string,
    resource: string,
    namespace?: string,
  ): Promise<{ allowed: boolean; reason: string }>;
  /** The AgentIdentities in a namespace, as the API server lists them. */
  listAgentIdentities(namespace: string): Promise<ListedIdentity[]>;
}

const IN_CLUSTER_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

/** The kubeconfig to use: the file given, else the in-cluster service account, else $KUBECONFIG. */
export function loadKubeConfig(path?: string): KubeConfig {
  const kc = new KubeConfig();
  if (path !== undefined) {
    kc.loadFromFile(path);
  } else if (process.env.KUBERNETES_SERVICE_HOST && existsSync(IN_CLUSTER_TOKEN)) {
    kc.loadFromCluster();
  } else if (process.env.KUBECONFIG) {
    kc.loadFromDefault();
  } else {
    throw new Error(
      'auth.kubernetes: not running in a pod and neither auth.kubernetes.kubeconfig nor $KUBECONFIG is set',
    );
  }
  if (!kc.getCurrentCluster()) throw new Error('auth.kubernetes: the kubeconfig has no current cluster');
  return kc;
}

export class ClientNodeReviewer implements KubeReviewer {
  private readonly authn: AuthenticationV1Api;
  private readonly authz: AuthorizationV1Api;
  private readonly custom: CustomObjectsApi;

  constructor(kc: KubeConfig) {
    this.authn = kc.makeApiClient(AuthenticationV1Api);
    this.authz = kc.makeApiClient(AuthorizationV1Api);
    this.custom = kc.makeApiClient(CustomObjectsApi);
  }

  async reviewToken(token: string, audiences?: string[]): Promise<TokenReviewResult> {
    const review = await call('TokenReview', () =>
      this.authn.createTokenReview({ body: { spec: { token, ...(audiences ? { audiences } : {}) } } }),
    );
    const status = review.status ?? {};
    const username = status.user?.username;
    if (!status.authenticated || !username) {
      return { authenticated: false, error: status.error || 'the API server did not authenticate the token' };
    }
    return {
      authenticated: true,
      audiences: status.audiences ?? [],
      user: {
        username,
        ...(status.user?.uid ? { uid: status.user.uid } : {}),
        groups: status.user?.groups ?? [],
        extra: status.user?.extra ?? {},
      },
    };
  }

  async allowed(user: ReviewedUser, verb: string, group: string, resource: string, namespace?: string) {
    const review = await call('SubjectAccessReview', () =>
      this.authz.createSubjectAccessReview({
        body: {
          spec: {
            user: user.username,
            groups: user.groups,
            extra: user.extra,
            ...(user.uid ? { uid: user.uid } : {}),
            resourceAttributes: { verb, group, resource, ...(namespace ? { namespace } : {}) },
          },
        },
      }),
    );
    const status = review.status;
    return { allowed: status?.allowed === true && status.denied !== true, reason: status?.reason ?? '' };
  }

  async listAgentIdentities(namespace: string): Promise<ListedIdentity[]> {
    const kind = crds.AgentIdentityKind;
    const list = (await call(`listing AgentIdentities in "${namespace}"`, () =>
      this.custom.listNamespacedCustomObject({
        group: kind.group,
        version: kind.version,
        namespace,
        plural: kind.plural,
      }),
    )) as { items?: ListedIdentity[] };
    return list.items ?? [];
  }
}

/** API failures as errors that say what was asked and what the API server answered. */
async function call<T>(what: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (e) {
    if (e instanceof ApiException) {
      const body = typeof e.body === 'string' ? e.body : JSON.stringify(e.body);
      let message = body;
      try {
        message = (JSON.parse(body) as { message?: string }).message ?? body;
      } catch {}
      throw new Error(`${what}: the API server answered ${e.code}: ${message.slice(0, 300)}`);
    }
    throw new Error(`${what}: ${(e as Error).message}`);
  }
}
