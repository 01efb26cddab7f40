/**
 * The whole control plane on the real API server: CRDs applied, a labelled namespace with a
 * service account, Secret, DatabaseRoute and AgentIdentity; the operator with its webhook; a pod
 * created through the API comes back injected; the sidecar runs with exactly the configuration the
 * webhook rendered (only the mount paths are where this test puts the files the kubelet would
 * mount), with the token the kubelet would mount (TokenRequest, audience byline.dev, bound to the
 * pod), against a real Postgres and a collector that reviews tokens against the same API server.
 * The trail then names the AgentIdentity, its namespace, service account and pod. The agent's env
 * names the route's role, the only user name its sidecar takes (28000 for any other) unless the pod
 * opts out with byline.dev/accept-any-user.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AuditEvent, type SidecarConfig, SidecarConfigSchema, sidecarConfigRules, validate } from '@byline/api';
import { type RunningCollector, startCollector } from '@byline/collector';
import { startOperator } from '@byline/operator';
import { type RunningSidecar, startSidecar } from '@byline/sidecar';
import { CoreV1Api, CustomObjectsApi, type V1Pod } from '@kubernetes/client-node';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { freePort } from '../harness/net.js';
import { AUTH_USERS, startPostgres, TEST_PASSWORD, type TestPostgres } from '../harness/postgres.js';
import { applyCrds } from './apply-crds.js';
import { controlPlane } from './control-plane.js';
import { kubeRest } from './rest.js';

const logger = pino({ level: process.env.BYLINE_TEST_LOG ?? 'silent' });
const ns = `payments-${randomBytes(3).toString('hex')}`;
const operatorNs = `byline-${randomBytes(3).toString('hex')}`;
const IDENTITY = 'billing-reconciler';
// Its own webhook configuration and namespace label: other test files run operators of their own
// on the same API server, and a configuration left behind would catch their pods.
const suffix = randomBytes(3).toString('hex');
const WEBHOOK_CONFIG = `byline-e2e-${suffix}`;
const INJECTION_LABEL = { 'byline.dev/e2e': suffix };

let core: CoreV1Api;
let custom: CustomObjectsApi;
let rest: ReturnType<typeof kubeRest>;
let db: TestPostgres;
let collector: RunningCollector;
let operator: { close(): Promise<void> };
let sidecar: RunningSidecar | undefined;
let dir: string;
let listenPort: number;
let pod: V1Pod;

async function token(serviceAccount: string, audiences: string[], boundPod?: V1Pod): Promise<string> {
  const res = await core.createNamespacedServiceAccountToken({
    name: serviceAccount,
    namespace: ns,
    body: {
      spec: {
        audiences,
        expirationSeconds: 600,
        ...(boundPod
          ? {
              boundObjectRef: {
                kind: 'Pod',
                apiVersion: 'v1',
                name: boundPod.metadata!.name!,
                uid: boundPod.metadata!.uid!,
              },
            }
          : {}),
      },
    },
  });
  return res.status!.token;
}

beforeAll(async () => {
  const plane = controlPlane();
  core = plane.kubeConfig.makeApiClient(CoreV1Api);
  custom = plane.kubeConfig.makeApiClient(CustomObjectsApi);
  rest = kubeRest(plane);
  await applyCrds(rest);
  dir = mkdtempSync(join(tmpdir(), 'byline-e2e-'));
  db = await startPostgres();
  listenPort = await freePort();

  await core.createNamespace({ body: { metadata: { name: operatorNs } } });
  await core.createNamespace({
    body: { metadata: { name: ns, labels: { 'byline.dev/injection': 'enabled', ...INJECTION_LABEL } } },
  });
  for (const sa of [IDENTITY, 'intruder', 'unclaimed']) {
    await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: sa } } });
  }
  await core.createNamespacedSecret({
    namespace: ns,
    body: { metadata: { name: 'orders-db-app' }, stringData: { username: AUTH_USERS.scram, password: TEST_PASSWORD } },
  });
  await custom.createNamespacedCustomObject({
    group: 'byline.dev',
    version: 'v1alpha1',
    namespace: ns,
    plural: 'databaseroutes',
    body: {
      apiVersion: 'byline.dev/v1alpha1',
      kind: 'DatabaseRoute',
      metadata: { name: 'orders-db' },
      spec: {
        upstream: { host: '127.0.0.1', port: db.port, database: 'postgres', sslMode: 'disable' },
        credentials: { username: AUTH_USERS.scram, secretRef: { name: 'orders-db-app' } },
        listenPort,
        env: { host: 'PGHOST', port: 'PGPORT', url: 'DATABASE_URL', user: 'PGUSER' },
      },
    },
  });
  for (const [name, sa] of [
    [IDENTITY, IDENTITY],
    ['intruder-agent', 'intruder'],
  ] as const) {
    await custom.createNamespacedCustomObject({
      group: 'byline.dev',
      version: 'v1alpha1',
      namespace: ns,
      plural: 'agentidentities',
      body: {
        apiVersion: 'byline.dev/v1alpha1',
        kind: 'AgentIdentity',
        metadata: { name },
        spec: {
          kind: 'agent',
          owner: 'team-payments@example.com',
          serviceAccounts: [sa],
          // admin: the agent creates its own table (DDL).
          routes: [{ name: 'orders-db', access: 'admin' }],
          parameters: 'redacted',
        },
      },
    });
  }

  collector = await startCollector(
    {
      listen: '127.0.0.1:0',
      store: `sqlite:${join(dir, 'trail.db')}`,
      auth: { kubernetes: { kubeconfig: plane.kubeconfigPath } },
    },
    { logger },
  );
  const webhookPort = await freePort();
  operator = await startOperator({
    kubeconfig: plane.kubeconfigPath,
    namespace: operatorNs,
    webhookListen: `127.0.0.1:${webhookPort}`,
    webhookUrl: `https://127.0.0.1:${webhookPort}`,
    metricsListen: '127.0.0.1:0',
    image: 'ghcr.io/byline-dev/byline:test',
    collectorUrl: collector.url,
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

/** Creates a pod through the API, retrying while the webhook's caches catch up. */
async function createPod(
  name: string,
  serviceAccountName: string,
  annotations: Record<string, string> = {},
): Promise<V1Pod> {
  const body: V1Pod = {
    metadata: { name, annotations: { 'byline.dev/inject': 'true', ...annotations } },
    spec: {
      serviceAccountName,
      containers: [
        { name: 'agent', image: 'example.com/billing-agent:1', env: [{ name: 'PGHOST', value: 'db.example.com' }] },
      ],
    },
  };
  return core.createNamespacedPod({ namespace: ns, body });
}

