/**
 * The AgentIdentity's Ready condition says when the collector cannot build its policy, on the real
 * API server. Today's CRD refuses such guardrails at admission, so the test plays the version skew
 * that lets one through: an older CRD that stored guardrails unvalidated holds the object, then the
 * current CRD is applied over it (stored objects are not revalidated). It runs a control plane of
 * its own, since swapping a CRD would disturb the other kube test files.
 */
import { readFileSync } from 'node:fs';
import { type RunningOperator, startOperator } from '@byline/operator';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { type ControlPlane, startControlPlane } from '../harness/kube.js';
import { freePort } from '../harness/net.js';
import { eventually } from '../harness/sidecar.js';
import { applyCrds, crdFiles } from './apply-crds.js';
import { kubeRest, type Rest, statusMessage } from './rest.js';

const logger = pino({ level: process.env.BYLINE_TEST_LOG ?? 'silent' });
const ns = 'payments';
const API = '/apis/byline.dev/v1alpha1';
const IDENTITY = `${API}/namespaces/${ns}/agentidentities/billing-reconciler`;

let plane: ControlPlane;
let rest: Rest;
let operator: RunningOperator;

interface Condition {
  type: string;
  status: string;
  reason: string;
  message: string;
}

async function ok(method: string, path: string, body?: unknown, contentType?: string): Promise<unknown> {
  const res = await rest(method, path, {
    ...(body === undefined ? {} : { body }),
    ...(contentType ? { contentType } : {}),
  });
  if (res.status < 200 || res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${statusMessage(res)}`);
  return res.body;
}

/** The AgentIdentity CRD as an older release could have shipped it: guardrails kept as given. */
async function applyLooseIdentityCrd(): Promise<void> {
  const file = crdFiles().find((f) => f.endsWith('byline.dev_agentidentities.yaml'))!;
  const crd = parse(readFileSync(file, 'utf8'));
  for (const version of crd.spec.versions) {
    version.schema.openAPIV3Schema.properties.spec.properties.guardrails = {
      type: 'object',
      'x-kubernetes-preserve-unknown-fields': true,
    };
  }
  await ok(
    'PATCH',
    `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd.metadata.name}?fieldManager=byline-tests&force=true`,
    crd,
    'application/apply-patch+yaml',
  );
}

const readyWith = (reason: string) =>
  eventually(async () => {
    const object = (await ok('GET', IDENTITY)) as { status?: { conditions?: Condition[] } };
    const condition = object.status?.conditions?.find((c) => c.type === 'Ready');
    if (condition?.reason !== reason) throw new Error(`Ready is ${JSON.stringify(condition)}, waiting for ${reason}`);
    return condition;
  }, 20_000);

beforeAll(async () => {
  plane = await startControlPlane();
  rest = kubeRest(plane);
  await applyCrds(rest);
  await applyLooseIdentityCrd();
  await ok('POST', '/api/v1/namespaces', { metadata: { name: 'byline' } });
  await ok('POST', '/api/v1/namespaces', { metadata: { name: ns } });
  await ok('POST', `/api/v1/namespaces/${ns}/serviceaccounts`, { metadata: { name: 'billing' } });
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
    },
  });
  await ok('POST', `${API}/namespaces/${ns}/agentidentities`, {
    apiVersion: 'byline.dev/v1alpha1',
    kind: 'AgentIdentity',
    metadata: { name: 'billing-reconciler' },
    spec: {
      kind: 'agent',
      serviceAccounts: ['billing'],
      routes: [{ name: 'orders-db', access: 'readWrite' }],
      guardrails: { deny: { classes: ['drop-everything'] } },
    },
  });
  // The upgrade: today's CRD over the stored object.
  await applyCrds(rest);
  const port = await freePort();
  operator = await startOperator({
    kubeconfig: plane.kubeconfigPath,
    namespace: 'byline',
    webhookListen: `127.0.0.1:${port}`,
    webhookUrl: `https://127.0.0.1:${port}`,
    metricsListen: '127.0.0.1:0',
    leaderElection: false,
    image: 'ghcr.io/byline-dev/byline:policy-condition-test',
    collectorUrl: 'http://collector.byline.svc:8080',
    logger,
  });
}, 180_000);

afterAll(async () => {
  await operator?.close();
  await plane?.stop();
});

describe('AgentIdentity Ready and the policy the collector would build', () => {
  it('today’s CRD refuses the guardrails at admission, naming the field', async () => {
    const res = await rest('POST', `${API}/namespaces/${ns}/agentidentities`, {
      body: {
        apiVersion: 'byline.dev/v1alpha1',
        kind: 'AgentIdentity',
        metadata: { name: 'other' },
        spec: {
          kind: 'agent',
          serviceAccounts: ['other'],
          routes: [{ name: 'orders-db' }],
          guardrails: { deny: { classes: ['drop-everything'] } },
        },
      },
    });
    expect(res.status).toBe(422);
    expect(statusMessage(res)).toContain('spec.guardrails.deny.classes');
  });

  it('Ready=False PolicyInvalid for guardrails stored under the older CRD; cleared once they are fixed', async () => {
    const invalid = await readyWith('PolicyInvalid');
    expect(invalid.status).toBe('False');
    expect(invalid.message).toContain(`AgentIdentity ${ns}/billing-reconciler guardrails`);
    expect(invalid.message).toContain('denies every statement');

    await ok(
      'PATCH',
      IDENTITY,
      { spec: { guardrails: { deny: { classes: ['ddl'] } } } },
      'application/merge-patch+json',
    );
    const valid = await readyWith('Valid');
    expect(valid.status).toBe('True');
  });
});
