/**
 * The chart installed on the real API server: `helm template` output applied with server-side apply
 * (as `helm install` would create it), then `byline operator` run as a local process with the
 * rendered Deployment's arguments and the rendered ServiceAccount's own token (so the chart's RBAC
 * is what it runs under). It fills in the caBundle of the release's webhook configurations and
 * creates none; while installed, the webhook fails closed; after the uninstall (every rendered
 * object deleted, as `helm uninstall` does) an ordinary pod in a labelled namespace is created.
 *
 * Other kube test files share this API server: the release selects only namespaces carrying this
 * file's own label (operator.webhook.namespaceLabel), so its unreachable webhook refuses nobody else.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { buildHelm, findHelm } from '../chart/helm.js';
import { find, type Manifest, render } from '../chart/render.js';
import { freePort } from '../harness/net.js';
import { applyCrds } from './apply-crds.js';
import { controlPlane } from './control-plane.js';
import { kubeRest, type Rest, statusMessage } from './rest.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
const BIN = join(ROOT, 'cli/bin/byline.mjs');
const suffix = randomBytes(3).toString('hex');
const release = `rel-${suffix}`;
const namespace = `chart-${suffix}`;
const appNs = `chart-app-${suffix}`;
const testLabel = `byline.dev/chart-test=${suffix}`;

/** Where each kind the chart renders lives in the API (a kind missing here fails the test). */
const RESOURCES: Record<string, { prefix: string; plural: string; namespaced: boolean }> = {
  ServiceAccount: { prefix: '/api/v1', plural: 'serviceaccounts', namespaced: true },
  Secret: { prefix: '/api/v1', plural: 'secrets', namespaced: true },
  Service: { prefix: '/api/v1', plural: 'services', namespaced: true },
  PersistentVolumeClaim: { prefix: '/api/v1', plural: 'persistentvolumeclaims', namespaced: true },
  ConfigMap: { prefix: '/api/v1', plural: 'configmaps', namespaced: true },
  Deployment: { prefix: '/apis/apps/v1', plural: 'deployments', namespaced: true },
  PodDisruptionBudget: { prefix: '/apis/policy/v1', plural: 'poddisruptionbudgets', namespaced: true },
  NetworkPolicy: { prefix: '/apis/networking.k8s.io/v1', plural: 'networkpolicies', namespaced: true },
  Role: { prefix: '/apis/rbac.authorization.k8s.io/v1', plural: 'roles', namespaced: true },
  RoleBinding: { prefix: '/apis/rbac.authorization.k8s.io/v1', plural: 'rolebindings', namespaced: true },
  ClusterRole: { prefix: '/apis/rbac.authorization.k8s.io/v1', plural: 'clusterroles', namespaced: false },
  ClusterRoleBinding: {
    prefix: '/apis/rbac.authorization.k8s.io/v1',
    plural: 'clusterrolebindings',
    namespaced: false,
  },
  MutatingWebhookConfiguration: {
    prefix: '/apis/admissionregistration.k8s.io/v1',
    plural: 'mutatingwebhookconfigurations',
    namespaced: false,
  },
  ValidatingAdmissionPolicy: {
    prefix: '/apis/admissionregistration.k8s.io/v1',
    plural: 'validatingadmissionpolicies',
    namespaced: false,
  },
  ValidatingAdmissionPolicyBinding: {
    prefix: '/apis/admissionregistration.k8s.io/v1',
    plural: 'validatingadmissionpolicybindings',
    namespaced: false,
  },
};

function pathOf(m: Manifest): string {
  const r = RESOURCES[m.kind];
  if (!r) throw new Error(`the chart renders a ${m.kind}: add it to RESOURCES`);
  const ns = r.namespaced ? `/namespaces/${m.metadata.namespace}` : '';
  return `${r.prefix}${ns}/${r.plural}/${m.metadata.name}`;
}

let rest: Rest;
let manifests: Manifest[];
let dir: string;
let operator: ChildProcess | undefined;
let operatorLog = '';

