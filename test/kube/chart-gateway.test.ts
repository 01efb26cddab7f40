/**
 * The chart's gateway on the real API server: its objects (`gateway.enabled`, test/chart/values/
 * gateway.yaml) applied with server-side apply as `helm install` would create them, then a token
 * of the rendered ServiceAccount, for the audience the rendered Deployment projects, shipping a
 * gateway's events to a collector: accepted, because the chart's ClusterRole is the permission the
 * collector checks. The gateway binary is not run here (test/kube/gateway-identity.test.ts runs it).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AuditIdentity, ChainWriter, crds } from '@byline/api';
import { ndjson, type RunningCollector, SampleStream, startCollector } from '@byline/collector';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildHelm, findHelm } from '../chart/helm.js';
import { find, type Manifest, render } from '../chart/render.js';
import { call } from '../collector/http.js';
import { eventually } from '../harness/sidecar.js';
import { applyCrds } from './apply-crds.js';
import { controlPlane } from './control-plane.js';
import { kubeRest, type Rest, statusMessage } from './rest.js';

const suffix = randomBytes(3).toString('hex');
const release = `gw-${suffix}`;
const namespace = `chart-gw-${suffix}`;
const gatewayName = `${release}-byline-gateway`;
const ISSUER = 'https://login.example.com'; // test/chart/values/gateway.yaml's issuer

const PATHS: Record<string, (m: Manifest) => string> = {
  ServiceAccount: (m) => `/api/v1/namespaces/${m.metadata.namespace}/serviceaccounts/${m.metadata.name}`,
  Secret: (m) => `/api/v1/namespaces/${m.metadata.namespace}/secrets/${m.metadata.name}`,
  Service: (m) => `/api/v1/namespaces/${m.metadata.namespace}/services/${m.metadata.name}`,
  Deployment: (m) => `/apis/apps/v1/namespaces/${m.metadata.namespace}/deployments/${m.metadata.name}`,
  ClusterRole: (m) => `/apis/rbac.authorization.k8s.io/v1/clusterroles/${m.metadata.name}`,
  ClusterRoleBinding: (m) => `/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/${m.metadata.name}`,
};

function pathOf(m: Manifest): string {
  const path = PATHS[m.kind];
  if (!path) throw new Error(`the gateway renders a ${m.kind}: add it to PATHS`);
  return path(m);
}

let rest: Rest;
let gatewayObjects: Manifest[];
let collector: RunningCollector;
let dir: string;

async function ok(method: string, path: string, body?: unknown): Promise<unknown> {
  const res = await rest(method, path, body === undefined ? {} : { body });
  if (res.status < 200 || res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${statusMessage(res)}`);
  return res.body;
}

beforeAll(async () => {
  const plane = controlPlane();
  rest = kubeRest(plane);
  dir = mkdtempSync(join(tmpdir(), 'byline-chart-gw-'));
  const helmBin = findHelm() ?? (await buildHelm());
  const manifests = render(helmBin, { release, namespace, valuesFiles: ['gateway.yaml'] });
  gatewayObjects = manifests.filter((m) => m.metadata.name.startsWith(gatewayName));
  await applyCrds(rest);
  await ok('POST', '/api/v1/namespaces', { metadata: { name: namespace } });
  for (const m of gatewayObjects) {
    const res = await rest('PATCH', `${pathOf(m)}?fieldManager=helm&force=true`, {
      body: m,
      contentType: 'application/apply-patch+yaml',
    });
    if (res.status !== 200 && res.status !== 201) {
      throw new Error(`applying ${m.kind} ${m.metadata.name}: ${res.status} ${statusMessage(res)}`);
    }
  }
  const k = crds.AgentIdentityKind;
  await ok('POST', `/apis/${k.group}/${k.version}/namespaces/${namespace}/${k.plural}`, {
    apiVersion: crds.API_VERSION,
    kind: k.kind,
    metadata: { name: 'oncall', namespace },
    spec: { kind: 'human', oidc: [{ issuer: ISSUER, group: 'sre' }], routes: [{ name: 'orders-db' }] },
  });
  collector = await startCollector(
    {
      listen: '127.0.0.1:0',
      store: `sqlite:${join(dir, 'trail.db')}`,
      auth: { kubernetes: { kubeconfig: plane.kubeconfigPath, cacheSeconds: 0 } },
    },
    { logger: pino({ level: process.env.BYLINE_TEST_LOG ?? 'silent' }) },
  );
}, 20 * 60_000);

afterAll(async () => {
  await collector?.close();
  for (const m of [...(gatewayObjects ?? [])].reverse()) await rest?.('DELETE', pathOf(m)).catch(() => undefined);
  await rest?.('DELETE', `/api/v1/namespaces/${namespace}`).catch(() => undefined);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the chart’s gateway on a real API server', () => {
  it('creates the Deployment, Service, ServiceAccount, config Secret and the writer ClusterRole and binding', async () => {
    expect(gatewayObjects.map((m) => `${m.kind}/${m.metadata.name}`).sort()).toEqual(
      [
        `ClusterRole/${gatewayName}-writer`,
        `ClusterRoleBinding/${gatewayName}-writer`,
        `Deployment/${gatewayName}`,
        `Secret/${gatewayName}-config`,
        `Service/${gatewayName}`,
        `ServiceAccount/${gatewayName}`,
      ].sort(),
    );
    for (const m of gatewayObjects) {
      const stored = (await ok('GET', pathOf(m))) as { metadata: { name: string } };
      expect(stored.metadata.name).toBe(m.metadata.name);
    }
  });

  it('its ServiceAccount, with a token as the Deployment projects it, writes a gateway’s events to the collector', async () => {
    const deployment = find(gatewayObjects, 'Deployment', gatewayName)[0] as unknown as {
      spec: {
        template: {
          spec: { volumes: { projected?: { sources: { serviceAccountToken?: { audience: string } }[] } }[] };
        };
      };
    };
    const audience = deployment.spec.template.spec.volumes
      .flatMap((v) => v.projected?.sources ?? [])
      .find((s) => s.serviceAccountToken)?.serviceAccountToken?.audience;
    expect(audience).toBe('byline.dev');
    const minted = (await ok('POST', `/api/v1/namespaces/${namespace}/serviceaccounts/${gatewayName}/token`, {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: { audiences: [audience], expirationSeconds: 600 },
    })) as { status: { token: string } };

    const ada: AuditIdentity = {
      name: 'ada@example.com',
      kind: 'human',
      namespace,
      serviceAccount: null,
      pod: null,
      source: 'oidc',
      oidc: { issuer: ISSUER, subject: 'u-ada', agentIdentity: 'oncall', jti: null, sid: null },
    };
    const sample = new SampleStream({ identity: ada.name, sessionLength: 3 });
    const writer = new ChainWriter(sample.stream);
    const events = Array.from({ length: 3 }, () => writer.append({ ...sample.nextEvent(), identity: ada }));
    // RBAC reaches the authorizer through an informer: the binding counts within seconds.
    await eventually(async () => {
      const r = await call(collector.port, 'POST', '/v1/events', { token: minted.status.token, body: ndjson(events) });
      expect(r.status, r.text).toBe(200);
      expect(r.json).toEqual({ accepted: 3, duplicates: 0 });
    }, 15_000);
  });

  it('lets the gateway watch AgentIdentities in every namespace, and nothing it does not need', async () => {
    const user = `system:serviceaccount:${namespace}:${gatewayName}`;
    const may = async (resourceAttributes: Record<string, string>) => {
      const review = (await ok('POST', '/apis/authorization.k8s.io/v1/subjectaccessreviews', {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SubjectAccessReview',
        spec: { user, groups: ['system:serviceaccounts'], resourceAttributes },
      })) as { status: { allowed?: boolean } };
      return review.status.allowed === true;
    };
    expect(await may({ group: 'byline.dev', resource: 'agentidentities', verb: 'watch' })).toBe(true);
    expect(await may({ group: 'byline.dev', resource: 'gatewayevents', verb: 'write' })).toBe(true);
    expect(await may({ group: 'byline.dev', resource: 'auditevents', verb: 'get' })).toBe(false);
    expect(await may({ group: '', resource: 'secrets', verb: 'get', namespace })).toBe(false);
  });
});
