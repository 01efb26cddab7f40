/**
 * The collector over TLS in a cluster, on the real API server: the operator (--collector-tls-secret)
 * creates the collector's TLS Secret; a collector started with those files serves HTTPS; a pod is
 * injected with an https collector URL and the CA inline (caPem), and its sidecar, run with exactly
 * that config, learns who it is (/v1/whoami), gets its policy and ships through TLS trusting nothing
 * but that CA. Without the injected CA the same config cannot reach the collector.
 */
import { randomBytes, X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AuditEvent, type SidecarConfig, SidecarConfigSchema, sidecarConfigRules, validate } from '@byline/api';
import { type RunningCollector, startCollector } from '@byline/collector';
import { startOperator } from '@byline/operator';
import { askWhoami, type RunningSidecar, startSidecar } from '@byline/sidecar';
import { CoreV1Api, CustomObjectsApi, type V1Pod } from '@kubernetes/client-node';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { freePort } from '../harness/net.js';
import { AUTH_USERS, startPostgres, TEST_PASSWORD, type TestPostgres } from '../harness/postgres.js';
import { applyCrds } from './apply-crds.js';
import { controlPlane } from './control-plane.js';
import { kubeRest } from './rest.js';

const logger = pino({ level: process.env.BYLINE_TEST_LOG ?? 'silent' });
const suffix = randomBytes(3).toString('hex');
const ns = `ctls-agents-${suffix}`;
const operatorNs = `ctls-byline-${suffix}`;
const IDENTITY = 'tls-agent';
const SECRET = 'byline-collector-tls';
const WEBHOOK_CONFIG = `byline-ctls-${suffix}`;
const INJECTION_LABEL = { 'byline.dev/ctls': suffix };

let core: CoreV1Api;
let db: TestPostgres;
let collector: RunningCollector | undefined;
let operator: { close(): Promise<void> } | undefined;
let sidecar: RunningSidecar | undefined;
let rest: ReturnType<typeof kubeRest>;
let dir: string;
let collectorPort: number;
let listenPort: number;

const b64 = (s: string | undefined) => Buffer.from(s ?? '', 'base64').toString('utf8');

beforeAll(async () => {
  const plane = controlPlane();
  core = plane.kubeConfig.makeApiClient(CoreV1Api);
  const custom = plane.kubeConfig.makeApiClient(CustomObjectsApi);
  rest = kubeRest(plane);
  await applyCrds(rest);
  dir = mkdtempSync(join(tmpdir(), 'byline-ctls-'));
  db = await startPostgres();
  listenPort = await freePort();
  collectorPort = await freePort();

  await core.createNamespace({ body: { metadata: { name: operatorNs } } });
  await core.createNamespace({
    body: { metadata: { name: ns, labels: { 'byline.dev/injection': 'enabled', ...INJECTION_LABEL } } },
  });
  await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: IDENTITY } } });
  await core.createNamespacedSecret({
    namespace: ns,
    body: { metadata: { name: 'orders-db-app' }, stringData: { username: AUTH_USERS.scram, password: TEST_PASSWORD } },
  });
  const crd = { group: 'byline.dev', version: 'v1alpha1', namespace: ns };
  await custom.createNamespacedCustomObject({
    ...crd,
    plural: 'databaseroutes',
    body: {
      apiVersion: 'byline.dev/v1alpha1',
      kind: 'DatabaseRoute',
      metadata: { name: 'orders-db' },
      spec: {
        upstream: { host: '127.0.0.1', port: db.port, database: 'postgres', sslMode: 'disable' },
        credentials: { secretRef: { name: 'orders-db-app' } },
        listenPort,
      },
    },
  });
  await custom.createNamespacedCustomObject({
    ...crd,
    plural: 'agentidentities',
    body: {
      apiVersion: 'byline.dev/v1alpha1',
      kind: 'AgentIdentity',
      metadata: { name: IDENTITY },
      spec: {
        kind: 'agent',
        owner: 'team@example.com',
        serviceAccounts: [IDENTITY],
        routes: [{ name: 'orders-db', access: 'readWrite' }],
      },
    },
  });

  // The operator first: in a cluster the collector pod waits for the Secret it mounts.
  const webhookPort = await freePort();
  operator = await startOperator({
    kubeconfig: plane.kubeconfigPath,
    namespace: operatorNs,
    webhookListen: `127.0.0.1:${webhookPort}`,
    webhookUrl: `https://127.0.0.1:${webhookPort}`,
    metricsListen: '127.0.0.1:0',
    image: 'ghcr.io/byline-dev/byline:test',
    collectorUrl: `https://127.0.0.1:${collectorPort}`,
    collectorTlsSecret: SECRET,
    leaderElection: false,
    webhookConfigurationName: WEBHOOK_CONFIG,
    webhookNamespaceLabels: { 'byline.dev/injection': 'enabled', ...INJECTION_LABEL },
    logger,
  });
}, 120_000);

