/**
 * OIDC trail readers in cluster mode, on the real API server: the collector asks a
 * SubjectAccessReview for the token's prefixed user and groups, exactly as for `byline trail`. ada
 * signs in at a real OpenID provider in Debian's chromium and sees the namespace a RoleBinding for
 * `oidc:ada@example.com` grants, not the one bound to the Kubernetes user `ada@example.com`; a group
 * bound cluster-wide (`oidc:auditors`) reads every namespace; names that would reach Kubernetes'
 * own (`system:masters`) are refused with a 401; sidecars' tokens still write when the cluster's own
 * service-account issuer is (mistakenly) listed for readers.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crds } from '@byline/api';
import {
  ndjson,
  type RunningCollector,
  SampleStream,
  startCollector,
  TRAIL_READER_RBAC_RULES,
} from '@byline/collector';
import { CoreV1Api, CustomObjectsApi, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { SignJWT } from 'jose';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call } from '../collector/http.js';
import { SERVICE_ACCOUNT_ISSUER } from '../harness/kube.js';
import { freePort } from '../harness/net.js';
import { startProvider, type TestProvider, VIEWER_CLIENT_ID } from '../harness/oidc-provider.js';
import { eventually } from '../harness/sidecar.js';
import { chromiumFor, loadStatus, signInAtProvider } from '../ui/oidc-sign-in.js';
import { applyCrds } from './apply-crds.js';
import { controlPlane } from './control-plane.js';
import { kubeRest } from './rest.js';

const suffix = randomBytes(3).toString('hex');
const granted = `oidc-a-${suffix}`;
/** Bound to the Kubernetes user "ada@example.com" (no prefix): not ada's OIDC sign-in. */
const unprefixed = `oidc-b-${suffix}`;
const role = `byline-trail-reader-oidc-${suffix}`;
const PER_NAMESPACE = 4;

const dir = mkdtempSync(join(tmpdir(), 'byline-viewer-oidc-rbac-'));
const collectorPort = await freePort();
const collectorUrl = `http://127.0.0.1:${collectorPort}`;
const op: TestProvider = await startProvider({
  dir,
  viewerRedirectUri: `${collectorUrl}/ui/`,
  accounts: { 'ada-0001': { email: 'ada@example.com', email_verified: true, groups: ['payments-team'] } },
});
const browser = await chromiumFor(op, 'the viewer OIDC sign-in against RBAC');

let core: CoreV1Api;
let rbac: RbacAuthorizationV1Api;
let collector: RunningCollector;

const binding = (name: string, subjects: { apiGroup: string; kind: string; name: string }[]) => ({
  metadata: { name },
  roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
  subjects,
});
const user = (name: string) => ({ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name });
const group = (name: string) => ({ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name });

/** A token as the provider would sign it, claims chosen by the test. */
function signed(claims: Record<string, unknown>): Promise<string> {
  return new SignJWT({ sub: 'grace-0002', email: 'grace@example.com', email_verified: true, ...claims })
    .setProtectedHeader({ alg: 'RS256', kid: op.key.kid })
    .setIssuer(op.issuer)
    .setAudience(VIEWER_CLIENT_ID)
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(op.key.privateKey);
}

const read = (token: string, query = '') =>
  call(collectorPort, 'GET', `/v1/events?limit=5000${query}`, { token }).then((r) => ({
    ...r,
    namespaces:
      r.status === 200
        ? new Set(r.json.events.map((e: { event: { identity: { namespace: string } } }) => e.event.identity.namespace))
        : new Set(),
  }));

beforeAll(async () => {
  const plane = controlPlane();
  core = plane.kubeConfig.makeApiClient(CoreV1Api);
  rbac = plane.kubeConfig.makeApiClient(RbacAuthorizationV1Api);
  const custom = plane.kubeConfig.makeApiClient(CustomObjectsApi);
  await applyCrds(kubeRest(plane));
  await rbac.createClusterRole({ body: { metadata: { name: role }, rules: TRAIL_READER_RBAC_RULES } });
  for (const ns of [granted, unprefixed]) {
    await core.createNamespace({ body: { metadata: { name: ns } } });
    await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'agent' } } });
    const k = crds.AgentIdentityKind;
    await custom.createNamespacedCustomObject({
      group: k.group,
      version: k.version,
      namespace: ns,
      plural: k.plural,
      body: {
        apiVersion: crds.API_VERSION,
        kind: k.kind,
        metadata: { name: 'agent', namespace: ns },
        spec: { kind: 'agent', serviceAccounts: ['agent'], routes: [{ name: 'orders-db', access: 'readWrite' }] },
      },
    });
  }
  await rbac.createNamespacedRoleBinding({
    namespace: granted,
    body: binding('ada-reads', [user('oidc:ada@example.com')]),
  });
  await rbac.createNamespacedRoleBinding({
    namespace: unprefixed,
    body: binding('kube-ada-reads', [user('ada@example.com'), group('payments-team')]),
  });
  await rbac.createClusterRoleBinding({ body: binding(role, [group('oidc:auditors'), group('auditors-unprefixed')]) });
  // Reads the service-account issuer's discovery document (system:service-account-issuer-discovery).
  const bearerTokenFile = join(dir, 'discovery.token');
  const discovery = await core.createNamespacedServiceAccountToken({
    name: 'agent',
    namespace: granted,
    body: { spec: { audiences: [SERVICE_ACCOUNT_ISSUER], expirationSeconds: 3600 } },
  });
  writeFileSync(bearerTokenFile, discovery.status!.token);

  collector = await startCollector(
    {
      listen: `127.0.0.1:${collectorPort}`,
      store: `sqlite:${join(dir, 'trail.db')}`,
      auth: {
        kubernetes: { kubeconfig: plane.kubeconfigPath, cacheSeconds: 0 },
        oidc: {
          issuers: [
            { issuer: op.issuer, audiences: [VIEWER_CLIENT_ID], caFile: op.caFile, viewerClientId: VIEWER_CLIENT_ID },
            // The cluster's own service-account issuer listed too (a mistake, but a possible one): the
            // sidecars' tokens below must still write, reviewed by the API server.
            {
              issuer: SERVICE_ACCOUNT_ISSUER,
              discoveryUrl: `${plane.server}/.well-known/openid-configuration`,
              audiences: ['byline-readers'],
              caFile: plane.caFile,
              bearerTokenFile,
              nameClaim: 'sub',
            },
          ],
        },
      },
    },
    { logger: pino({ level: process.env.BYLINE_TEST_LOG ?? 'silent' }) },
  );
  for (const ns of [granted, unprefixed]) {
    const res = await core.createNamespacedServiceAccountToken({
      name: 'agent',
      namespace: ns,
      body: { spec: { audiences: ['byline.dev'], expirationSeconds: 3600 } },
    });
    const events = new SampleStream({ identity: 'agent', sessionLength: 3 });
    const batch = Array.from({ length: PER_NAMESPACE }, () => {
      const e = events.nextEvent();
      return events.writer.append({
        ...e,
        identity: {
          name: 'agent',
          kind: 'agent',
          namespace: ns,
          serviceAccount: 'agent',
          pod: null,
          source: 'kubernetes',
        },
      });
    });
    const r = await call(collectorPort, 'POST', '/v1/events', { token: res.status!.token, body: ndjson(batch) });
    expect(r.status, r.text).toBe(200);
  }
  // RBAC reaches the API server's authorizer through an informer: wait until the bindings count.
  const auditor = await signed({ groups: ['auditors'] });
  await eventually(async () => expect((await read(auditor)).status).toBe(200), 15_000);
});

