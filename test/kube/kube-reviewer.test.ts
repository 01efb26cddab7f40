/**
 * The collector's reviews (TokenReview, SubjectAccessReview, listing AgentIdentities) over the
 * operator's KubeClient, against the real API server: answers read right, and a refusal becomes an
 * error naming what was asked and what the API server said.
 */
import { KubeConfig } from '@kubernetes/client-node';
import { beforeAll, describe, expect, test } from 'vitest';
import { ApiServerReviewer } from '../../collector/src/auth/kube-reviewer.js';
import { applyCrds } from './apply-crds.js';
import { controlPlane } from './control-plane.js';
import { kubeRest } from './rest.js';

describe('ApiServerReviewer on the real API server', () => {
  const plane = controlPlane();
  const reviewer = new ApiServerReviewer(plane.kubeConfig);
  beforeAll(async () => {
    await applyCrds(kubeRest(plane));
  });

  test('a token the API server does not know is not authenticated, with its reason', async () => {
    const result = await reviewer.reviewToken('not-a-real-token', ['byline.dev']);
    expect(result.authenticated).toBe(false);
    expect(result).toHaveProperty('error');
  });

  test('SubjectAccessReview answers for the user asked about, not for the caller', async () => {
    const nobody = { username: 'someone-without-rights', groups: ['system:authenticated'], extra: {} };
    expect(await reviewer.allowed(nobody, 'list', 'byline.dev', 'events')).toMatchObject({ allowed: false });
    const admin = { username: 'admin', groups: ['system:masters'], extra: {} };
    expect(await reviewer.allowed(admin, 'list', 'byline.dev', 'events')).toMatchObject({ allowed: true });
  });

  test('listing AgentIdentities in an empty namespace gives none', async () => {
    expect(await reviewer.listAgentIdentities('no-identities-here')).toEqual([]);
  });

  test('a caller the API server refuses: the error names the request and the status', async () => {
    const cluster = plane.kubeConfig.getCurrentCluster()!;
    const stranger = new KubeConfig();
    stranger.loadFromOptions({
      clusters: [cluster],
      users: [{ name: 'stranger', token: 'not-a-real-token' }],
      contexts: [{ name: 'stranger', cluster: cluster.name, user: 'stranger' }],
      currentContext: 'stranger',
    });
    await expect(new ApiServerReviewer(stranger).listAgentIdentities('default')).rejects.toThrow(
      /^listing AgentIdentities in "default": the API server answered 401: Unauthorized/,
    );
  });
});