/** The injected sidecar's config as the webhook rendered it, at the paths where this test puts what the kubelet would mount. */
async function sidecarConfigOf(stored: V1Pod, under: string): Promise<SidecarConfig> {
  const proxy = stored.spec!.initContainers!.find((c) => c.name === 'byline-proxy')!;
  const rendered = JSON.parse(proxy.env!.find((e) => e.name === 'BYLINE_SIDECAR_CONFIG')!.value!) as SidecarConfig;
  const mounts = join(dir, under);
  mkdirSync(join(mounts, 'token'), { recursive: true });
  mkdirSync(join(mounts, 'routes/orders-db'), { recursive: true });
  writeFileSync(join(mounts, 'token/token'), await token(IDENTITY, ['byline.dev'], stored));
  // Only the password: the route names its role, so the webhook mounts no username key.
  writeFileSync(join(mounts, 'routes/orders-db/password'), TEST_PASSWORD);
  const remount = (text: string) =>
    text
      .replaceAll('/var/run/byline/token', join(mounts, 'token'))
      .replaceAll('/var/run/byline/routes', join(mounts, 'routes'))
      .replaceAll('/var/spool/byline', join(dir, `${under}-spool`))
      .replaceAll('0.0.0.0:9187', '127.0.0.1:0');
  return validate(
    SidecarConfigSchema,
    JSON.parse(remount(JSON.stringify(rendered))),
    'rendered config',
    sidecarConfigRules,
  );
}

/** What connecting gives: the refusal's SQLSTATE and message, or 'connected'. */
async function refusalOf(client: pg.Client): Promise<'connected' | { code?: string; message: string }> {
  try {
    await client.connect();
    await client.end();
    return 'connected';
  } catch (e) {
    const { code, message } = e as { code?: string; message: string };
    return { code, message };
  }
}