afterAll(async () => {
  await browser?.close();
  await collector?.close();
  await op.stop();
  await rbac?.deleteClusterRoleBinding({ name: role }).catch(() => {});
  await rbac?.deleteClusterRole({ name: role }).catch(() => {});
  for (const ns of [granted, unprefixed]) await core?.deleteNamespace({ name: ns }).catch(() => {});
  rmSync(dir, { recursive: true, force: true });
});

describe('OIDC readers authorized by RBAC (SubjectAccessReview)', () => {
  it.skipIf(!browser)(
    'ada signs in at the provider and sees the namespace bound to oidc:ada@example.com, not the one bound to ada@example.com',
    async () => {
      const context = await browser!.createBrowserContext();
      const page = await context.newPage();
      await page.goto(`${collectorUrl}/ui/?namespace=${granted}`);
      await signInAtProvider(page, op, collectorUrl, 'ada-0001');
      expect(await loadStatus(page)).toBe(`${PER_NAMESPACE} events`);
      expect(await page.$eval('header .who', (e) => e.textContent)).toBe('Signed in as ada@example.com');

      await page.goto(`${collectorUrl}/ui/?namespace=${unprefixed}`);
      expect(await loadStatus(page)).toBe(
        `Could not load events: "oidc:ada@example.com" may not read the trail of namespace "${unprefixed}": ` +
          'RBAC does not allow "get" on "auditevents.byline.dev" there',
      );
      await context.close();
    },
    60_000,
  );

  it('a group bound cluster-wide with its prefix reads every namespace; the same group without it reads none', async () => {
    const auditor = await read(await signed({ groups: ['auditors'] }));
    expect(auditor.status, auditor.text).toBe(200);
    expect([...auditor.namespaces].filter((n) => [granted, unprefixed].includes(n as string)).sort()).toEqual(
      [granted, unprefixed].sort(),
    );
    const token = await signed({ email: 'auditors-unprefixed@example.com', groups: ['auditors-unprefixed'] });
    const denied = await read(token, `&namespace=${granted}`);
    expect(denied.status).toBe(403);
    expect(denied.json).toMatchObject({ reason: 'reader-denied' });
    expect(denied.json.error).toContain('"oidc:auditors-unprefixed@example.com" may not read');
  });

  it("names that would reach Kubernetes' own (system:masters, a service account) are refused with a 401", async () => {
    const masters = await read(await signed({ groups: ['system:masters'] }));
    expect(masters.status).toBe(401);
    expect(masters.json.error).toMatch(/lists group "system:masters", in Kubernetes' reserved "system:" space/);
    const sa = await read(await signed({ email: `system:serviceaccount:${granted}:agent` }));
    expect(sa.status).toBe(401);
    expect(sa.json.error).toMatch(/reserved "system:" space/);
  });

  it('a token of another issuer goes to TokenReview, which the API server refuses: 401', async () => {
    const { privateKey } = await import('jose').then((j) => j.generateKeyPair('RS256'));
    const other = await new SignJWT({ sub: 'x', groups: ['auditors'] })
      .setProtectedHeader({ alg: 'RS256' })
      .setIssuer('https://login.evil.example')
      .setAudience(VIEWER_CLIENT_ID)
      .setExpirationTime('5m')
      .sign(privateKey);
    const r = await read(other, `&namespace=${granted}`);
    expect(r.status).toBe(401);
    expect(r.json).toMatchObject({ reason: 'unauthenticated' });
    expect(r.json.error).toMatch(/the Kubernetes API server does not accept the token/);
  });
});
