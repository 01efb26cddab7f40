/**
 * An AgentIdentity edited, then deleted and replaced, while a sidecar's spool holds events written
 * under it, against the real API server: the collector (TokenReview → AgentIdentity) now refuses
 * those events for their identity. They must not strand the spool: the sidecar asks again who it
 * is, dead-letters the refused events with a chained `spool.deadLettered` marker under the
 * identity it holds now, and goes on shipping. While no AgentIdentity claims the service account
 * at all, nothing is dead-lettered: the spool waits (fail closed).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AuditEvent, crds, SidecarConfigSchema, validate } from '@byline/api';
import { COLLECTOR_RBAC_RULES, type RunningCollector, startCollector } from '@byline/collector';
import { type RunningSidecar, startSidecar } from '@byline/sidecar';
import { CoreV1Api, CustomObjectsApi, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { waitFor } from '../harness/byline-process.js';
import { AUTH_USERS, freePort, startPostgres, TEST_PASSWORD, type TestPostgres } from '../harness/postgres.js';
import { applyCrds } from './apply-crds.js';
import { controlPlane } from './control-plane.js';
import { kubeRest } from './rest.js';

const suffix = randomBytes(4).toString('hex');
const ns = `identity-change-${suffix}`;
const READER = 'reader-token-0123456789abcdef';
const logger = () => pino({ level: process.env.BYLINE_TEST_LOG ?? 'silent' });
const k = crds.AgentIdentityKind;

let core: CoreV1Api;
let rbac: RbacAuthorizationV1Api;
let custom: CustomObjectsApi;
let pgServer: TestPostgres;
let collector: RunningCollector | null = null;
let sidecar: RunningSidecar | null = null;
let dir: string;
let kubeconfig: string;
let collectorPort: number;
const clusterRole = `byline-collector-change-${suffix}`;

async function identity(name: string, kind: string): Promise<void> {
  await custom.createNamespacedCustomObject({
    group: k.group,
    version: k.version,
    namespace: ns,
    plural: k.plural,
    body: {
      apiVersion: crds.API_VERSION,
      kind: k.kind,
      metadata: { name, namespace: ns },
      spec: { kind, serviceAccounts: ['editor'], routes: [{ name: 'orders-db', access: 'readWrite' }] },
    },
  });
}

async function startTheCollector(): Promise<void> {
  collector = await startCollector(
    {
      listen: `127.0.0.1:${collectorPort}`,
      store: `sqlite:${join(dir, 'trail.db')}`,
      auth: { static: [{ token: READER, reader: true }], kubernetes: { kubeconfig, cacheSeconds: 0 } },
    },
    { logger: logger() },
  );
}

async function run(...statements: string[]): Promise<void> {
  const route = sidecar!.routes[0]!;
  const client = new pg.Client({ host: route.host, port: route.port, user: 'agent', database: 'postgres' });
  await client.connect();
  try {
    for (const s of statements) await client.query(s);
  } finally {
    await client.end();
  }
}

async function trail(): Promise<AuditEvent[]> {
  const res = await fetch(`${collector!.url}/v1/events?limit=5000`, { headers: { authorization: `Bearer ${READER}` } });
  if (!res.ok) throw new Error(`${res.status} ${await res.text()}`);
  return ((await res.json()) as { events: { event: AuditEvent }[] }).events.map((e) => e.event);
}

const deadLetterDir = () => join(dir, 'spool', 'dead-letter');
const deadLettered = (): AuditEvent[] =>
  existsSync(deadLetterDir())
    ? readdirSync(deadLetterDir())
        .filter((f) => f.endsWith('.ndjson'))
        .map((f) => JSON.parse(readFileSync(join(deadLetterDir(), f), 'utf8')) as AuditEvent)
    : [];

beforeAll(async () => {
  const plane = controlPlane();
  core = plane.kubeConfig.makeApiClient(CoreV1Api);
  rbac = plane.kubeConfig.makeApiClient(RbacAuthorizationV1Api);
  custom = plane.kubeConfig.makeApiClient(CustomObjectsApi);
  await applyCrds(kubeRest(plane));
  dir = mkdtempSync(join(tmpdir(), 'byline-identity-change-'));
  await core.createNamespace({ body: { metadata: { name: ns } } });
  for (const sa of ['editor', 'byline-collector']) {
    await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: sa } } });
  }
  await rbac.createClusterRole({ body: { metadata: { name: clusterRole }, rules: COLLECTOR_RBAC_RULES } });
  await rbac.createClusterRoleBinding({
    body: {
      metadata: { name: clusterRole },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: clusterRole },
      subjects: [{ kind: 'ServiceAccount', name: 'byline-collector', namespace: ns }],
    },
  });
  const collectorToken = (
    await core.createNamespacedServiceAccountToken({
      name: 'byline-collector',
      namespace: ns,
      body: { spec: { audiences: [], expirationSeconds: 3600 } },
    })
  ).status!.token;
  kubeconfig = join(dir, 'collector.kubeconfig');
  writeFileSync(
    kubeconfig,
    [
      'apiVersion: v1',
      'kind: Config',
      `clusters: [{ name: test, cluster: { server: "${plane.server}", certificate-authority: "${plane.caFile}" } }]`,
      `users: [{ name: collector, user: { token: "${collectorToken}" } }]`,
      'contexts: [{ name: test, context: { cluster: test, user: collector } }]',
      'current-context: test',
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  pgServer = await startPostgres();
  collectorPort = await freePort();
});

afterAll(async () => {
  await sidecar?.close();
  await collector?.close();
  await pgServer?.stop();
  await rbac?.deleteClusterRoleBinding({ name: clusterRole }).catch(() => {});
  await rbac?.deleteClusterRole({ name: clusterRole }).catch(() => {});
  await core?.deleteNamespace({ name: ns }).catch(() => {});
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('an AgentIdentity changed while the spool holds its events', () => {
  test('edited, then deleted and replaced: the refused events are dead-lettered with markers, shipping goes on', async () => {
    await identity('edited-agent', 'agent');
    const created = await core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: 'editor-0' },
        spec: { serviceAccountName: 'editor', containers: [{ name: 'agent', image: 'example.invalid/agent' }] },
      },
    });
    const tokenPath = join(dir, 'token');
    const podToken = await core.createNamespacedServiceAccountToken({
      name: 'editor',
      namespace: ns,
      body: {
        spec: {
          audiences: ['byline.dev'],
          expirationSeconds: 3600,
          boundObjectRef: { kind: 'Pod', apiVersion: 'v1', name: 'editor-0', uid: created.metadata!.uid! },
        },
      },
    });
    writeFileSync(tokenPath, podToken.status!.token);
    const passwordFile = join(dir, 'password');
    writeFileSync(passwordFile, `${TEST_PASSWORD}\n`);
    const url = `http://127.0.0.1:${collectorPort}`;
    await startTheCollector();
    sidecar = await startSidecar(
      validate(
        SidecarConfigSchema,
        {
          identity: { kubernetes: { tokenPath, collector: { url } } },
          routes: [
            {
              name: 'orders-db',
              listen: '127.0.0.1:0',
              upstream: { host: pgServer.host, port: pgServer.port, database: 'postgres', sslMode: 'disable' },
              credentials: { mode: 'inject', username: AUTH_USERS.scram, passwordFile, acceptAnyUser: true },
            },
          ],
          audit: { spoolDir: join(dir, 'spool'), sinks: [{ collector: { url, tokenFile: tokenPath } }] },
        },
        'test sidecar config',
      ),
      { logger: logger() },
    );
    expect(sidecar.identity()).toMatchObject({ name: 'edited-agent', kind: 'agent' });

    // 1. The collector goes away; the spool fills with events written as kind "agent".
    await collector!.close();
    await run('select 1 as written_as_agent', 'select 2 as written_as_agent');
    await waitFor('the events in the spool', async () => (sidecar!.spool!.unshipped === 4 ? true : undefined), 5000);

    // 2. The AgentIdentity is edited (kind agent → service), and the collector comes back.
    const current = (await custom.getNamespacedCustomObject({
      group: k.group,
      version: k.version,
      namespace: ns,
      plural: k.plural,
      name: 'edited-agent',
    })) as { spec: Record<string, unknown> };
    current.spec.kind = 'service';
    await custom.replaceNamespacedCustomObject({
      group: k.group,
      version: k.version,
      namespace: ns,
      plural: k.plural,
      name: 'edited-agent',
      body: current,
    });
    await startTheCollector();
    const markers = await waitFor('a marker for each refused event', async () => {
      const m = (await trail()).filter((e) => e.type === 'spool.deadLettered');
      return m.length === 4 ? m : undefined;
    });
    for (const m of markers) {
      expect(m.identity).toMatchObject({ name: 'edited-agent', kind: 'service' });
      expect(m.incident).toMatchObject({ kind: 'spool.deadLettered', status: 403 });
    }
    expect(sidecar.identity().kind).toBe('service');
    const dead = deadLettered();
    expect(dead.map((e) => e.identity.kind)).toEqual(['agent', 'agent', 'agent', 'agent']);
    expect(
      dead
        .map((e) => e.statement?.text)
        .filter(Boolean)
        .sort(),
    ).toEqual(['select 1 as written_as_agent', 'select 2 as written_as_agent']);
    expect(sidecar.spool!.unshipped).toBe(0);
    // Shipping goes on, under the identity as it is now.
    await run('select 3 as written_as_service');
    const after = await waitFor('the statement after the edit', async () =>
      (await trail()).find((e) => e.statement?.text === 'select 3 as written_as_service'),
    );
    expect(after.identity).toMatchObject({ name: 'edited-agent', kind: 'service' });

    // 3. Deleted: nobody may write for this service account. Nothing is dead-lettered; the spool waits.
    await collector!.close();
    await run('select 4 as written_before_delete');
    await custom.deleteNamespacedCustomObject({
      group: k.group,
      version: k.version,
      namespace: ns,
      plural: k.plural,
      name: 'edited-agent',
    });
    await startTheCollector();
    await new Promise((r) => setTimeout(r, 3000));
    expect(deadLettered()).toHaveLength(4);
    expect(sidecar.spool!.unshipped).toBe(3);

    // 4. A new AgentIdentity claims the account: the waiting events, written under the deleted
    // one, are dead-lettered with markers under the new one, and the trail continues.
    await identity('replacement-agent', 'agent');
    const later = await waitFor('markers under the replacement', async () => {
      const m = (await trail()).filter(
        (e) => e.type === 'spool.deadLettered' && e.identity.name === 'replacement-agent',
      );
      return m.length === 3 ? m : undefined;
    });
    expect(later).toHaveLength(3);
    expect(deadLettered().filter((e) => e.statement?.text === 'select 4 as written_before_delete')).toHaveLength(1);
    await run('select 5 as replacement');
    const replaced = await waitFor('the replacement identity’s statement', async () =>
      (await trail()).find((e) => e.statement?.text === 'select 5 as replacement'),
    );
    expect(replaced.identity.name).toBe('replacement-agent');
  }, 120_000);
});