describe('end to end on the real API server', () => {
  test('a pod is injected; its sidecar, run with the rendered config and the projected token, attributes every statement', async () => {
    let last: unknown;
    for (let i = 0; i < 50; i++) {
      try {
        pod = await createPod('billing-1', IDENTITY);
        break;
      } catch (e) {
        last = e;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    expect(pod, `pod creation kept failing: ${String(last)}`).toBeDefined();
    const stored = await core.readNamespacedPod({ name: 'billing-1', namespace: ns });
    const proxy = stored.spec!.initContainers!.find((c) => c.name === 'byline-proxy')!;
    expect(proxy.restartPolicy).toBe('Always');
    const app = stored.spec!.containers.find((c) => c.name === 'agent')!;
    expect(app.env).toEqual(
      expect.arrayContaining([
        { name: 'PGHOST', value: '127.0.0.1' },
        { name: 'PGPORT', value: String(listenPort) },
        { name: 'PGUSER', value: AUTH_USERS.scram },
        {
          name: 'DATABASE_URL',
          value: `postgres://${AUTH_USERS.scram}@127.0.0.1:${listenPort}/postgres?sslmode=disable`,
        },
      ]),
    );
    expect(app.volumeMounts ?? []).toEqual([]);
    expect(JSON.parse(stored.metadata!.annotations!['byline.dev/injected']!)).toMatchObject({ identity: IDENTITY });

    // What the kubelet would mount: the projected token and the route's Secret, at paths of this test.
    const config = await sidecarConfigOf(stored, 'mounts');
    expect(config.routes[0]!.listen).toBe(`127.0.0.1:${listenPort}`);
    sidecar = await startSidecar(config, { logger });

    // The agent connects with the URL its env was given; another user name is refused before Postgres.
    const url = app.env!.find((e) => e.name === 'DATABASE_URL')!.value!;
    expect(await refusalOf(new pg.Client({ connectionString: url.replace(AUTH_USERS.scram, 'postgres') }))).toEqual({
      code: '28000',
      message: `byline: route "orders-db" logs in as user "${AUTH_USERS.scram}", not "postgres": connect as "${AUTH_USERS.scram}"`,
    });
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    await client.query('create table if not exists customers (id int, email text)');
    await client.query('insert into customers values ($1, $2)', [1, 'a@example.com']);
    await client.end();
    await sidecar.flush();
    for (const s of sidecar.shippers) expect(await s.drain(10_000)).toBe(true);

    const events = await collector.store.query({ identity: IDENTITY }, 100);
    const statements = events.events.map((e) => JSON.parse(e.json) as AuditEvent).filter((e) => e.type === 'statement');
    expect(statements.map((e) => e.statement!.text)).toEqual([
      'create table if not exists customers (id int, email text)',
      'insert into customers values ($1, $2)',
    ]);
    for (const e of statements) {
      expect(e.identity).toEqual({
        kind: 'agent',
        name: IDENTITY,
        namespace: ns,
        pod: 'billing-1',
        serviceAccount: IDENTITY,
        source: 'kubernetes',
      });
    }
  });

  test("another service account's token cannot write this identity's events; a default-audience token is refused", async () => {
    const events = await collector.store.query({ identity: IDENTITY }, 1);
    const line = events.events[0]!.json;
    const post = async (bearer: string) =>
      fetch(`${collector.url}/v1/events`, {
        method: 'POST',
        headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/x-ndjson' },
        body: `${line}\n`,
      });
    const intruder = await post(await token('intruder', ['byline.dev']));
    expect(intruder.status).toBe(403);
    const defaultAudience = await post(await token(IDENTITY, []));
    expect(defaultAudience.status).toBe(401);
  });

  test('a pod that opts out with byline.dev/accept-any-user: "true" gets a sidecar that takes any user name, and still logs in as the role', async () => {
    const optedOut = await createPod('billing-2', IDENTITY, { 'byline.dev/accept-any-user': 'true' });
    const config = await sidecarConfigOf(optedOut, 'mounts-2');
    expect(config.routes[0]!.credentials).toMatchObject({ username: AUTH_USERS.scram, acceptAnyUser: true });
    await sidecar?.close();
    sidecar = await startSidecar(config, { logger });
    const client = new pg.Client({
      connectionString: `postgres://baked-in-name@127.0.0.1:${listenPort}/postgres?sslmode=disable`,
    });
    await client.connect();
    expect((await client.query('select current_user as u')).rows).toEqual([{ u: AUTH_USERS.scram }]);
    await client.end();
  });

  test('a pod asking for injection without an AgentIdentity for its service account is refused', async () => {
    const refused = await createPod('unclaimed-1', 'unclaimed').then(
      () => null,
      (e: Error) => e,
    );
    // The API server's Status message, as the client reports it (quotes may arrive escaped).
    const message = (refused?.message ?? '').replaceAll('\\"', '"');
    expect(message).toMatch(/byline: .*no AgentIdentity.*unclaimed/);
  });
});
