/**
 * The operator against the real API server: conditions and Events written by the reconcilers, the
 * webhook registered in URL mode and called by the API server over TLS, the caBundle kept equal to
 * the Secret's CA, a watch that relists after a real 410, and leader election between two operators
 * in this process.
 *
 * Other kube test files may run an operator at the same time: this file's webhook configurations have
 * names of their own and select only namespaces carrying this file's extra label.
 */
import { randomBytes } from 'node:crypto';
import {
  httpTransport,
  KubeClient,
  type KubeObject,
  type RunningOperator,
  startOperator,
  WatchCache,
} from '@byline/operator';
import { KubeConfig } from '@kubernetes/client-node';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../harness/net.js';
import { applyCrds } from './apply-crds.js';
import { controlPlane } from './control-plane.js';
import { kubeRest, type Rest, statusMessage } from './rest.js';

const logger = pino({ level: process.env.BYLINE_TEST_LOG ?? 'silent' });
const suffix = randomBytes(3).toString('hex');
const operatorNs = `byline-op-${suffix}`;
const appNs = `op-app-${suffix}`;
const plainNs = `op-plain-${suffix}`;
const testLabel = { 'byline.dev/injection': 'enabled', 'byline.dev/operator-test': suffix };
const webhookConfig = `byline-pod-injector-optest-${suffix}`;
const API = '/apis/byline.dev/v1alpha1';

let rest: Rest;
let kubeconfigPath: string;
let operator: RunningOperator;

interface Condition {
  type: string;
  status: string;
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}
interface Custom {
  metadata: { name: string; generation?: number; uid?: string };
  status?: { observedGeneration?: number; conditions?: Condition[] };
}

async function ok(method: string, path: string, body?: unknown): Promise<unknown> {
  const res = await rest(method, path, body === undefined ? {} : { body });
  if (res.status < 200 || res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${statusMessage(res)}`);
  return res.body;
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

/** The Ready condition once it has `reason`. */
function readyWith(
  plural: string,
  ns: string,
  name: string,
  reason: string,
): Promise<{ object: Custom; ready: Condition }> {
  let seen = '';
  return waitFor(`${plural} ${ns}/${name} Ready reason ${reason} (last: ${seen})`, async () => {
    const object = (await ok('GET', `${API}/namespaces/${ns}/${plural}/${name}`)) as Custom;
    const ready = object.status?.conditions?.find((c) => c.type === 'Ready');
    seen = JSON.stringify(ready);
    return ready?.reason === reason ? { object, ready } : undefined;
  });
}

interface Container {
  name: string;
  restartPolicy?: string;
  env?: Array<{ name: string; value: string }>;
}
interface Webhook {
  clientConfig: { url?: string; caBundle?: string };
  [field: string]: unknown;
}

interface KubeEvent {
  reason: string;
  note: string;
  type: string;
  reportingController: string;
  reportingInstance: string;
  regarding: { kind: string; name: string };
}

async function eventsFor(ns: string, kind: string, name: string): Promise<KubeEvent[]> {
  const list = (await ok('GET', `/apis/events.k8s.io/v1/namespaces/${ns}/events`)) as { items: KubeEvent[] };
  return list.items.filter((e) => e.regarding.kind === kind && e.regarding.name === name);
}

function route(name: string, secret: string, listenPort: number) {
  return {
    apiVersion: 'byline.dev/v1alpha1',
    kind: 'DatabaseRoute',
    metadata: { name },
    spec: {
      upstream: { host: 'orders.db.example.com', port: 5432, database: 'orders', sslMode: 'require' },
      credentials: { secretRef: { name: secret } },
      listenPort,
      env: { host: 'PGHOST', port: 'PGPORT', url: 'DATABASE_URL' },
    },
  };
}

function identity(name: string, serviceAccounts: string[], routes: string[]) {
  return {
    apiVersion: 'byline.dev/v1alpha1',
    kind: 'AgentIdentity',
    metadata: { name },
    spec: {
      kind: 'agent',
      owner: 'team@example.com',
      serviceAccounts,
      routes: routes.map((r) => ({ name: r, access: 'readWrite' })),
      parameters: 'redacted',
    },
  };
}

const secret = (name: string, data: Record<string, string>) => ({
  apiVersion: 'v1',
  kind: 'Secret',
  metadata: { name },
  stringData: data,
});

async function metricValue(url: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) sum += Number(line.split(' ').at(-1));
  }
  return sum;
}

beforeAll(async () => {
  const plane = controlPlane();
  rest = kubeRest(plane);
  kubeconfigPath = plane.kubeconfigPath;
  await applyCrds(rest);
  await ok('POST', '/api/v1/namespaces', { metadata: { name: operatorNs } });
  await ok('POST', '/api/v1/namespaces', { metadata: { name: appNs, labels: testLabel } });
  await ok('POST', '/api/v1/namespaces', { metadata: { name: plainNs } });
  const port = await freePort();
  operator = await startOperator({
    kubeconfig: kubeconfigPath,
    namespace: operatorNs,
    webhookListen: `127.0.0.1:${port}`,
    webhookUrl: `https://127.0.0.1:${port}`,
    webhookConfigurationName: webhookConfig,
    webhookNamespaceLabels: testLabel,
    metricsListen: '127.0.0.1:0',
    image: 'ghcr.io/byline-dev/byline:operator-test',
    collectorUrl: 'http://collector.byline.svc:8080',
    logger,
  });
  await operator.synced();
  await waitFor('leadership', async () => (operator.isLeader() ? true : undefined));
}, 120_000);

