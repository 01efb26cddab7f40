/**
 * Identity from Kubernetes, end to end, against the real API server: a collector reviewing tokens
 * (TokenReview with audience byline.dev, the AgentIdentity claiming the service account, RBAC for
 * readers), running with exactly the RBAC the README documents; a sidecar with identity.kubernetes
 * that asks the collector who it is, in front of a real Postgres, shipping to that collector.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AuditEvent, canonicalJson, crds, SidecarConfigSchema, validate } from '@byline/api';
import {
  COLLECTOR_RBAC_RULES,
  type RunningCollector,
  startCollector,
  TRAIL_READER_RBAC_RULES,
} from '@byline/collector';
import { type RunningSidecar, startSidecar } from '@byline/sidecar';
import {
  AuthorizationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  RbacAuthorizationV1Api,
  type V1ResourceAttributes,
} from '@kubernetes/client-node';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { call } from '../collector/http.js';
import { AUTH_USERS, freePort, startPostgres, TEST_PASSWORD, type TestPostgres } from '../harness/postgres.js';
import { eventually } from '../harness/sidecar.js';
import { applyCrds } from './apply-crds.js';
import { controlPlane } from './control-plane.js';
import { createDatabaseRoute } from './database-route.js';
import { kubeRest } from './rest.js';

const AUDIENCE = 'byline.dev';
const suffix = randomBytes(4).toString('hex');
const ns = `identity-${suffix}`;
const STATIC_WRITER = 'static-writer-token-0123456789';
const logger = () => pino({ level: process.env.BYLINE_TEST_LOG ?? 'silent' });

let core: CoreV1Api;
let rbac: RbacAuthorizationV1Api;
let authz: AuthorizationV1Api;
let custom: CustomObjectsApi;
let pgServer: TestPostgres;
let collector: RunningCollector;
let dir: string;
const sidecars: RunningSidecar[] = [];
const clusterScoped: { roles: string[]; bindings: string[] } = { roles: [], bindings: [] };

const billing = {
  name: 'billing-reconciler',
  kind: 'agent',
  namespace: ns,
  serviceAccount: 'billing',
  pod: 'billing-0',
  source: 'kubernetes',
} as const;

async function agentIdentity(name: string, serviceAccounts: string[], kind = 'agent'): Promise<void> {
  const k = crds.AgentIdentityKind;
  await custom.createNamespacedCustomObject({
    group: k.group,
    version: k.version,
    namespace: ns,
    plural: k.plural,
    body: {
      apiVersion: crds.API_VERSION,
      kind: k.kind,
      metadata: { name, namespace: ns },
      spec: { kind, serviceAccounts, routes: [{ name: 'orders-db', access: 'readWrite' }], parameters: 'redacted' },
    },
  });
}

async function pod(name: string, serviceAccount: string): Promise<string> {
  const created = await core.createNamespacedPod({
    namespace: ns,
    body: {
      metadata: { name },
      spec: { serviceAccountName: serviceAccount, containers: [{ name: 'agent', image: 'example.invalid/agent' }] },
    },
  });
  return created.metadata!.uid!;
}

/** What the kubelet would mount: a token for the service account, bound to the pod when one is named. */
async function token(
  serviceAccount: string,
  options: { audiences?: string[]; pod?: { name: string; uid: string } } = {},
): Promise<string> {
  const res = await core.createNamespacedServiceAccountToken({
    name: serviceAccount,
    namespace: ns,
    body: {
      spec: {
        audiences: options.audiences ?? [AUDIENCE],
        expirationSeconds: 3600,
        ...(options.pod ? { boundObjectRef: { kind: 'Pod', apiVersion: 'v1', ...options.pod } } : {}),
      },
    },
  });
  return res.status!.token;
}

async function clusterRole(name: string, rules: typeof COLLECTOR_RBAC_RULES, serviceAccount: string): Promise<void> {
  await rbac.createClusterRole({ body: { metadata: { name }, rules } });
  clusterScoped.roles.push(name);
  await rbac.createClusterRoleBinding({
    body: {
      metadata: { name },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name },
      subjects: [{ kind: 'ServiceAccount', name: serviceAccount, namespace: ns }],
    },
  });
  clusterScoped.bindings.push(name);
}

/** Waits until RBAC (an informer cache in the API server) lets the service account do all of these. */
async function untilAllowed(serviceAccount: string, attributes: V1ResourceAttributes[]): Promise<void> {
  await eventually(async () => {
    for (const resourceAttributes of attributes) {
      const review = await authz.createSubjectAccessReview({
        body: { spec: { user: `system:serviceaccount:${ns}:${serviceAccount}`, resourceAttributes } },
      });
      if (!review.status?.allowed) throw new Error(`not yet allowed: ${JSON.stringify(resourceAttributes)}`);
    }
  }, 15_000);
}

