/**
 * The agent container never gets the sidecar's secrets, tried the way a hostile pod author would,
 * against the real API server calling the operator's webhook: route Secrets through env, envFrom,
 * renamed and projected volumes; a byline.dev token of its own; mounts of the sidecar's volumes; a
 * forged byline-proxy or byline.dev/injected annotation; the `required` namespace policy; ephemeral
 * containers (pods/ephemeralcontainers); exec and attach into byline-proxy (the chart's
 * ValidatingAdmissionPolicy); the durable spool. Each refusal is asserted by its message and by the
 * reason label of byline_operator_admissions_total.
 *
 * Its own webhook configuration and namespace label, since other test files run operators on the
 * same API server.
 */
import { randomBytes } from 'node:crypto';
import { type RunningOperator, startOperator } from '@byline/operator';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildHelm, findHelm } from '../chart/helm.js';
import { render } from '../chart/render.js';
import { freePort } from '../harness/net.js';
import { applyCrds } from './apply-crds.js';
import { controlPlane } from './control-plane.js';
import { kubeRest, type Rest, statusMessage } from './rest.js';

const logger = pino({ level: process.env.BYLINE_TEST_LOG ?? 'silent' });
const suffix = randomBytes(3).toString('hex');
const operatorNs = `byline-guard-${suffix}`;
const enabledNs = `guard-enabled-${suffix}`;
const requiredNs = `guard-required-${suffix}`;
const selector = { 'byline.dev/guard-test': suffix };
const webhookConfig = `byline-pod-injector-guard-${suffix}`;
const API = '/apis/byline.dev/v1alpha1';
const SECRET = 'orders-db-app';

let rest: Rest;
let operator: RunningOperator;