afterAll(async () => {
  await operator?.close();
  await rest?.('DELETE', `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${webhookConfig}`);
});

describe('the operator on the real API server', () => {
  it('reports /readyz and /healthz on the metrics port once the caches are synced', async () => {
    expect((await fetch(`${operator.metricsUrl}/healthz`)).status).toBe(200);
    expect((await fetch(`${operator.metricsUrl}/readyz`)).status).toBe(200);
    expect(await metricValue(operator.metricsUrl, 'byline_operator_leader')).toBe(1);
  });

  it('DatabaseRoute: SecretNotFound, then SecretKeyMissing, then Ready once the Secret is complete; Events on each change', async () => {
    await ok('POST', `${API}/namespaces/${appNs}/databaseroutes`, route('orders-db', 'orders-db-app', 15432));
    const missing = await readyWith('databaseroutes', appNs, 'orders-db', 'SecretNotFound');
    expect(missing.ready.status).toBe('False');
    expect(missing.ready.message).toContain('"orders-db-app"');
    expect(missing.ready.observedGeneration).toBe(missing.object.metadata.generation);
    expect(missing.object.status?.observedGeneration).toBe(missing.object.metadata.generation);

    await ok('POST', `/api/v1/namespaces/${appNs}/secrets`, secret('orders-db-app', { username: 'app_user' }));
    const keyMissing = await readyWith('databaseroutes', appNs, 'orders-db', 'SecretKeyMissing');
    expect(keyMissing.ready.status).toBe('False');
    expect(keyMissing.ready.message).toContain('"password"');
    // Still False: the transition time stays that of the first False.
    expect(keyMissing.ready.lastTransitionTime).toBe(missing.ready.lastTransitionTime);

    await ok('PUT', `/api/v1/namespaces/${appNs}/secrets/orders-db-app`, {
      ...secret('orders-db-app', { username: 'app_user', password: 'pw' }),
    });
    const valid = await readyWith('databaseroutes', appNs, 'orders-db', 'Valid');
    expect(valid.ready.status).toBe('True');

    // Another test file's operator may be reconciling this namespace too (each event then comes from
    // whichever wrote the change first): one event per change, from some byline operator.
    const events = await waitFor('three events', async () => {
      const e = await eventsFor(appNs, 'DatabaseRoute', 'orders-db');
      return e.length >= 3 ? e : undefined;
    });
    expect(events.map((e) => `${e.type}/${e.reason}`).sort()).toEqual(
      ['Normal/Valid', 'Warning/SecretKeyMissing', 'Warning/SecretNotFound'].sort(),
    );
    expect(events.every((e) => e.reportingController === 'byline.dev/operator')).toBe(true);
    expect(events.find((e) => e.reason === 'SecretKeyMissing')?.note).toContain('"password"');

    // A steady state writes nothing: no new resourceVersion, no new event.
    const before = (await ok('GET', `${API}/namespaces/${appNs}/databaseroutes/orders-db`)) as {
      metadata: { resourceVersion: string };
    };
    await new Promise((r) => setTimeout(r, 1500));
    const after = (await ok('GET', `${API}/namespaces/${appNs}/databaseroutes/orders-db`)) as {
      metadata: { resourceVersion: string };
    };
    expect(after.metadata.resourceVersion).toBe(before.metadata.resourceVersion);
    expect(await eventsFor(appNs, 'DatabaseRoute', 'orders-db')).toHaveLength(3);
  });

  it('AgentIdentity: RouteNotFound names the route, Valid once it exists', async () => {
    await ok('POST', `/api/v1/namespaces/${appNs}/serviceaccounts`, { metadata: { name: 'reporter' } });
    await ok('POST', `${API}/namespaces/${appNs}/agentidentities`, identity('reporter', ['reporter'], ['reports-db']));
    const notFound = await readyWith('agentidentities', appNs, 'reporter', 'RouteNotFound');
    expect(notFound.ready.status).toBe('False');
    expect(notFound.ready.message).toContain('"reports-db"');

    await ok('POST', `/api/v1/namespaces/${appNs}/secrets`, secret('reports-db-app', { username: 'u', password: 'p' }));
    await ok('POST', `${API}/namespaces/${appNs}/databaseroutes`, route('reports-db', 'reports-db-app', 15433));
    const valid = await readyWith('agentidentities', appNs, 'reporter', 'Valid');
    expect(valid.ready.status).toBe('True');
    // Events are recorded after the status is written: wait for the second one.
    const reasons = await waitFor('the Valid event', async () => {
      const events = await eventsFor(appNs, 'AgentIdentity', 'reporter');
      return events.some((e) => e.reason === 'Valid') ? events.map((e) => e.reason) : undefined;
    });
    expect(reasons).toEqual(expect.arrayContaining(['RouteNotFound', 'Valid']));
  });

  it('two identities claiming one service account are both ServiceAccountClaimedTwice, naming each other', async () => {
    await ok('POST', `/api/v1/namespaces/${appNs}/serviceaccounts`, { metadata: { name: 'shared' } });
    await ok('POST', `${API}/namespaces/${appNs}/agentidentities`, identity('first', ['shared'], ['orders-db']));
    await readyWith('agentidentities', appNs, 'first', 'Valid');
    await ok('POST', `${API}/namespaces/${appNs}/agentidentities`, identity('second', ['shared'], ['orders-db']));
    const first = await readyWith('agentidentities', appNs, 'first', 'ServiceAccountClaimedTwice');
    const second = await readyWith('agentidentities', appNs, 'second', 'ServiceAccountClaimedTwice');
    expect(first.ready.status).toBe('False');
    expect(first.ready.message).toContain('"shared"');
    expect(first.ready.message).toContain('"second"');
    expect(second.ready.message).toContain('"first"');

    // Deleting one clears the other.
    await ok('DELETE', `${API}/namespaces/${appNs}/agentidentities/second`);
    await readyWith('agentidentities', appNs, 'first', 'Valid');
  });

  it('registers the webhook with the Secret’s CA as caBundle, and the settings asked for', async () => {
    const tls = (await ok('GET', `/api/v1/namespaces/${operatorNs}/secrets/byline-webhook-tls`)) as {
      type: string;
      data: Record<string, string>;
    };
    expect(tls.type).toBe('kubernetes.io/tls');
    expect(Object.keys(tls.data).sort()).toEqual(['ca.crt', 'ca.key', 'tls.crt', 'tls.key']);
    const config = await waitFor('the MutatingWebhookConfiguration', async () => {
      const res = await rest(
        'GET',
        `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${webhookConfig}`,
      );
      return res.status === 200 ? (res.body as { webhooks: Webhook[] }) : undefined;
    });
    const [hook] = config.webhooks;
    expect(hook?.clientConfig.caBundle).toBe(tls.data['ca.crt']);
    expect(hook?.clientConfig.url).toBe(`${operator.webhookUrl}/mutate-pods`);
    expect(hook).toMatchObject({
      rules: [
        { apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods'] },
        { apiGroups: [''], apiVersions: ['v1'], operations: ['UPDATE'], resources: ['pods/ephemeralcontainers'] },
      ],
      namespaceSelector: { matchLabels: testLabel },
      sideEffects: 'None',
      admissionReviewVersions: ['v1'],
      failurePolicy: 'Fail',
      timeoutSeconds: 10,
      reinvocationPolicy: 'IfNeeded',
    });
  });

  describe('the webhook, called by the API server', () => {
    const pod = (name: string, serviceAccountName: string, annotate = true) => ({
      metadata: { name, ...(annotate ? { annotations: { 'byline.dev/inject': 'true' } } : {}) },
      spec: {
        serviceAccountName,
        containers: [
          { name: 'agent', image: 'example.com/agent:1', env: [{ name: 'PGHOST', value: 'db.example.com' }] },
        ],
      },
    });

    beforeAll(async () => {
      await ok('POST', `/api/v1/namespaces/${appNs}/serviceaccounts`, { metadata: { name: 'billing' } });
      await ok(
        'POST',
        `${API}/namespaces/${appNs}/agentidentities`,
        identity('billing-reconciler', ['billing'], ['orders-db']),
      );
      await readyWith('agentidentities', appNs, 'billing-reconciler', 'Valid');
    });

    it('injects the sidecar into a pod of a labelled namespace that asks for it', async () => {
      const before = await metricValue(operator.metricsUrl, 'byline_operator_admissions_total');
      const stored = (await ok('POST', `/api/v1/namespaces/${appNs}/pods`, pod('billing-1', 'billing'))) as {
        metadata: { annotations: Record<string, string> };
        spec: { initContainers?: Container[]; containers: Container[] };
      };
      const sidecar = stored.spec.initContainers?.find((c) => c.name === 'byline-proxy');
      expect(sidecar?.restartPolicy).toBe('Always');
      const configEnv = (sidecar?.env ?? []).find((e) => e.name === 'BYLINE_SIDECAR_CONFIG');
      const config = JSON.parse(configEnv?.value ?? '{}');
      expect(config.identity.kubernetes.tokenPath).toBe('/var/run/byline/token/token');
      expect(config.routes[0].name).toBe('orders-db');
      const env = Object.fromEntries((stored.spec.containers[0]?.env ?? []).map((e) => [e.name, e.value]));
      expect(env.PGHOST).toBe('127.0.0.1');
      expect(env.PGPORT).toBe('15432');
      expect(JSON.parse(stored.metadata.annotations['byline.dev/injected'] ?? '{}')).toMatchObject({
        identity: 'billing-reconciler',
        routes: ['orders-db'],
      });
      // Our webhook answered (over TLS, trusting the caBundle), whatever other operators did too.
      expect(await metricValue(operator.metricsUrl, 'byline_operator_admissions_total')).toBeGreaterThan(before);
    });

    it('refuses a pod whose service account no identity claims, naming it', async () => {
      const res = await rest('POST', `/api/v1/namespaces/${appNs}/pods`, { body: pod('stranger-1', 'stranger') });
      expect(res.status).toBe(403);
      expect(statusMessage(res)).toMatch(/stranger/);
      expect(
        await metricValue(operator.metricsUrl, 'byline_operator_admissions_total', { outcome: 'refused' }),
      ).toBeGreaterThan(0);
    });

    it('leaves pods of an unlabelled namespace alone', async () => {
      const stored = (await ok('POST', `/api/v1/namespaces/${plainNs}/pods`, pod('plain-1', 'billing'))) as {
        spec: { initContainers?: unknown[] };
        metadata: { annotations?: Record<string, string> };
      };
      expect(stored.spec.initContainers ?? []).toEqual([]);
      expect(stored.metadata.annotations?.['byline.dev/injected']).toBeUndefined();
    });
  });

  it('a watch that starts from a compacted resourceVersion relists on the real 410 and ends up correct', async () => {
    const kc = new KubeConfig();
    kc.loadFromFile(kubeconfigPath);
    const client = new KubeClient(kc);
    // A custom resource: its watch cache starts at the CRD's creation, so resourceVersion 1 is too old for it.
    const real = httpTransport<KubeObject>(client, `${API}/namespaces/${appNs}/databaseroutes`);
    let lists = 0;
    const relists: string[] = [];
    const changes: string[] = [];
    const cache = new WatchCache<KubeObject>({
      name: 'databaseroutes',
      transport: {
        // The first list is made stale on purpose: resourceVersion 1 is long gone, a route that exists is
        // missing and one that does not exist is present. Only a relist after the API server's 410 fixes that.
        async list() {
          const result = await real.list();
          if (lists++ > 0) return result;
          const phantom = { metadata: { name: 'phantom', namespace: appNs, resourceVersion: '1' } };
          return {
            items: [...result.items.filter((s) => s.metadata.name !== 'orders-db'), phantom],
            resourceVersion: '1',
          };
        },
        watch: (rv, timeout, onEvent, onClose) => real.watch(rv, timeout, onEvent, onClose),
      },
      onRelist: (cause) => relists.push(cause),
    });
    cache.onChange((c) => changes.push(`${c.type}:${c.object.metadata.name}`));
    try {
      cache.start();
      await cache.synced();
      expect(cache.get(appNs, 'phantom')).toBeDefined();
      await waitFor('the relist', async () => (relists.length > 0 && cache.state === 'watching' ? true : undefined));
      expect(relists).toEqual(['gone']);
      expect(lists).toBe(2);
      expect(cache.get(appNs, 'phantom')).toBeUndefined();
      expect(cache.get(appNs, 'orders-db')).toBeDefined();
      expect(changes).toEqual(expect.arrayContaining(['deleted:phantom', 'added:orders-db']));
      // And the watch after the relist sees new objects.
      await ok('POST', `${API}/namespaces/${appNs}/databaseroutes`, route('after-relist', 'nothing', 15500));
      await waitFor('the new route in the cache', async () => cache.get(appNs, 'after-relist'));
    } finally {
      cache.stop();
      client.close();
    }
  });

  it('a watch the server ends (timeoutSeconds) resumes from its resourceVersion without a relist', async () => {
    const kc = new KubeConfig();
    kc.loadFromFile(kubeconfigPath);
    const client = new KubeClient(kc);
    const restarts: string[] = [];
    const relists: string[] = [];
    const cache = new WatchCache<KubeObject>({
      name: 'serviceaccounts',
      transport: httpTransport(client, `/api/v1/namespaces/${appNs}/serviceaccounts`),
      timeoutSeconds: 1,
      onRestart: (c) => restarts.push(c),
      onRelist: (c) => relists.push(c),
    });
    try {
      cache.start();
      await cache.synced();
      await waitFor('a server-side close', async () => (restarts.includes('closed') ? true : undefined), 10_000);
      await ok('POST', `/api/v1/namespaces/${appNs}/serviceaccounts`, { metadata: { name: 'late' } });
      await waitFor('the new ServiceAccount in the cache', async () => cache.get(appNs, 'late'));
      expect(relists).toEqual([]);
    } finally {
      cache.stop();
      client.close();
    }
  });
});

describe('leader election between two operators', () => {
  const leNs = `byline-le-${suffix}`;
  const leApp = `le-app-${suffix}`;
  const leConfig = `byline-pod-injector-letest-${suffix}`;
  const replicas: RunningOperator[] = [];

  const start = async (name: string) => {
    const port = await freePort();
    const r = await startOperator({
      kubeconfig: kubeconfigPath,
      namespace: leNs,
      identity: name,
      webhookListen: `127.0.0.1:${port}`,
      webhookUrl: `https://127.0.0.1:${port}`,
      webhookConfigurationName: leConfig,
      webhookNamespaceLabels: { 'byline.dev/operator-test': `le-${suffix}` },
      metricsListen: '127.0.0.1:0',
      image: 'ghcr.io/byline-dev/byline:operator-test',
      collectorUrl: 'http://collector.byline.svc:8080',
      logger,
    });
    replicas.push(r);
    return r;
  };

  beforeAll(async () => {
    // Only these two replicas reconcile from now on; a configuration pointing at a stopped webhook
    // would refuse pods (failurePolicy Fail), so it goes too.
    await operator.close();
    await rest('DELETE', `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${webhookConfig}`);
    await ok('POST', '/api/v1/namespaces', { metadata: { name: leNs } });
    await ok('POST', '/api/v1/namespaces', { metadata: { name: leApp } });
  });

  afterAll(async () => {
    for (const r of replicas) await r.close();
    await rest('DELETE', `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${leConfig}`);
  });

  it('only the leader writes status; when it dies the other takes over within the lease duration', async () => {
    const a = await start(`replica-a-${suffix}`);
    await a.synced();
    await waitFor('replica a to lead', async () => (a.isLeader() ? true : undefined));
    const b = await start(`replica-b-${suffix}`);
    await b.synced();
    await new Promise((r) => setTimeout(r, 2500)); // b has tried at least once
    expect(a.isLeader()).toBe(true);
    expect(b.isLeader()).toBe(false);
    const lease = (await ok('GET', `/apis/coordination.k8s.io/v1/namespaces/${leNs}/leases/byline-operator`)) as {
      spec: { holderIdentity: string; leaseDurationSeconds: number };
    };
    expect(lease.spec).toMatchObject({ holderIdentity: a.identity, leaseDurationSeconds: 15 });

    await ok('POST', `${API}/namespaces/${leApp}/databaseroutes`, route('le-db', 'le-db-app', 15432));
    await readyWith('databaseroutes', leApp, 'le-db', 'SecretNotFound');
    // Counted by each replica: the follower reconciles nothing and writes nothing. (Whether the leader's
    // write is the one that lands can depend on another test file's operator, so its count is of reconciles.)
    const writes = (r: RunningOperator) => metricValue(r.metricsUrl, 'byline_operator_status_writes_total');
    const reconciles = (r: RunningOperator) => metricValue(r.metricsUrl, 'byline_operator_reconciles_total');
    expect(await reconciles(a)).toBeGreaterThan(0);
    expect(await reconciles(b)).toBe(0);
    expect(await writes(b)).toBe(0);
    expect(await metricValue(b.metricsUrl, 'byline_operator_leader')).toBe(0);

    // The leader dies without releasing the Lease.
    const killedAt = Date.now();
    await a.close({ releaseLease: false });
    await waitFor('replica b to lead', async () => (b.isLeader() ? true : undefined), 25_000);
    const takeover = Date.now() - killedAt;
    // The lease duration, plus a retry period (b's retry lands up to 2 s after the expiry) and slack.
    expect(takeover).toBeLessThan(15_000 + 2 * 2_400);
    expect(takeover).toBeGreaterThan(10_000);

    await ok('POST', `/api/v1/namespaces/${leApp}/secrets`, secret('le-db-app', { username: 'u', password: 'p' }));
    await readyWith('databaseroutes', leApp, 'le-db', 'Valid');
    await waitFor('b to reconcile', async () => ((await reconciles(b)) > 0 ? true : undefined));
    expect(await metricValue(b.metricsUrl, 'byline_operator_leader')).toBe(1);
    // Events follow the status write: wait until the Valid one is there.
    const events = await waitFor('the Valid event', async () => {
      const all = await eventsFor(leApp, 'DatabaseRoute', 'le-db');
      return all.some((e) => e.reason === 'Valid') ? all : undefined;
    });
    expect(events.map((e) => e.reason).sort()).toEqual(['SecretNotFound', 'Valid']);
    expect(events.every((e) => e.reportingInstance !== b.identity || e.reason === 'Valid')).toBe(true);
    // The new leader registered the webhook at its own URL.
    await waitFor('the registration to follow the leader', async () => {
      const res = await rest('GET', `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${leConfig}`);
      const url = (res.body as { webhooks?: Array<{ clientConfig: { url?: string } }> }).webhooks?.[0]?.clientConfig
        .url;
      return url === `${b.webhookUrl}/mutate-pods` ? true : undefined;
    });
  }, 90_000);

  it('a leader that stops cleanly releases the Lease', async () => {
    const b = replicas[1]!;
    await b.close();
    const lease = (await ok('GET', `/apis/coordination.k8s.io/v1/namespaces/${leNs}/leases/byline-operator`)) as {
      spec: { holderIdentity?: string };
    };
    expect(lease.spec.holderIdentity ?? '').toBe('');
    const c = await start(`replica-c-${suffix}`);
    const startedAt = Date.now();
    await c.synced();
    await waitFor('replica c to lead', async () => (c.isLeader() ? true : undefined), 10_000);
    expect(Date.now() - startedAt).toBeLessThan(5_000);
  });
});
