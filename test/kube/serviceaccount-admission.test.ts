/**
 * Injection in a cluster that runs the ServiceAccount admission plugin, as every real cluster does
 * (the shared test control plane turns it off), and a LimitRange. The plugin mounts the pod's API
 * token into every container, init containers included, and LimitRanger fills in default limits;
 * both run again after a webhook changes the pod, so byline-proxy gains a `kube-api-access-*` mount
 * and limits the injector never wrote. The webhook, reinvoked,
 * must still recognise its own output (it failed every such pod before it knew of that mount), and
 * `kubectl debug` must still work. Its own control plane, since the plugin is a flag of the API server.
 */
import { randomBytes } from 'node:crypto';
import { type RunningOperator, startOperator } from '@byline/operator';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlPlane, startControlPlane } from '../harness/kube.js';
import { freePort } from '../harness/net.js';
import { applyCrds } from './apply-crds.js';
import { kubeRest, type Rest, statusMessage } from './rest.js';

const logger = pino({ level: process.env.BYLINE_TEST_LOG ?? 'silent' });
const suffix = randomBytes(3).toString('hex');
const ns = `sa-admission-${suffix}`;
const API = '/apis/byline.dev/v1alpha1';
const TOKEN_PATH = '/var/run/secrets/kubernetes.io/serviceaccount';

interface Container {
  name: string;
  volumeMounts?: { name: string; mountPath: string }[];
  [field: string]: unknown;
}
interface Pod {
  metadata: { name: string; annotations?: Record<string, string>; [field: string]: unknown };
  spec: {
    initContainers?: Container[];
    containers: Container[];
    ephemeralContainers?: Container[];
    volumes?: { name: string }[];
    [field: string]: unknown;
  };
}

let plane: ControlPlane;
let rest: Rest;
let operator: RunningOperator;

async function ok(method: string, path: string, body?: unknown): Promise<unknown> {
  const res = await rest(method, path, body === undefined ? {} : { body });
  if (res.status < 200 || res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${statusMessage(res)}`);
  return res.body;
}

const pod = (name: string): Pod => ({
  metadata: { name, annotations: { 'byline.dev/inject': 'true' } },
  spec: { serviceAccountName: 'billing', containers: [{ name: 'agent', image: 'example.com/agent:1' }] },
});

beforeAll(async () => {
  plane = await startControlPlane({ serviceAccountAdmission: true });
  rest = kubeRest(plane);
  await applyCrds(rest);
  await ok('POST', '/api/v1/namespaces', { metadata: { name: `byline-${suffix}` } });
  await ok('POST', '/api/v1/namespaces', { metadata: { name: ns, labels: { 'byline.dev/injection': 'enabled' } } });
  await ok('POST', `/api/v1/namespaces/${ns}/serviceaccounts`, { metadata: { name: 'billing' } });
  // LimitRanger, another built-in plugin that runs again, fills in the sidecar's limits from this.
  await ok('POST', `/api/v1/namespaces/${ns}/limitranges`, {
    metadata: { name: 'defaults' },
    spec: { limits: [{ type: 'Container', default: { cpu: '500m', memory: '256Mi' } }] },
  });
  await ok('POST', `/api/v1/namespaces/${ns}/secrets`, {
    metadata: { name: 'orders-db-app' },
    stringData: { username: 'u', password: 'p' },
  });
  await ok('POST', `${API}/namespaces/${ns}/databaseroutes`, {
    apiVersion: 'byline.dev/v1alpha1',
    kind: 'DatabaseRoute',
    metadata: { name: 'orders-db' },
    spec: {
      upstream: { host: 'orders.db.example.com', database: 'orders' },
      credentials: { secretRef: { name: 'orders-db-app' } },
      listenPort: 15432,
      env: { host: 'PGHOST' },
    },
  });
  await ok('POST', `${API}/namespaces/${ns}/agentidentities`, {
    apiVersion: 'byline.dev/v1alpha1',
    kind: 'AgentIdentity',
    metadata: { name: 'billing-reconciler' },
    spec: {
      kind: 'agent',
      owner: 'team@example.com',
      serviceAccounts: ['billing'],
      routes: [{ name: 'orders-db', access: 'readWrite' }],
    },
  });
  const port = await freePort();
  operator = await startOperator({
    kubeconfig: plane.kubeconfigPath,
    namespace: `byline-${suffix}`,
    webhookListen: `127.0.0.1:${port}`,
    webhookUrl: `https://127.0.0.1:${port}`,
    metricsListen: '127.0.0.1:0',
    leaderElection: false,
    image: 'ghcr.io/byline-dev/byline:sa-test',
    collectorUrl: 'http://collector.byline.svc:8080',
    logger,
  });
}, 180_000);

afterAll(async () => {
  await operator?.close();
  await plane?.stop();
});

describe('with the ServiceAccount admission plugin', () => {
  let stored: Pod;

  it('injects, although the plugin mounts the API token into byline-proxy and the webhook is reinvoked', async () => {
    const res = await rest('POST', `/api/v1/namespaces/${ns}/pods`, { body: pod('agent-0') });
    expect(res.status, statusMessage(res)).toBe(201);
    stored = res.body as Pod;
    const sidecar = stored.spec.initContainers?.find((c) => c.name === 'byline-proxy');
    expect(sidecar).toBeDefined();
    // The plugins' changes are there (this is what the test is about), next to the sidecar's own.
    expect(sidecar?.volumeMounts?.map((m) => m.mountPath)).toContain(TOKEN_PATH);
    expect(sidecar?.resources).toMatchObject({ limits: { cpu: '500m', memory: '256Mi' } });
    expect(stored.spec.initContainers?.filter((c) => c.name === 'byline-proxy')).toHaveLength(1);
  });

  it('accepts a copy of the stored pod as its own output', async () => {
    const copy = structuredClone(stored);
    copy.metadata = { name: 'agent-copy', annotations: stored.metadata.annotations };
    const res = await rest('POST', `/api/v1/namespaces/${ns}/pods`, { body: copy });
    expect(res.status, statusMessage(res)).toBe(201);
  });

  it('lets kubectl debug add a container aimed at the agent', async () => {
    const current = (await ok('GET', `/api/v1/namespaces/${ns}/pods/agent-0`)) as Pod;
    current.spec.ephemeralContainers = [{ name: 'debug', image: 'busybox', targetContainerName: 'agent' }];
    const res = await rest('PUT', `/api/v1/namespaces/${ns}/pods/agent-0/ephemeralcontainers`, { body: current });
    expect(res.status, statusMessage(res)).toBe(200);
    const debug = (res.body as Pod).spec.ephemeralContainers?.[0];
    expect(debug?.name).toBe('debug');
  });
});