async function ok(method: string, path: string, body?: unknown): Promise<unknown> {
  const res = await rest(method, path, body === undefined ? {} : { body });
  if (res.status < 200 || res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${statusMessage(res)}`);
  return res.body;
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(
    `timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}\n${operatorLog.slice(-3000)}`,
  );
}

function plainPod(name: string) {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name },
    spec: { containers: [{ name: 'app', image: 'registry.example/app:1' }] },
  };
}

/** Webhook configurations anywhere in the cluster that call this release's operator Service. */
async function configurationsCallingRelease(): Promise<string[]> {
  const list = (await ok('GET', '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations')) as {
    items: { metadata: { name: string }; webhooks?: { clientConfig: { service?: { namespace: string } } }[] }[];
  };
  return list.items
    .filter((c) => (c.webhooks ?? []).some((w) => w.clientConfig.service?.namespace === namespace))
    .map((c) => c.metadata.name);
}

/** The rendered operator container's args, with listen addresses moved to free loopback ports. */
async function operatorArgs(kubeconfig: string): Promise<string[]> {
  const deployment = find(manifests, 'Deployment', `${release}-byline-operator`)[0] as unknown as {
    spec: { template: { spec: { containers: { args: string[] }[] } } };
  };
  const args = [...(deployment.spec.template.spec.containers[0]?.args ?? [])];
  expect(args[0]).toBe('operator');
  for (const flag of ['--webhook-listen', '--metrics-listen']) {
    const i = args.indexOf(flag);
    expect(i, flag).toBeGreaterThan(0);
    args[i + 1] = `127.0.0.1:${await freePort()}`;
  }
  return [...args, '--kubeconfig', kubeconfig];
}

beforeAll(async () => {
  const plane = controlPlane();
  rest = kubeRest(plane);
  dir = mkdtempSync(join(tmpdir(), 'byline-chart-kube-'));
  const helmBin = findHelm() ?? (await buildHelm());
  manifests = render(helmBin, {
    release,
    namespace,
    set: [`operator.webhook.namespaceLabel=${testLabel}`, 'metrics.dashboard.enabled=true'],
  });
  await applyCrds(rest);
  const [key, value] = testLabel.split('=');
  await ok('POST', '/api/v1/namespaces', { metadata: { name: namespace } });
  await ok('POST', '/api/v1/namespaces', { metadata: { name: appNs, labels: { [key ?? '']: value ?? '' } } });

  // helm install: every rendered object, created with server-side apply.
  for (const m of manifests) {
    const res = await rest('PATCH', `${pathOf(m)}?fieldManager=helm&force=true`, {
      body: m,
      contentType: 'application/apply-patch+yaml',
    });
    if (res.status !== 200 && res.status !== 201) {
      throw new Error(`applying ${m.kind} ${m.metadata.name}: ${res.status} ${statusMessage(res)}`);
    }
  }

  // The operator runs as its rendered ServiceAccount: a token from TokenRequest in a kubeconfig.
  const sa = `${release}-byline-operator`;
  const review = (await ok('POST', `/api/v1/namespaces/${namespace}/serviceaccounts/${sa}/token`, {
    apiVersion: 'authentication.k8s.io/v1',
    kind: 'TokenRequest',
    spec: { expirationSeconds: 3600 },
  })) as { status: { token: string } };
  const kubeconfig = join(dir, 'operator.kubeconfig');
  writeFileSync(
    kubeconfig,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        {
          name: 'test',
          cluster: {
            server: plane.server,
            'certificate-authority-data': readFileSync(plane.caFile).toString('base64'),
          },
        },
      ],
      users: [{ name: sa, user: { token: review.status.token } }],
      contexts: [{ name: 'operator', context: { cluster: 'test', user: sa } }],
      'current-context': 'operator',
    }),
  );
  const args = await operatorArgs(kubeconfig);
  operator = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  operator.stdout?.on('data', (d: Buffer) => {
    operatorLog += d.toString();
  });
  operator.stderr?.on('data', (d: Buffer) => {
    operatorLog += d.toString();
  });
}, 20 * 60_000);

afterAll(async () => {
  if (operator && operator.exitCode === null) operator.kill('SIGKILL');
  // Whatever a failed test left behind must not refuse other files' pods or approvals.
  for (const m of [...(manifests ?? [])].reverse()) await rest?.('DELETE', pathOf(m)).catch(() => undefined);
  for (const ns of [appNs, namespace]) await rest?.('DELETE', `/api/v1/namespaces/${ns}`).catch(() => undefined);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the chart on a real API server', () => {
  it('runs the operator from the rendered Deployment: it fills in the caBundle of both configurations and creates none', async () => {
    const names = find(manifests, 'MutatingWebhookConfiguration').map((m) => m.metadata.name);
    expect(names.sort()).toEqual([`${release}-byline-pod-injector`, `${release}-byline-pod-injector-approvals`].sort());
    const secret = await waitFor('the webhook TLS Secret', async () => {
      const res = await rest('GET', `/api/v1/namespaces/${namespace}/secrets/byline-webhook-tls`);
      return res.status === 200 ? (res.body as { data: Record<string, string> }) : undefined;
    });
    const ca = secret.data['ca.crt'];
    expect(ca).toBeTruthy();
    for (const name of names) {
      await waitFor(`caBundle of ${name}`, async () => {
        const c = (await ok('GET', `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${name}`)) as {
          webhooks: { clientConfig: { caBundle?: string } }[];
        };
        return c.webhooks.every((w) => w.clientConfig.caBundle === ca) ? true : undefined;
      });
    }
    expect((await configurationsCallingRelease()).sort()).toEqual(names.sort());
    // The chart's RBAC lets the operator do all it does. (Another test file's namespaces being
    // deleted meanwhile refuse new Events with a 403 "being terminated": not an RBAC refusal.)
    const refused = operatorLog.split('\n').filter((l) => /forbidden/i.test(l) && !/being terminated/.test(l));
    expect(refused).toEqual([]);
  });

  it('fails closed while installed: no operator answers the Service, so a pod in a labelled namespace is refused', async () => {
    const res = await rest('POST', `/api/v1/namespaces/${appNs}/pods`, { body: plainPod('while-installed') });
    expect(res.status).toBe(500);
    expect(statusMessage(res)).toContain(`failed calling webhook "pods.byline.dev"`);
  });

  it('is scoped to labelled namespaces: a pod elsewhere never calls the webhook, so it is created', async () => {
    const res = await rest('POST', `/api/v1/namespaces/${namespace}/pods`, { body: plainPod('unlabelled-namespace') });
    expect(res.status, statusMessage(res)).toBe(201);
  });

  it('names the collector Service port by the scheme it serves (https, appProtocol https), the Deployment port it targets too', async () => {
    const service = (await ok('GET', `/api/v1/namespaces/${namespace}/services/${release}-byline-collector`)) as {
      spec: { ports: { name: string; appProtocol?: string; targetPort: unknown }[] };
    };
    expect(service.spec.ports.map(({ name, appProtocol, targetPort }) => ({ name, appProtocol, targetPort }))).toEqual([
      { name: 'https', appProtocol: 'https', targetPort: 'https' },
    ]);
    const deployment = (await ok(
      'GET',
      `/apis/apps/v1/namespaces/${namespace}/deployments/${release}-byline-collector`,
    )) as {
      spec: { template: { spec: { containers: { ports: { name: string }[]; readinessProbe: unknown }[] } } };
    };
    const [container] = deployment.spec.template.spec.containers;
    expect(container?.ports.map((p) => p.name)).toEqual(['https']);
    expect(container?.readinessProbe).toMatchObject({ httpGet: { port: 'https', scheme: 'HTTPS' } });
  });

  it('after uninstall nothing is left that refuses pods: an ordinary pod in a labelled namespace is created', async () => {
    // helm uninstall: every rendered object goes (the PVC carries helm.sh/resource-policy: keep),
    // the operator's Deployment with them, so the process stops.
    for (const m of [...manifests].reverse()) {
      if (m.metadata.annotations?.['helm.sh/resource-policy'] === 'keep') continue;
      const res = await rest('DELETE', pathOf(m));
      expect([200, 202], `${m.kind} ${m.metadata.name}: ${statusMessage(res)}`).toContain(res.status);
    }
    operator?.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => {
      if (operator?.exitCode !== null) r(operator?.exitCode ?? null);
      else operator.once('exit', (c) => r(c));
    });
    expect(code, operatorLog.slice(-2000)).toBe(0);
    expect(await configurationsCallingRelease()).toEqual([]);
    const res = await rest('POST', `/api/v1/namespaces/${appNs}/pods`, { body: plainPod('after-uninstall') });
    expect(res.status, statusMessage(res)).toBe(201);
    // Approvals in a labelled namespace are not held up either (the CRDs stay, as Helm leaves them).
    const approval = await rest('POST', `/apis/byline.dev/v1alpha1/namespaces/${appNs}/approvals`, {
      body: {
        apiVersion: 'byline.dev/v1alpha1',
        kind: 'Approval',
        metadata: { name: 'after-uninstall' },
        spec: {
          identity: 'nobody',
          route: 'nowhere',
          scope: { classes: ['write'] },
          reason: 'lifecycle test',
          duration: '1h',
        },
      },
    });
    expect(approval.status, statusMessage(approval)).toBe(201);
  });
});
