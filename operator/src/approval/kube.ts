/** The Approval webhook's two questions to the API server: an AgentIdentity, and a SubjectAccessReview. */
import { APPROVE_VERB, type crds } from '@byline/api';
import { isNotFound, type KubeClient, paths } from '../kube/client.js';
import type { WatchCache } from '../kube/watch-cache.js';
import type { UserInfo } from './admission.js';

/**
 * From the operator's cache, else straight from the API server: an identity created a moment before
 * its first Approval may not have reached the cache yet, and refusing it would be wrong.
 */
export function identityLookup(
  cache: WatchCache<crds.AgentIdentity>,
  client: KubeClient,
): (namespace: string, name: string) => Promise<crds.AgentIdentity | undefined> {
  return async (namespace, name) => {
    const cached = cache.get(namespace, name);
    if (cached) return cached;
    try {
      return await client.get<crds.AgentIdentity>(
        paths.group('byline.dev', 'v1alpha1', 'agentidentities', namespace, name),
      );
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  };
}

interface SubjectAccessReviewStatus {
  status?: { allowed?: boolean; denied?: boolean; reason?: string; evaluationError?: string };
}

/** May this user use the `approve` verb on approvals.byline.dev (this one, by namespace and name)? */
export function approveAccessReview(
  client: KubeClient,
): (user: UserInfo, namespace: string, name: string) => Promise<{ allowed: boolean; reason?: string }> {
  return async (user, namespace, name) => {
    const review = await client.create<SubjectAccessReviewStatus>(
      '/apis/authorization.k8s.io/v1/subjectaccessreviews',
      {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SubjectAccessReview',
        spec: {
          user: user.username,
          ...(user.uid ? { uid: user.uid } : {}),
          ...(user.groups ? { groups: user.groups } : {}),
          ...(user.extra ? { extra: user.extra } : {}),
          resourceAttributes: { group: 'byline.dev', resource: 'approvals', verb: APPROVE_VERB, namespace, name },
        },
      },
    );
    const s = review.status ?? {};
    const reason = s.reason || s.evaluationError;
    return { allowed: s.allowed === true && s.denied !== true, ...(reason ? { reason } : {}) };
  };
}