interface Container {
  name: string;
  command?: string[];
  volumeMounts?: { name: string; mountPath: string }[];
  [field: string]: unknown;
}
interface Pod {
  metadata: { name: string; annotations?: Record<string, string>; [field: string]: unknown };
  spec: {
    initContainers?: Container[];
    containers: Container[];
    ephemeralContainers?: Container[];
    volumes?: { name: string; [field: string]: unknown }[];
    [field: string]: unknown;
  };
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

async function refusals(reason: string): Promise<number> {
  const text = await (await fetch(`${operator.metricsUrl}/metrics`)).text();
  const line = text
    .split('\n')
    .find(
      (l) =>
        l.startsWith('byline_operator_admissions_total{') &&
        l.includes('outcome="refused"') &&
        l.includes(`reason="${reason}"`),
    );
  return line ? Number(line.split(' ').at(-1)) : 0;
}

const agent = (extra: Partial<Container> = {}): Container => ({
  name: 'agent',
  image: 'example.com/agent:1',
  ...extra,
});

function pod(name: string, spec: Partial<Pod['spec']> = {}, annotations: Record<string, string> | null = {}): Pod {
  return {
    metadata: {
      name,
      ...(annotations === null ? {} : { annotations: { 'byline.dev/inject': 'true', ...annotations } }),
    },
    spec: { serviceAccountName: 'billing', containers: [agent()], ...spec },
  };
}

/** Creates the pod and expects the webhook's refusal, by message and by reason. */
async function expectRefused(ns: string, body: Pod, reason: string, message: RegExp): Promise<void> {
  const before = await refusals(reason);
  const res = await rest('POST', `/api/v1/namespaces/${ns}/pods`, { body });
  expect(res.status, statusMessage(res)).toBe(403);
  expect(statusMessage(res)).toMatch(/admission webhook "pods\.byline\.dev" denied the request: byline: /);
  expect(statusMessage(res)).toMatch(message);
  expect(await refusals(reason)).toBe(before + 1);
  expect((await rest('GET', `/api/v1/namespaces/${ns}/pods/${body.metadata.name}`)).status).toBe(404);
}

async function create(ns: string, body: Pod): Promise<Pod> {
  return (await ok('POST', `/api/v1/namespaces/${ns}/pods`, body)) as Pod;
}

beforeAll(async () => {
  const plane = controlPlane();
  rest = kubeRest(plane);
  await applyCrds(rest);
  await ok('POST', '/api/v1/namespaces', { metadata: { name: operatorNs } });
  for (const [ns, policy] of [
    [enabledNs, 'enabled'],
    [requiredNs, 'required'],
  ] as const) {
    await ok('POST', '/api/v1/namespaces', {
      metadata: { name: ns, labels: { ...selector, 'byline.dev/injection': policy } },
    });
    await ok('POST', `/api/v1/namespaces/${ns}/serviceaccounts`, { metadata: { name: 'billing' } });
    await ok('POST', `/api/v1/namespaces/${ns}/secrets`, {
      metadata: { name: SECRET },
      stringData: { username: 'app_user', password: 'pw' },
    });
    await ok('POST', `${API}/namespaces/${ns}/databaseroutes`, {
      apiVersion: 'byline.dev/v1alpha1',
      kind: 'DatabaseRoute',
      metadata: { name: 'orders-db' },
      spec: {
        upstream: { host: 'orders.db.example.com', port: 5432, database: 'orders', sslMode: 'require' },
        credentials: { secretRef: { name: SECRET } },
        listenPort: 15432,
        env: { host: 'PGHOST', port: 'PGPORT', url: 'DATABASE_URL' },
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
  }
  const port = await freePort();
  operator = await startOperator({
    kubeconfig: plane.kubeconfigPath,
    namespace: operatorNs,
    webhookListen: `127.0.0.1:${port}`,
    webhookUrl: `https://127.0.0.1:${port}`,
    webhookConfigurationName: webhookConfig,
    webhookNamespaceLabels: selector,
    metricsListen: '127.0.0.1:0',
    leaderElection: false,
    image: 'ghcr.io/byline-dev/byline:guard-test',
    collectorUrl: 'http://collector.byline.svc:8080',
    logger,
  });
  // Both namespaces and their identities are in the operator's caches once a probe pod is injected.
  for (const ns of [enabledNs, requiredNs]) {
    await waitFor(`injection in ${ns}`, async () => {
      const res = await rest('POST', `/api/v1/namespaces/${ns}/pods?dryRun=All`, { body: pod('probe') });
      const stored = res.body as Pod;
      return res.status === 201 && stored.spec.initContainers?.[0]?.name === 'byline-proxy' ? true : undefined;
    });
  }
}, 120_000);

afterAll(async () => {
  await operator?.close();
  await rest?.('DELETE', `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${webhookConfig}`);
});

describe('the route Secret, the byline token and the sidecar volumes stay with byline-proxy', () => {
  const secretKeyRef = { secretKeyRef: { name: SECRET, key: 'password' } };
  it.each([
    [
      'env valueFrom.secretKeyRef of the route Secret',
      pod('env-ref', { containers: [agent({ env: [{ name: 'PGPASSWORD', valueFrom: secretKeyRef }] })] }),
      'RouteSecretExposed',
      /container "agent" reads PGPASSWORD from the Secret "orders-db-app" of DatabaseRoute "orders-db"/,
    ],
    [
      'envFrom.secretRef in an init container',
      pod('env-from', {
        initContainers: [{ name: 'setup', image: 'example.com/setup:1', envFrom: [{ secretRef: { name: SECRET } }] }],
      }),
      'RouteSecretExposed',
      /init container "setup" takes its environment from the Secret "orders-db-app"/,
    ],
    [
      'the route Secret as a secret volume under a name of its own',
      pod('secret-volume', {
        volumes: [{ name: 'creds', secret: { secretName: SECRET } }],
        containers: [agent({ volumeMounts: [{ name: 'creds', mountPath: '/creds' }] })],
      }),
      'RouteSecretExposed',
      /volume "creds" holds the Secret "orders-db-app" of DatabaseRoute "orders-db"/,
    ],
    [
      'the route Secret as one source of a projected volume',
      pod('projected', {
        volumes: [{ name: 'bundle', projected: { sources: [{ secret: { name: SECRET } }] } }],
        containers: [agent({ volumeMounts: [{ name: 'bundle', mountPath: '/b' }] })],
      }),
      'RouteSecretExposed',
      /volume "bundle" holds the Secret "orders-db-app"/,
    ],
    [
      'a projected token for the byline.dev audience',
      pod('own-token', {
        volumes: [
          { name: 'tok', projected: { sources: [{ serviceAccountToken: { audience: 'byline.dev', path: 'token' } }] } },
        ],
        containers: [agent({ volumeMounts: [{ name: 'tok', mountPath: '/tok' }] })],
      }),
      'BylineTokenExposed',
      /volume "tok" holds a service-account token for the audience "byline\.dev"/,
    ],
    [
      // Without the webhook the API server would refuse the undeclared volume; with injection it would exist.
      'a mount of byline-route-orders-db the pod does not declare',
      pod('undeclared-mount', {
        containers: [agent({ volumeMounts: [{ name: 'byline-route-orders-db', mountPath: '/creds' }] })],
      }),
      'SidecarVolumeMounted',
      /container "agent" mounts volume "byline-route-orders-db", which only the byline-proxy container may mount/,
    ],
    [
      'a volume of its own named like the spool',
      pod('reserved-name', { volumes: [{ name: 'byline-spool', emptyDir: {} }] }),
      'ReservedVolumeName',
      /volume "byline-spool": names starting with "byline-" are reserved/,
    ],
    [
      'the route Secret in a pod that does not ask for injection',
      pod('not-asking', { containers: [agent({ env: [{ name: 'PW', valueFrom: secretKeyRef }] })] }, null),
      'RouteSecretExposed',
      /reads PW from the Secret "orders-db-app"/,
    ],
    [
      'a hostPath volume (the kubelet keeps Secret volumes on the node)',
      pod('host-path', { volumes: [{ name: 'node', hostPath: { path: '/var/lib/kubelet' } }] }),
      'HostPathVolume',
      /volume "node" is a hostPath/,
    ],
  ])('refuses %s', async (_, body, reason, message) => {
    await expectRefused(enabledNs, body, reason, message);
  });
});

describe('only the webhook’s own output counts as injected', () => {
  const injectedAnnotation = '{"identity":"billing-reconciler","routes":["orders-db"],"version":1}';

  it('refuses a pre-set byline.dev/injected annotation', async () => {
    await expectRefused(
      enabledNs,
      pod('preset-annotation', {}, { 'byline.dev/injected': injectedAnnotation }),
      'ForgedInjection',
      /carries the annotation byline\.dev\/injected, but it must have exactly one byline-proxy/,
    );
  });

  it('refuses a byline-proxy container of its own, with or without asking for injection', async () => {
    const own = { name: 'byline-proxy', image: 'example.com/fake:1', restartPolicy: 'Always' };
    await expectRefused(
      enabledNs,
      pod('own-proxy', { initContainers: [own] }),
      'ForgedInjection',
      /a container named byline-proxy/,
    );
    await expectRefused(
      enabledNs,
      pod('own-proxy-plain', { containers: [agent(), { name: 'byline-proxy', image: 'x' }] }, null),
      'ForgedInjection',
      /a container named byline-proxy but is not being injected/,
    );
  });

  it('accepts a copy of an injected pod as stored (defaults and all), and refuses it with a changed sidecar', async () => {
    const stored = await create(enabledNs, pod('original'));
    expect(stored.spec.initContainers?.map((c) => c.name)).toEqual(['byline-proxy']);
    // What `kubectl get -o yaml | kubectl create` would send: the API server's defaults included.
    const copy = structuredClone(stored);
    copy.metadata = { name: 'copy', annotations: stored.metadata.annotations };
    delete copy.spec.nodeName;
    const again = await create(enabledNs, copy);
    expect(again.spec.initContainers?.map((c) => c.name)).toEqual(['byline-proxy']);
    expect(again.spec.volumes?.filter((v) => v.name === 'byline-spool')).toHaveLength(1);

    const tampered = structuredClone(copy);
    tampered.metadata.name = 'tampered';
    tampered.spec.initContainers![0]!.command = ['sh', '-c', 'cat /var/run/byline/routes/orders-db/password'];
    await expectRefused(
      enabledNs,
      tampered,
      'ForgedInjection',
      /differs from the one this webhook injects at byline-proxy\.command/,
    );
  });
});

describe('namespace policy byline.dev/injection=required', () => {
  it('injects a pod of a claimed service account that does not ask', async () => {
    const stored = await create(requiredNs, pod('unasked', {}, null));
    expect(stored.spec.initContainers?.[0]?.name).toBe('byline-proxy');
    expect(stored.metadata.annotations?.['byline.dev/injected']).toContain('billing-reconciler');
    const env = Object.fromEntries(
      ((stored.spec.containers[0]?.env ?? []) as { name: string; value: string }[]).map((e) => [e.name, e.value]),
    );
    expect(env.PGHOST).toBe('127.0.0.1');
  });

  it('refuses a claimed pod that opts out', async () => {
    await expectRefused(
      requiredNs,
      pod('opt-out', {}, { 'byline.dev/inject': 'false' }),
      'InjectionRequired',
      /labelled byline\.dev\/injection=required .* remove the annotation byline\.dev\/inject: "false"/,
    );
  });

  it('leaves a pod of an unclaimed service account alone, unless it reads a route Secret', async () => {
    const stored = await create(requiredNs, {
      ...pod('batch', {}, null),
      spec: { serviceAccountName: 'batch', containers: [agent()] },
    });
    expect(stored.spec.initContainers ?? []).toEqual([]);
    await expectRefused(
      requiredNs,
      {
        ...pod('batch-secret', {}, null),
        spec: { serviceAccountName: 'batch', containers: [agent({ envFrom: [{ secretRef: { name: SECRET } }] })] },
      },
      'RouteSecretExposed',
      /takes its environment from the Secret "orders-db-app"/,
    );
  });
});

describe('ephemeral containers (pods/ephemeralcontainers)', () => {
  let target: Pod;
  beforeAll(async () => {
    target = await create(enabledNs, pod('debug-target'));
  });

  const addEphemeral = async (container: Container) => {
    const current = (await ok('GET', `/api/v1/namespaces/${enabledNs}/pods/${target.metadata.name}`)) as Pod;
    current.spec.ephemeralContainers = [...(current.spec.ephemeralContainers ?? []), container];
    return rest('PUT', `/api/v1/namespaces/${enabledNs}/pods/${target.metadata.name}/ephemeralcontainers`, {
      body: current,
    });
  };

  it.each([
    [
      'targeting byline-proxy',
      { name: 'peek', image: 'busybox', targetContainerName: 'byline-proxy' },
      'SidecarTargeted',
      /ephemeral container "peek" targets the byline-proxy container/,
    ],
    [
      "mounting the sidecar's token",
      { name: 'tok', image: 'busybox', volumeMounts: [{ name: 'byline-token', mountPath: '/t' }] },
      'SidecarVolumeMounted',
      /ephemeral container "tok" mounts volume "byline-token"/,
    ],
    [
      'reading the route Secret',
      {
        name: 'env',
        image: 'busybox',
        env: [{ name: 'PW', valueFrom: { secretKeyRef: { name: SECRET, key: 'password' } } }],
      },
      'RouteSecretExposed',
      /ephemeral container "env" reads PW from the Secret "orders-db-app"/,
    ],
  ])('refuses one %s', async (_, container, reason, message) => {
    const before = await refusals(reason);
    const res = await addEphemeral(container as Container);
    expect(res.status, statusMessage(res)).toBe(403);
    expect(statusMessage(res)).toMatch(message);
    expect(await refusals(reason)).toBe(before + 1);
  });

  it('allows a debug container aimed at the agent', async () => {
    const res = await addEphemeral({ name: 'debug', image: 'busybox', targetContainerName: 'agent' });
    expect(res.status, statusMessage(res)).toBe(200);
    expect((res.body as Pod).spec.ephemeralContainers?.map((c) => c.name)).toEqual(['debug']);
  });
});

describe("the chart's ValidatingAdmissionPolicy: no exec or attach into byline-proxy", () => {
  beforeAll(async () => {
    // The policy as Helm renders it for a release named byline.
    const helmBin = findHelm() ?? (await buildHelm());
    const policies = render(helmBin, { release: 'byline', namespace: 'byline' }).filter((m) =>
      m.kind.startsWith('ValidatingAdmissionPolicy'),
    );
    expect(policies.map((m) => m.metadata.name)).toEqual(['byline-sidecar-access', 'byline-sidecar-access']);
    for (const object of policies) {
      const plural =
        object.kind === 'ValidatingAdmissionPolicy'
          ? 'validatingadmissionpolicies'
          : 'validatingadmissionpolicybindings';
      await ok('POST', `/apis/admissionregistration.k8s.io/v1/${plural}`, object);
    }
  });

  afterAll(async () => {
    await rest(
      'DELETE',
      '/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings/byline-sidecar-access',
    );
    await rest('DELETE', '/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies/byline-sidecar-access');
  });

  it('refuses pods/exec and pods/attach naming byline-proxy, and only those', async () => {
    const target = await create(enabledNs, pod('exec-target'));
    const connect = (sub: string, container: string) =>
      rest(
        'POST',
        `/api/v1/namespaces/${enabledNs}/pods/${target.metadata.name}/${sub}?container=${container}&command=sh&stdin=true&stdout=true`,
      );
    // The policy takes effect once the API server has compiled it.
    const refused = await waitFor('the policy to refuse exec into byline-proxy', async () => {
      const res = await connect('exec', 'byline-proxy');
      return res.status === 403 ? res : undefined;
    });
    expect(statusMessage(refused)).toMatch(/exec and attach into the byline-proxy container are refused/);
    const attach = await connect('attach', 'byline-proxy');
    expect(attach.status).toBe(403);
    expect(statusMessage(attach)).toMatch(/byline-proxy/);
    // Into the agent the request passes admission and fails only because no kubelet runs this pod.
    const other = await connect('exec', 'agent');
    expect(other.status).not.toBe(403);
    expect(statusMessage(other)).not.toMatch(/byline-proxy/);
  });

  it("refuses a change of byline-proxy's image on a running pod, and allows the agent's", async () => {
    const target = await create(enabledNs, pod('image-swap'));
    const patch = (body: unknown) =>
      rest('PATCH', `/api/v1/namespaces/${enabledNs}/pods/${target.metadata.name}`, {
        body,
        contentType: 'application/json-patch+json',
      });
    const swapped = await waitFor('the policy to refuse the image swap', async () => {
      const res = await patch([{ op: 'replace', path: '/spec/initContainers/0/image', value: 'example.com/evil:1' }]);
      return res.status === 403 ? res : undefined;
    });
    expect(statusMessage(swapped)).toMatch(/byline-proxy container's image cannot be changed/);
    const stored = (await ok('GET', `/api/v1/namespaces/${enabledNs}/pods/${target.metadata.name}`)) as Pod;
    expect(stored.spec.initContainers?.[0]?.image).toBe('ghcr.io/byline-dev/byline:guard-test');
    const agentSwap = await patch([{ op: 'replace', path: '/spec/containers/0/image', value: 'example.com/agent:2' }]);
    expect(agentSwap.status, statusMessage(agentSwap)).toBe(200);
  });
});

describe('the durable spool (byline.dev/spool-volume)', () => {
  it('puts the spool on the named claim, and refuses the agent a volume of that claim', async () => {
    const stored = await create(enabledNs, pod('durable', {}, { 'byline.dev/spool-volume': 'byline-spool-billing' }));
    expect(stored.spec.volumes?.find((v) => v.name === 'byline-spool')).toMatchObject({
      persistentVolumeClaim: { claimName: 'byline-spool-billing' },
    });
    await expectRefused(
      enabledNs,
      pod(
        'durable-shared',
        {
          volumes: [{ name: 'data', persistentVolumeClaim: { claimName: 'byline-spool-billing' } }],
          containers: [agent({ volumeMounts: [{ name: 'data', mountPath: '/data' }] })],
        },
        { 'byline.dev/spool-volume': 'byline-spool-billing' },
      ),
      'SpoolExposed',
      /volume "data" holds the spool claim "byline-spool-billing"/,
    );
    // Another pod, not injected at all, is refused that claim too: spool claims are known by name.
    await expectRefused(
      enabledNs,
      pod(
        'spool-reader',
        {
          volumes: [{ name: 'data', persistentVolumeClaim: { claimName: 'byline-spool-billing' } }],
          containers: [agent({ volumeMounts: [{ name: 'data', mountPath: '/data' }] })],
        },
        null,
      ),
      'SpoolExposed',
      /byline-spool-billing/,
    );
  });
});
