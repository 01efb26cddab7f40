/**
 * Trail readers per namespace, on the real API server: a RoleBinding to the trail-reader ClusterRole
 * in a namespace lets its subject read that namespace's identities' events (the collector asks a
 * SubjectAccessReview with the namespace the query names) and nothing else; a ClusterRoleBinding
 * reads every namespace. Events are written as real sidecars would: with their service-account
 * tokens, each for the AgentIdentity of its own namespace.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { type AuditEvent, ChainWriter, crds } from '@byline/api';
import {
  ndjson,
  type RunningCollector,
  SampleStream,
  startCollector,
  TRAIL_READER_RBAC_RULES,
} from '@byline/collector';
import { CoreV1Api, CustomObjectsApi, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { trail } from '../../cli/src/trail.js';
import { call } from '../collector/http.js';
import { eventually } from '../harness/sidecar.js';
import { applyCrds } from './apply-crds.js';
import { controlPlane } from './control-plane.js';
import { kubeRest } from './rest.js';

const suffix = randomBytes(3).toString('hex');
const nsA = `readers-a-${suffix}`;
const nsB = `readers-b-${suffix}`;
const role = `byline-trail-reader-${suffix}`;
const EVENTS_PER_NAMESPACE = 6;

let core: CoreV1Api;
let rbac: RbacAuthorizationV1Api;
let collector: RunningCollector;
let dir: string;
const tokens: Record<string, string> = {};
const streams: Record<string, string> = {};

async function token(namespace: string, serviceAccount: string, audiences: string[]): Promise<string> {
  const res = await core.createNamespacedServiceAccountToken({
    name: serviceAccount,
    namespace,
    body: { spec: { audiences, expirationSeconds: 3600 } },
  });
  return res.status!.token;
}

/** Events of the AgentIdentity "agent" of a namespace, shipped with its service account's token. */
async function ship(namespace: string): Promise<void> {
  const sample = new SampleStream({ identity: 'agent', sessionLength: 3 });
  const writer = new ChainWriter(sample.stream);
  const events = Array.from({ length: EVENTS_PER_NAMESPACE }, () => {
    const e = sample.nextEvent();
    return writer.append({
      ...e,
      identity: { name: 'agent', kind: 'agent', namespace, serviceAccount: 'agent', pod: null, source: 'kubernetes' },
    });
  });
  streams[namespace] = sample.stream;
  const writerToken = await token(namespace, 'agent', ['byline.dev']);
  const r = await call(collector.port, 'POST', '/v1/events', { token: writerToken, body: ndjson(events) });
  expect(r.status, r.text).toBe(200);
}

async function events(
  reader: string,
  query: string,
): Promise<{ status: number; text: string; error: string; events: AuditEvent[] }> {
  const r = await call(collector.port, 'GET', `/v1/events?limit=5000${query}`, { token: tokens[reader] });
  const list = r.status === 200 ? (r.json.events as { event: AuditEvent }[]).map((e) => e.event) : [];
  return { status: r.status, text: r.text, error: r.status === 200 ? '' : String(r.json?.error), events: list };
}

beforeAll(async () => {
  const plane = controlPlane();
  core = plane.kubeConfig.makeApiClient(CoreV1Api);
  rbac = plane.kubeConfig.makeApiClient(RbacAuthorizationV1Api);
  const custom = plane.kubeConfig.makeApiClient(CustomObjectsApi);
  await applyCrds(kubeRest(plane));
  dir = mkdtempSync(join(tmpdir(), 'byline-readers-'));
  await rbac.createClusterRole({ body: { metadata: { name: role }, rules: TRAIL_READER_RBAC_RULES } });
  for (const ns of [nsA, nsB]) {
    await core.createNamespace({ body: { metadata: { name: ns } } });
    for (const sa of ['agent', 'reader']) {
      await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: sa } } });
    }
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
  // reader in A: a RoleBinding in A only. reader in B: a ClusterRoleBinding (every namespace).
  await rbac.createNamespacedRoleBinding({
    namespace: nsA,
    body: {
      metadata: { name: 'trail-readers' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
      subjects: [{ kind: 'ServiceAccount', name: 'reader', namespace: nsA }],
    },
  });
  await rbac.createClusterRoleBinding({
    body: {
      metadata: { name: role },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
      subjects: [{ kind: 'ServiceAccount', name: 'reader', namespace: nsB }],
    },
  });

  collector = await startCollector(
    {
      listen: '127.0.0.1:0',
      store: `sqlite:${join(dir, 'trail.db')}`,
      auth: { kubernetes: { kubeconfig: plane.kubeconfigPath, cacheSeconds: 0 } },
    },
    { logger: pino({ level: process.env.BYLINE_TEST_LOG ?? 'silent' }) },
  );
  await ship(nsA);
  await ship(nsB);
  tokens.namespaceReader = await token(nsA, 'reader', []);
  tokens.clusterReader = await token(nsB, 'reader', []);
  tokens.agent = await token(nsA, 'agent', []);
  // RBAC reaches the API server's authorizer through an informer: wait until both bindings count.
  await eventually(async () => {
    expect((await events('namespaceReader', `&namespace=${nsA}`)).status).toBe(200);
    expect((await events('clusterReader', '')).status).toBe(200);
  }, 15_000);
});