afterAll(async () => {
  await sidecar?.close();
  await operator?.close();
  await rest?.('DELETE', `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${WEBHOOK_CONFIG}`);
  await collector?.close();
  await db?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('the operator issues the collector certificate; the injected sidecar reaches the collector over TLS with the inline CA', async () => {
  // The Secret, as the collector Deployment would mount it.
  const secret = await core.readNamespacedSecret({ name: SECRET, namespace: operatorNs });
  expect(secret.type).toBe('kubernetes.io/tls');
  const certPem = b64(secret.data?.['tls.crt']);
  const caPem = b64(secret.data?.['ca.crt']);
  const serving = new X509Certificate(certPem);
  expect(serving.subjectAltName).toBe('IP Address:127.0.0.1');
  expect(serving.checkIssued(new X509Certificate(caPem))).toBe(true);
  const tlsDir = join(dir, 'collector-tls');
  mkdirSync(tlsDir);
  writeFileSync(join(tlsDir, 'tls.crt'), certPem);
  writeFileSync(join(tlsDir, 'tls.key'), b64(secret.data?.['tls.key']));
  collector = await startCollector(
    {
      listen: `127.0.0.1:${collectorPort}`,
      tls: { certFile: join(tlsDir, 'tls.crt'), keyFile: join(tlsDir, 'tls.key') },
      store: `sqlite:${join(dir, 'trail.db')}`,
      auth: { kubernetes: { kubeconfig: controlPlane().kubeconfigPath } },
    },
    { logger },
  );
  expect(collector.url).toBe(`https://127.0.0.1:${collectorPort}`);

  // A pod through the API (retrying while the webhook's caches catch up).
  let pod: V1Pod | undefined;
  let last: unknown;
  for (let i = 0; i < 50 && !pod; i++) {
    try {
      pod = await core.createNamespacedPod({
        namespace: ns,
        body: {
          metadata: { name: 'tls-1', annotations: { 'byline.dev/inject': 'true' } },
          spec: { serviceAccountName: IDENTITY, containers: [{ name: 'agent', image: 'example.com/agent:1' }] },
        },
      });
    } catch (e) {
      last = e;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  expect(pod, `pod creation kept failing: ${String(last)}`).toBeDefined();
  const proxy = pod!.spec!.initContainers!.find((c) => c.name === 'byline-proxy')!;
  const rendered = JSON.parse(proxy.env!.find((e) => e.name === 'BYLINE_SIDECAR_CONFIG')!.value!) as SidecarConfig;
  const k = 'kubernetes' in rendered.identity ? rendered.identity.kubernetes : undefined;
  expect(k?.collector).toEqual({ url: collector.url, caPem });
  expect(rendered.audit.sinks).toEqual([{ collector: { url: collector.url, tokenFile: k!.tokenPath, caPem } }]);
  // Nothing from the operator's namespace is mounted into the agent's pod.
  expect(pod!.spec!.volumes!.map((v) => v.secret?.secretName).filter(Boolean)).toEqual(['orders-db-app']);

  // What the kubelet would mount, at this test's paths.
  const mounts = join(dir, 'mounts');
  mkdirSync(join(mounts, 'token'), { recursive: true });
  mkdirSync(join(mounts, 'routes/orders-db'), { recursive: true });
  const token = await core.createNamespacedServiceAccountToken({
    name: IDENTITY,
    namespace: ns,
    body: {
      spec: {
        audiences: ['byline.dev'],
        expirationSeconds: 600,
        boundObjectRef: { kind: 'Pod', apiVersion: 'v1', name: 'tls-1', uid: pod!.metadata!.uid! },
      },
    },
  });
  writeFileSync(join(mounts, 'token/token'), token.status!.token);
  writeFileSync(join(mounts, 'routes/orders-db/username'), AUTH_USERS.scram);
  writeFileSync(join(mounts, 'routes/orders-db/password'), TEST_PASSWORD);
  const remount = (text: string) =>
    text
      .replaceAll('/var/run/byline/token', join(mounts, 'token'))
      .replaceAll('/var/run/byline/routes', join(mounts, 'routes'))
      .replaceAll('/var/spool/byline', join(dir, 'spool'))
      .replaceAll('0.0.0.0:9187', '127.0.0.1:0');
  const config = validate(
    SidecarConfigSchema,
    JSON.parse(remount(JSON.stringify(rendered))),
    'rendered',
    sidecarConfigRules,
  );

  // The CA is what makes the collector reachable: without it the same URL fails verification.
  const untrusted = await askWhoami({ url: collector.url, token: token.status!.token });
  expect(untrusted.ok).toBe(false);
  const whoami = await askWhoami({ url: collector.url, token: token.status!.token, caPem });
  expect(whoami).toMatchObject({ ok: true, identity: { name: IDENTITY, namespace: ns, pod: 'tls-1' } });

  sidecar = await startSidecar(config, { logger, signal: AbortSignal.timeout(30_000) });
  // The route's role: an injected sidecar takes no other user name (its route names none for the env).
  const client = new pg.Client({ host: '127.0.0.1', port: listenPort, user: AUTH_USERS.scram, database: 'postgres' });
  await client.connect();
  await client.query("select 'through tls' as v");
  await client.end();
  await sidecar.flush();
  for (const s of sidecar.shippers) expect(await s.drain(10_000)).toBe(true);
  const stored = await collector.store.query({ identity: IDENTITY }, 100);
  const statements = stored.events.map((e) => JSON.parse(e.json) as AuditEvent).filter((e) => e.type === 'statement');
  expect(statements.map((e) => [e.statement!.text, e.identity.pod])).toEqual([["select 'through tls' as v", 'tls-1']]);
}, 120_000);

test('a restarted operator keeps the certificate the Secret holds', async () => {
  const before = await core.readNamespacedSecret({ name: SECRET, namespace: operatorNs });
  await operator?.close();
  const webhookPort = await freePort();
  operator = await startOperator({
    kubeconfig: controlPlane().kubeconfigPath,
    namespace: operatorNs,
    webhookListen: `127.0.0.1:${webhookPort}`,
    webhookUrl: `https://127.0.0.1:${webhookPort}`,
    metricsListen: '127.0.0.1:0',
    image: 'ghcr.io/byline-dev/byline:test',
    collectorUrl: `https://127.0.0.1:${collectorPort}`,
    collectorTlsSecret: SECRET,
    leaderElection: false,
    webhookConfigurationName: WEBHOOK_CONFIG,
    webhookNamespaceLabels: { 'byline.dev/injection': 'enabled', ...INJECTION_LABEL },
    logger,
  });
  const after = await core.readNamespacedSecret({ name: SECRET, namespace: operatorNs });
  expect(after.metadata!.resourceVersion).toBe(before.metadata!.resourceVersion);
  expect(after.data).toEqual(before.data);
}, 60_000);
