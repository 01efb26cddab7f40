/**
 * The control plane is the real thing: service-account tokens bound to an audience (TokenRequest),
 * checked by TokenReview with that audience, and RBAC answering SubjectAccessReviews — what the
 * collector and the trail's readers will rely on.
 */
import { randomBytes } from 'node:crypto';
import {
  AuthenticationV1Api,
  AuthorizationV1Api,
  CoreV1Api,
  RbacAuthorizationV1Api,
  type V1SubjectAccessReview,
} from '@kubernetes/client-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { SERVICE_ACCOUNT_ISSUER } from '../harness/kube.js';
import { controlPlane } from './control-plane.js';

const AUDIENCE = 'byline.dev';

let core: CoreV1Api;
let authn: AuthenticationV1Api;
let authz: AuthorizationV1Api;
let rbac: RbacAuthorizationV1Api;
const namespace = `cp-${randomBytes(4).toString('hex')}`;
const serviceAccount = 'billing-reconciler';
const username = `system:serviceaccount:${namespace}:${serviceAccount}`;

beforeAll(async () => {
  const { kubeConfig } = controlPlane();
  core = kubeConfig.makeApiClient(CoreV1Api);
  authn = kubeConfig.makeApiClient(AuthenticationV1Api);
  authz = kubeConfig.makeApiClient(AuthorizationV1Api);
  rbac = kubeConfig.makeApiClient(RbacAuthorizationV1Api);
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: serviceAccount } } });
});

/** Without audiences the token is for the API server's own (the issuer). */
async function requestToken(audiences: string[] = []): Promise<{ token: string; expires: Date }> {
  const res = await core.createNamespacedServiceAccountToken({
    name: serviceAccount,
    namespace,
    // 600 s is the shortest expiry the API server accepts.
    body: { spec: { audiences, expirationSeconds: 600 } },
  });
  const token = res.status?.token;
  const expires = res.status?.expirationTimestamp;
  if (!token || !expires) throw new Error(`TokenRequest returned no token: ${JSON.stringify(res.status)}`);
  return { token, expires: new Date(expires) };
}

function claims(jwt: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString()) as Record<string, unknown>;
}

async function review(token: string, audiences?: string[]) {
  const res = await authn.createTokenReview({ body: { spec: { token, ...(audiences ? { audiences } : {}) } } });
  return res.status ?? {};
}

function accessReview(ns: string): V1SubjectAccessReview {
  return {
    spec: {
      user: username,
      groups: ['system:serviceaccounts', `system:serviceaccounts:${namespace}`, 'system:authenticated'],
      resourceAttributes: { namespace: ns, verb: 'get', group: 'byline.dev', resource: 'auditevents' },
    },
  };
}

async function allowed(ns: string): Promise<boolean> {
  const res = await authz.createSubjectAccessReview({ body: accessReview(ns) });
  return res.status?.allowed ?? false;
}

describe('a real kube-apiserver', () => {
  it('issues a token for the byline.dev audience with a short expiry', async () => {
    const before = Date.now();
    const { token, expires } = await requestToken([AUDIENCE]);
    const expiresIn = (expires.getTime() - before) / 1000;
    expect(expiresIn).toBeGreaterThan(590);
    expect(expiresIn).toBeLessThan(700);
    const c = claims(token);
    expect(c.aud).toEqual([AUDIENCE]);
    expect(c.iss).toBe(SERVICE_ACCOUNT_ISSUER);
    expect(c.sub).toBe(username);
  });

  it('TokenReview with the token’s audience authenticates the service account', async () => {
    const { token } = await requestToken([AUDIENCE]);
    const status = await review(token, [AUDIENCE]);
    expect(status.error ?? '').toBe('');
    expect(status.authenticated).toBe(true);
    expect(status.user?.username).toBe(username);
    expect(status.user?.groups).toEqual(
      expect.arrayContaining(['system:serviceaccounts', `system:serviceaccounts:${namespace}`]),
    );
    expect(status.audiences).toEqual([AUDIENCE]);
  });

  it('TokenReview with another audience does not authenticate', async () => {
    const { token } = await requestToken([AUDIENCE]);
    const status = await review(token, ['other.example.com']);
    expect(status.authenticated ?? false).toBe(false);
    expect(status.error).toMatch(/audience/i);
    // Nor for the API server's own audience (a review without audiences).
    expect((await review(token)).authenticated ?? false).toBe(false);
  });

  it('a default-audience token is not accepted for byline.dev', async () => {
    const { token } = await requestToken();
    expect(claims(token).aud).toEqual([SERVICE_ACCOUNT_ISSUER]);
    expect((await review(token)).authenticated).toBe(true);
    expect((await review(token, [AUDIENCE])).authenticated ?? false).toBe(false);
  });

  it('accepts pods without a controller-manager (no ServiceAccount admission)', async () => {
    const pod = await core.createNamespacedPod({
      namespace,
      body: {
        metadata: { name: 'agent' },
        spec: { serviceAccountName: serviceAccount, containers: [{ name: 'agent', image: 'example.invalid/agent' }] },
      },
    });
    expect(pod.metadata?.uid).toBeTruthy();
    expect(pod.spec?.serviceAccountName).toBe(serviceAccount);
  });

  it('RBAC denies reading audit events until a Role and RoleBinding allow it', async () => {
    expect(await allowed(namespace)).toBe(false);

    await rbac.createNamespacedRole({
      namespace,
      body: {
        metadata: { name: 'trail-reader' },
        rules: [{ apiGroups: ['byline.dev'], resources: ['auditevents'], verbs: ['get'] }],
      },
    });
    await rbac.createNamespacedRoleBinding({
      namespace,
      body: {
        metadata: { name: 'trail-reader' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'trail-reader' },
        subjects: [{ kind: 'ServiceAccount', name: serviceAccount, namespace }],
      },
    });

    // The RBAC authorizer reads roles from an informer cache: allow it a moment to catch up.
    const deadline = Date.now() + 10_000;
    let granted = await allowed(namespace);
    while (!granted && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      granted = await allowed(namespace);
    }
    expect(granted).toBe(true);
    // A Role grants within its namespace only.
    expect(await allowed('default')).toBe(false);
  });
});