const collectorPort = () => collector.port;
const whoami = (t: string) => call(collectorPort(), 'GET', '/v1/whoami', { token: t });

async function metric(series: string): Promise<number> {
  const text = (await call(collectorPort(), 'GET', '/metrics')).text;
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return Number(line?.split(' ')[1] ?? Number.NaN);
}

function sidecarConfig(tokenPath: string, name: string, listen = '127.0.0.1:0') {
  const passwordFile = join(dir, 'password');
  writeFileSync(passwordFile, `${TEST_PASSWORD}\n`);
  return validate(
    SidecarConfigSchema,
    {
      identity: { kubernetes: { tokenPath, collector: { url: collector.url } } },
      routes: [
        {
          name: 'orders-db',
          listen,
          upstream: { host: pgServer.host, port: pgServer.port, database: 'postgres', sslMode: 'disable' },
          credentials: { mode: 'inject', username: AUTH_USERS.scram, passwordFile, acceptAnyUser: true },
        },
      ],
      audit: {
        params: 'redacted',
        spoolDir: join(dir, `spool-${name}`),
        sinks: [{ collector: { url: collector.url, tokenFile: tokenPath } }],
      },
    },
    'test sidecar config',
  );
}

async function run(sidecar: RunningSidecar, ...statements: string[]): Promise<void> {
  const route = sidecar.routes[0]!;
  const client = new pg.Client({ host: route.host, port: route.port, user: 'agent', database: 'postgres' });
  await client.connect();
  try {
    for (const s of statements) await client.query(s);
  } finally {
    await client.end();
  }
}

let readerToken: string;

/** The trail as a reader sees it: statements whose text is one of these. */
async function trail(...texts: string[]): Promise<AuditEvent[]> {
  const r = await call(collectorPort(), 'GET', '/v1/events?type=statement&limit=5000', { token: readerToken });
  expect(r.status, r.text).toBe(200);
  return (r.json.events as { event: AuditEvent }[])
    .map((e) => e.event)
    .filter((e) => texts.includes(e.statement?.text ?? ''));
}

beforeAll(async () => {
  const plane = controlPlane();
  core = plane.kubeConfig.makeApiClient(CoreV1Api);
  rbac = plane.kubeConfig.makeApiClient(RbacAuthorizationV1Api);
  authz = plane.kubeConfig.makeApiClient(AuthorizationV1Api);
  custom = plane.kubeConfig.makeApiClient(CustomObjectsApi);
  await applyCrds(kubeRest(plane));
  dir = mkdtempSync(join(tmpdir(), 'byline-identity-'));

  await core.createNamespace({ body: { metadata: { name: ns } } });
  // The sidecars enforce the collector's policy, which denies everything on a route that does not exist.
  await createDatabaseRoute(custom, ns);
  for (const sa of ['billing', 'intruder', 'loner', 'twin', 'late', 'auditor', 'byline-collector']) {
    await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: sa } } });
  }
  await agentIdentity('billing-reconciler', ['billing']);
  await agentIdentity('intruder-agent', ['intruder']);
  await agentIdentity('twin-a', ['twin']);
  await agentIdentity('twin-b', ['twin'], 'service');
  await pod('billing-0', 'billing');

  // The collector runs as its own service account with the documented rules and nothing more.
  await clusterRole(`byline-collector-${suffix}`, COLLECTOR_RBAC_RULES, 'byline-collector');
  await untilAllowed('byline-collector', [
    { group: 'authentication.k8s.io', resource: 'tokenreviews', verb: 'create' },
    { group: 'authorization.k8s.io', resource: 'subjectaccessreviews', verb: 'create' },
    { group: 'byline.dev', resource: 'agentidentities', verb: 'list', namespace: ns },
  ]);
  const collectorToken = await token('byline-collector', { audiences: [] });
  const kubeconfig = join(dir, 'collector.kubeconfig');
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
  collector = await startCollector(
    {
      listen: '127.0.0.1:0',
      store: `sqlite:${join(dir, 'trail.db')}`,
      // A short cache, so that an AgentIdentity created mid-test is seen within seconds.
      auth: { static: [{ token: STATIC_WRITER, identity: 'demo-agent' }], kubernetes: { kubeconfig, cacheSeconds: 2 } },
    },
    { logger: logger() },
  );
});