afterAll(async () => {
  await collector?.close();
  await rbac?.deleteClusterRoleBinding({ name: role }).catch(() => {});
  await rbac?.deleteClusterRole({ name: role }).catch(() => {});
  for (const ns of [nsA, nsB]) await core?.deleteNamespace({ name: ns }).catch(() => {});
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('trail readers per namespace', () => {
  it("a RoleBinding in a namespace reads that namespace's events, all of them and only them", async () => {
    const r = await events('namespaceReader', `&namespace=${nsA}`);
    expect(r.status, r.text).toBe(200);
    expect(r.events).toHaveLength(EVENTS_PER_NAMESPACE);
    expect(new Set(r.events.map((e) => e.identity.namespace))).toEqual(new Set([nsA]));
  });

  it('refuses it another namespace, the whole trail, and the streams endpoint, saying why', async () => {
    const other = await events('namespaceReader', `&namespace=${nsB}`);
    expect(other.status).toBe(403);
    expect(other.error).toContain(`may not read the trail of namespace "${nsB}"`);
    const all = await events('namespaceReader', '');
    expect(all.status).toBe(403);
    expect(all.error).toContain('?namespace=NS');
    const s = await call(collector.port, 'GET', '/v1/streams', { token: tokens.namespaceReader });
    expect(s.status).toBe(403);
    expect(s.json).toMatchObject({ reason: 'reader-denied' });
  });

  it("cannot reach another namespace's events through other filters", async () => {
    // The other namespace's stream, identity name and route, asked within the namespace it may read.
    for (const filter of [`&stream=${streams[nsB]}`, '&identity=agent', '&route=orders-db', '&type=statement']) {
      const r = await events('namespaceReader', `&namespace=${nsA}${filter}`);
      expect(r.status, `${filter}: ${r.text}`).toBe(200);
      expect(
        r.events.every((e) => e.identity.namespace === nsA),
        filter,
      ).toBe(true);
    }
    expect((await events('namespaceReader', `&namespace=${nsA}&stream=${streams[nsB]}`)).events).toEqual([]);
  });

  it('a ClusterRoleBinding reads every namespace, or one it names', async () => {
    const all = await events('clusterReader', '');
    expect(all.status, all.text).toBe(200);
    expect(all.events.filter((e) => [nsA, nsB].includes(e.identity.namespace ?? ''))).toHaveLength(
      2 * EVENTS_PER_NAMESPACE,
    );
    const onlyB = await events('clusterReader', `&namespace=${nsB}`);
    expect(onlyB.events).toHaveLength(EVENTS_PER_NAMESPACE);
    expect(new Set(onlyB.events.map((e) => e.identity.namespace))).toEqual(new Set([nsB]));
  });

  it('byline trail --namespace reads it as such a reader', async () => {
    const tokenFile = join(dir, 'reader.token');
    writeFileSync(tokenFile, tokens.namespaceReader ?? '', { mode: 0o600 });
    const out = new PassThrough();
    let text = '';
    out.on('data', (d: Buffer) => {
      text += d.toString();
    });
    const args = { collector: collector.url, 'token-file': tokenFile, format: 'json' };
    expect(await trail({ ...args, namespace: nsA }, out)).toBe(0);
    const lines = text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as AuditEvent);
    expect(lines).toHaveLength(EVENTS_PER_NAMESPACE);
    expect(lines.every((e) => e.identity.namespace === nsA)).toBe(true);
    await expect(trail(args, out)).rejects.toThrow(/\?namespace=NS/);
  });

  it('a token without any binding reads nothing', async () => {
    const r = await events('agent', `&namespace=${nsA}`);
    expect(r.status).toBe(403);
    expect(r.error).toContain('may not read the trail of namespace');
  });
});