afterAll(async () => {
  for (const s of sidecars) await s.close();
  await collector?.close();
  await pgServer?.stop();
  for (const name of clusterScoped.bindings) await rbac.deleteClusterRoleBinding({ name }).catch(() => {});
  for (const name of clusterScoped.roles) await rbac.deleteClusterRole({ name }).catch(() => {});
  await core?.deleteNamespace({ name: ns }).catch(() => {});
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('identity from Kubernetes', () => {
  test('whoami: a pod-bound byline.dev token stands for the AgentIdentity claiming its service account', async () => {
    const r = await whoami(await token('billing', { pod: { name: 'billing-0', uid: await podUid('billing-0') } }));
    expect(r.status, r.text).toBe(200);
    expect(r.json).toEqual({ identity: billing });
    expect(r.headers['cache-control']).toBe('no-store');
  });

  test('whoami for a static writer says the whole identity it writes: kind agent and null placement unless configured', async () => {
    const r = await whoami(STATIC_WRITER);
    expect(r.json).toEqual({
      identity: {
        name: 'demo-agent',
        kind: 'agent',
        namespace: null,
        serviceAccount: null,
        pod: null,
        source: 'static',
      },
    });
  });

  test('a default-audience token is refused (401), for writing and for whoami', async () => {
    const t = await token('billing', { audiences: [] });
    const before = await metric('byline_collector_auth_refusals_total{reason="unauthenticated"}');
    const r = await whoami(t);
    expect(r.status).toBe(401);
    expect(r.headers['www-authenticate']).toMatch(/^Bearer/);
    expect(r.json).toMatchObject({ reason: 'unauthenticated', error: expect.stringMatching(/audience "byline\.dev"/) });
    const post = await call(collectorPort(), 'POST', '/v1/events', { token: t, body: '{}' });
    expect(post.status).toBe(401);
    expect(await metric('byline_collector_auth_refusals_total{reason="unauthenticated"}')).toBe(before + 2);
  });

  test('an unclaimed service account, or one claimed twice, writes for nobody (403, reason counted)', async () => {
    const unclaimed = await whoami(await token('loner'));
    expect(unclaimed.status).toBe(403);
    expect(unclaimed.json.error).toBe(
      `service account "loner" in namespace "${ns}" is claimed by no AgentIdentity (list it in the spec.serviceAccounts of one) (a gateway's service account needs RBAC "write" on gatewayevents.byline.dev instead)`,
    );
    const twice = await whoami(await token('twin'));
    expect(twice.status).toBe(403);
    expect(twice.json.error).toContain('claimed by several AgentIdentities ("twin-a", "twin-b")');
    expect(await metric('byline_collector_auth_refusals_total{reason="unclaimed"}')).toBeGreaterThanOrEqual(1);
    expect(await metric('byline_collector_auth_refusals_total{reason="claimed-twice"}')).toBeGreaterThanOrEqual(1);
  });

  test('a reader needs RBAC: 403 before a ClusterRoleBinding to a trail-reader ClusterRole, 200 after', async () => {
    readerToken = await token('auditor', { audiences: [] }); // a plain token for the API server, as kubectl has
    const denied = await call(collectorPort(), 'GET', '/v1/streams', { token: readerToken });
    expect(denied.status).toBe(403);
    expect(denied.json).toMatchObject({
      reason: 'reader-denied',
      error: expect.stringContaining(`"system:serviceaccount:${ns}:auditor" may not read the trail`),
    });
    await clusterRole(`byline-trail-reader-${suffix}`, TRAIL_READER_RBAC_RULES, 'auditor');
    const allowed = await eventually(async () => {
      const r = await call(collectorPort(), 'GET', '/v1/streams', { token: readerToken });
      expect(r.status, r.text).toBe(200);
      return r;
    }, 15_000);
    expect(allowed.json).toHaveProperty('streams');
    // A reader is no writer.
    expect((await whoami(readerToken)).status).toBe(401);
  });

  test('a sidecar with identity.kubernetes stamps the AgentIdentity on every statement in the trail', async () => {
    const tokenPath = join(dir, 'billing-token');
    writeFileSync(tokenPath, await token('billing', { pod: { name: 'billing-0', uid: await podUid('billing-0') } }));
    const sidecar = await startSidecar(sidecarConfig(tokenPath, 'billing'), { logger: logger() });
    sidecars.push(sidecar);
    expect(sidecar.identity()).toEqual(billing);
    const texts = ['select 1 as one', `select '${suffix}' as marker`];
    await run(sidecar, ...texts);
    const events = await eventually(async () => {
      const found = await trail(...texts);
      expect(found).toHaveLength(2);
      return found;
    }, 20_000);
    for (const e of events) expect(e.identity).toEqual(billing);
  });

  test('another service account’s token cannot write this identity’s events (403, counted by field)', async () => {
    const stored = await trail('select 1 as one');
    const line = canonicalJson(stored[0]); // the line the sidecar sent
    const uid = await pod('intruder-0', 'intruder');
    const intruder = await token('intruder', { pod: { name: 'intruder-0', uid } });
    const before = await metric('byline_collector_identity_mismatches_total{field="name"}');
    const r = await call(collectorPort(), 'POST', '/v1/events', { token: intruder, body: line });
    expect(r.status, r.text).toBe(403);
    expect(r.json.problems).toEqual([
      {
        line: 1,
        reason: 'identity',
        field: 'name',
        message: 'line 1: identity.name is "billing-reconciler", but this token writes only for "intruder-agent"',
      },
    ]);
    expect(await metric('byline_collector_identity_mismatches_total{field="name"}')).toBe(before + 1);

    // The same service account from another pod cannot write the first pod's events either.
    const other = await token('billing', { pod: { name: 'billing-9', uid: await pod('billing-9', 'billing') } });
    const fromOtherPod = await call(collectorPort(), 'POST', '/v1/events', { token: other, body: line });
    expect(fromOtherPod.status).toBe(403);
    expect(fromOtherPod.json.problems[0]).toMatchObject({ field: 'pod' });
    // Nor can a static writer, whatever its name.
    const fromStatic = await call(collectorPort(), 'POST', '/v1/events', { token: STATIC_WRITER, body: line });
    expect(fromStatic.status).toBe(403);
  });

  test('a token whose pod is gone is refused', async () => {
    const uid = await pod('doomed-0', 'billing');
    const t = await token('billing', { pod: { name: 'doomed-0', uid } });
    expect((await whoami(t)).status).toBe(200);
    await core.deleteNamespacedPod({ name: 'doomed-0', namespace: ns, body: { gracePeriodSeconds: 0 } });
    // Positive reviews are reused for cacheSeconds (2 here); then the API server says no.
    await eventually(async () => expect((await whoami(t)).status).toBe(401), 15_000);
  });

  test('the sidecar accepts no connection until the collector knows who it is, and follows a rotated token', async () => {
    const tokenPath = join(dir, 'late-token');
    const late0 = await pod('late-0', 'late');
    writeFileSync(tokenPath, await token('late', { pod: { name: 'late-0', uid: late0 } }));
    const port = await freePort();
    const aborted = new AbortController();
    let started: RunningSidecar | undefined;
    const starting = startSidecar(sidecarConfig(tokenPath, 'late', `127.0.0.1:${port}`), {
      logger: logger(),
      identityPollMs: 200,
      signal: aborted.signal,
    }).then((s) => {
      started = s;
      sidecars.push(s);
      return s;
    });
    try {
      // The service account is claimed by nobody yet: no identity, so no listener.
      await new Promise((r) => setTimeout(r, 1500));
      expect(started).toBeUndefined();
      expect(await refused(port)).toBe(true);
      await agentIdentity('late-agent', ['late'], 'service');
      const sidecar = await Promise.race([
        starting,
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error('sidecar did not start')), 20_000)),
      ]);
      const late = {
        name: 'late-agent',
        kind: 'service',
        namespace: ns,
        serviceAccount: 'late',
        pod: 'late-0',
        source: 'kubernetes',
      };
      expect(sidecar.identity()).toEqual(late);
      await run(sidecar, `select 'before rotation ${suffix}'`);
      // Everything shipped before the token changes (session end included): the collector holds
      // each batch to the identity of the token that sends it.
      await eventually(async () => expect(sidecar.sessions).toBe(0));
      await sidecar.flush();
      expect(await sidecar.shippers[0]!.drain(20_000)).toBe(true);

      // The kubelet rotates the token; here it is bound to another pod, so the change is visible.
      const late1 = await pod('late-1', 'late');
      writeFileSync(tokenPath, await token('late', { pod: { name: 'late-1', uid: late1 } }));
      await eventually(async () => expect(sidecar.identity().pod).toBe('late-1'), 15_000);
      await run(sidecar, `select 'after rotation ${suffix}'`);
      const after = await eventually(async () => {
        const found = await trail(`select 'after rotation ${suffix}'`);
        expect(found).toHaveLength(1);
        return found;
      }, 20_000);
      expect(after[0]!.identity).toEqual({ ...late, pod: 'late-1' });
      const before = await trail(`select 'before rotation ${suffix}'`);
      expect(before[0]!.identity).toEqual(late);
    } finally {
      aborted.abort();
      await starting.catch(() => {});
    }
  });
});

async function podUid(name: string): Promise<string> {
  return (await core.readNamespacedPod({ name, namespace: ns })).metadata!.uid!;
}

/** True when nothing accepts a TCP connection on the port. */
function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}
