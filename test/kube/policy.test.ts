/**
 * `/v1/policy` against the real API server: a collector running with exactly the documented RBAC
 * watches AgentIdentities, DatabaseRoutes and Approvals and serves a sidecar's token its effective
 * policy; a long-poll answers as soon as an object changes; the sidecar's PolicyClient applies it
 * to the engine (within 2 s) and keeps it when the collector goes away.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type AuditEvent,
  crds,
  type PolicyDocument,
  parsePolicyDocument,
  SidecarConfigSchema,
  validate,
} from '@byline/api';
import { COLLECTOR_RBAC_RULES, type RunningCollector, startCollector } from '@byline/collector';
import { startSidecar } from '@byline/sidecar';
import { AuthorizationV1Api, CoreV1Api, CustomObjectsApi, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { StatementAnalyzer } from '../../sidecar/src/policy/analyzer.js';
import { PolicyClient } from '../../sidecar/src/policy/client.js';
import { PolicyEngine } from '../../sidecar/src/policy/engine.js';
import { call } from '../collector/http.js';
import { AUTH_USERS, startPostgres, TEST_PASSWORD } from '../harness/postgres.js';
import { eventually } from '../harness/sidecar.js';
import { applyCrds } from './apply-crds.js';
import { controlPlane } from './control-plane.js';
import { kubeRest, type Rest, statusMessage } from './rest.js';

const suffix = randomBytes(4).toString('hex');
const ns = `policy-${suffix}`;
const STATIC_WRITER = 'static-writer-token-policy-0123456789';
const WAIT_SECONDS = 3;
const logger = () => pino({ level: process.env.BYLINE_TEST_LOG ?? 'silent' });

let core: CoreV1Api;
let rbac: RbacAuthorizationV1Api;
let custom: CustomObjectsApi;
let rest: Rest;
let collector: RunningCollector;
let dir: string;
let billingToken: string;
let analyzer: StatementAnalyzer;
const clusterScoped: { roles: string[]; bindings: string[] } = { roles: [], bindings: [] };

const group = { group: crds.GROUP, version: crds.VERSION, namespace: ns };

async function token(serviceAccount: string, audiences = ['byline.dev']): Promise<string> {
  const res = await core.createNamespacedServiceAccountToken({
    name: serviceAccount,
    namespace: ns,
    body: { spec: { audiences, expirationSeconds: 3600 } },
  });
  return res.status!.token;
}

async function setRoutes(routes: { name: string; access?: string }[]): Promise<void> {
  await custom.patchNamespacedCustomObject({
    ...group,
    plural: crds.AgentIdentityKind.plural,
    name: 'billing-reconciler',
    body: [{ op: 'replace', path: '/spec/routes', value: routes }],
  });
}

/** The Approval CRD, when the committed crds/ do not have it yet: enough schema to store spec and status. */
async function ensureApprovalCrd(): Promise<void> {
  const name = `approvals.${crds.GROUP}`;
  const path = `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`;
  if ((await rest('GET', path)).status === 200) return;
  const open = { type: 'object', 'x-kubernetes-preserve-unknown-fields': true };
  const res = await rest('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', {
    body: {
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name },
      spec: {
        group: crds.GROUP,
        scope: 'Namespaced',
        names: { plural: 'approvals', singular: 'approval', kind: 'Approval', listKind: 'ApprovalList' },
        versions: [
          {
            name: crds.VERSION,
            served: true,
            storage: true,
            subresources: { status: {} },
            schema: { openAPIV3Schema: { type: 'object', properties: { spec: open, status: open } } },
          },
        ],
      },
    },
  });
  if (res.status !== 201 && res.status !== 409) throw new Error(`creating ${name}: ${statusMessage(res)}`);
  await eventually(async () => {
    const crd = (await rest('GET', path)).body as { status?: { conditions?: { type: string; status: string }[] } };
    if (!crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True'))
      throw new Error('Approval CRD not established yet');
  }, 30_000);
}

async function approve(name: string, scope: unknown, expiresAt: Date): Promise<void> {
  await custom.createNamespacedCustomObject({
    ...group,
    plural: 'approvals',
    body: {
      apiVersion: crds.API_VERSION,
      kind: 'Approval',
      metadata: { name, namespace: ns },
      spec: {
        identity: 'billing-reconciler',
        route: 'orders-db',
        scope,
        reason: 'add an index',
        ticket: 'OPS-7',
        duration: '1h',
      },
    },
  });
  const res = await rest('PATCH', `/apis/${crds.GROUP}/${crds.VERSION}/namespaces/${ns}/approvals/${name}/status`, {
    contentType: 'application/merge-patch+json',
    body: { status: { phase: 'Approved', approvedBy: 'alice@example.com', expiresAt: expiresAt.toISOString() } },
  });
  if (res.status !== 200) throw new Error(`approving ${name}: ${statusMessage(res)}`);
}

const policy = (t: string, after?: string) =>
  call(collector.port, 'GET', `/v1/policy${after === undefined ? '' : `?after=${after}`}`, { token: t });

beforeAll(async () => {
  const plane = controlPlane();
  core = plane.kubeConfig.makeApiClient(CoreV1Api);
  rbac = plane.kubeConfig.makeApiClient(RbacAuthorizationV1Api);
  custom = plane.kubeConfig.makeApiClient(CustomObjectsApi);
  const authz = plane.kubeConfig.makeApiClient(AuthorizationV1Api);
  rest = kubeRest(plane);
  await applyCrds(rest);
  await ensureApprovalCrd();
  analyzer = await StatementAnalyzer.create();
  dir = mkdtempSync(join(tmpdir(), 'byline-policy-'));

  await core.createNamespace({ body: { metadata: { name: ns } } });
  for (const sa of ['billing', 'byline-collector'])
    await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: sa } } });
  await custom.createNamespacedCustomObject({
    ...group,
    plural: crds.AgentIdentityKind.plural,
    body: {
      apiVersion: crds.API_VERSION,
      kind: crds.AgentIdentityKind.kind,
      metadata: { name: 'billing-reconciler', namespace: ns },
      spec: { kind: 'agent', serviceAccounts: ['billing'], routes: [{ name: 'orders-db', access: 'read' }] },
    },
  });
  await custom.createNamespacedCustomObject({
    ...group,
    plural: crds.DatabaseRouteKind.plural,
    body: {
      apiVersion: crds.API_VERSION,
      kind: crds.DatabaseRouteKind.kind,
      metadata: { name: 'orders-db', namespace: ns },
      spec: {
        upstream: { host: 'orders.db.example.com', port: 5432, database: 'orders' },
        credentials: { secretRef: { name: 'orders-credentials' } },
        listenPort: 15432,
      },
    },
  });

  // The collector runs as its own service account with the documented rules and nothing more.
  const role = `byline-collector-policy-${suffix}`;
  await rbac.createClusterRole({ body: { metadata: { name: role }, rules: COLLECTOR_RBAC_RULES } });
  clusterScoped.roles.push(role);
  await rbac.createClusterRoleBinding({
    body: {
      metadata: { name: role },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
      subjects: [{ kind: 'ServiceAccount', name: 'byline-collector', namespace: ns }],
    },
  });
  clusterScoped.bindings.push(role);
  await eventually(async () => {
    for (const [resource, verb] of [
      ['agentidentities', 'watch'],
      ['databaseroutes', 'watch'],
      ['approvals', 'watch'],
    ] as const) {
      const review = await authz.createSubjectAccessReview({
        body: {
          spec: {
            user: `system:serviceaccount:${ns}:byline-collector`,
            resourceAttributes: { group: crds.GROUP, resource, verb },
          },
        },
      });
      if (!review.status?.allowed) throw new Error(`not yet allowed to ${verb} ${resource}`);
    }
  }, 15_000);
  const kubeconfig = join(dir, 'collector.kubeconfig');
  writeFileSync(
    kubeconfig,
    [
      'apiVersion: v1',
      'kind: Config',
      `clusters: [{ name: test, cluster: { server: "${plane.server}", certificate-authority: "${plane.caFile}" } }]`,
      `users: [{ name: collector, user: { token: "${await token('byline-collector', [])}" } }]`,
      'contexts: [{ name: test, context: { cluster: test, user: collector } }]',
      'current-context: test',
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  collector = await startCollector(
    {
      listen: '127.0.0.1:0',
      store: `sqlite:${join(dir, 'trail.db')}`,
      auth: { static: [{ token: STATIC_WRITER, identity: 'demo-agent' }], kubernetes: { kubeconfig, cacheSeconds: 2 } },
    },
    { logger: logger(), policyWaitSeconds: WAIT_SECONDS },
  );
  billingToken = await token('billing');
});

afterAll(async () => {
  await collector?.close();
  for (const name of clusterScoped.bindings) await rbac.deleteClusterRoleBinding({ name }).catch(() => {});
  for (const name of clusterScoped.roles) await rbac.deleteClusterRole({ name }).catch(() => {});
  await core?.deleteNamespace({ name: ns }).catch(() => {});
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('GET /v1/policy', () => {
  test("a sidecar's token gets its identity's effective policy", async () => {
    const r = await eventually(async () => {
      const answer = await policy(billingToken);
      if (answer.status === 503) throw new Error(answer.text);
      return answer;
    }, 15_000);
    expect(r.status, r.text).toBe(200);
    expect(r.headers['cache-control']).toBe('no-store');
    const doc = parsePolicyDocument(r.json);
    expect(doc.identity).toEqual({ name: 'billing-reconciler', namespace: ns });
    expect(doc.routes).toEqual([
      {
        name: 'orders-db',
        access: 'read',
        accessSource: `AgentIdentity ${ns}/billing-reconciler`,
        guardrails: [],
        approvals: [],
      },
    ]);
  });

  test('?after=<the current version> waits, and answers 304 when nothing changed', async () => {
    const current = (await policy(billingToken)).json as PolicyDocument;
    const started = Date.now();
    const r = await policy(billingToken, current.version);
    expect(r.status).toBe(304);
    expect(Date.now() - started).toBeGreaterThanOrEqual(WAIT_SECONDS * 1000 - 100);
  });

  test('a long-poll answers as soon as the AgentIdentity changes', async () => {
    const before = (await policy(billingToken)).json as PolicyDocument;
    const waiting = policy(billingToken, before.version);
    await new Promise((r) => setTimeout(r, 300));
    const changedAt = Date.now();
    await setRoutes([{ name: 'orders-db', access: 'readWrite' }]);
    const r = await waiting;
    expect(r.status, r.text).toBe(200);
    expect(Date.now() - changedAt).toBeLessThan(2000);
    expect((r.json as PolicyDocument).routes[0]!.access).toBe('readWrite');
    expect((r.json as PolicyDocument).version).not.toBe(before.version);
  });

  test('an Approved Approval appears in the document; a route without a DatabaseRoute is denied outright', async () => {
    const expiresAt = new Date(Date.now() + 3_600_000);
    await approve(`migrate-${suffix}`, { classes: ['ddl'], tables: ['public.invoices'] }, expiresAt);
    await setRoutes([
      { name: 'orders-db', access: 'admin' },
      { name: 'ghost-db', access: 'admin' },
    ]);
    const doc = await eventually(async () => {
      const d = (await policy(billingToken)).json as PolicyDocument;
      if (d.routes.length !== 2 || d.routes[0]!.approvals.length !== 1) throw new Error('not yet');
      return d;
    }, 5000);
    expect(doc.routes[0]!.approvals).toEqual([
      {
        name: `migrate-${suffix}`,
        scope: { classes: ['ddl'], tables: ['public.invoices'] },
        approvedBy: 'alice@example.com',
        reason: 'add an index',
        ticket: 'OPS-7',
        expiresAt: expiresAt.toISOString(),
      },
    ]);
    expect(doc.routes[1]!.guardrails).toEqual([
      {
        source: `DatabaseRoute ${ns}/ghost-db (not found)`,
        guardrails: { deny: { classes: ['read', 'write', 'ddl', 'role', 'tcl', 'misc'] } },
      },
    ]);
    await setRoutes([{ name: 'orders-db', access: 'readWrite' }]);
  });

  test('bad requests get clear errors', async () => {
    expect((await call(collector.port, 'GET', '/v1/policy')).status).toBe(401);
    const bad = await policy(billingToken, 'not-a-version');
    expect(bad.status).toBe(400);
    expect(bad.json.error).toMatch(/after: "not-a-version" is not a policy version/);
    const unknown = await call(collector.port, 'GET', '/v1/policy?watch=1', { token: billingToken });
    expect(unknown.status).toBe(400);
    const fromStatic = await policy(STATIC_WRITER);
    expect(fromStatic.status).toBe(404);
    expect(fromStatic.json.error).toMatch(
      /static identity takes routes\[\]\.access and guardrails from its own config/,
    );
    const reader = await policy(await token('billing', []));
    expect(reader.status).toBe(401);
  });
});

describe('a sidecar reporting a version it could not use (version skew)', () => {
  const rejections = async () => {
    const metric = await collector.metrics.policyRejections.get();
    return (
      metric.values.find((v) => v.labels.namespace === ns && v.labels.identity === 'billing-reconciler')?.value ?? 0
    );
  };

  test('?rejected=<version> is counted in byline_collector_policy_rejections_total for the caller’s identity only', async () => {
    const before = await rejections();
    const current = (await policy(billingToken)).json as PolicyDocument;
    // Unauthenticated or malformed reports are refused and not counted.
    expect((await call(collector.port, 'GET', '/v1/policy?rejected=abc123')).status).toBe(401);
    const bad = await call(collector.port, 'GET', '/v1/policy?rejected=NOT-HEX', { token: billingToken });
    expect(bad.status).toBe(400);
    expect(bad.json.error).toMatch(/rejected: "NOT-HEX" is not a policy version/);
    const twice = await call(collector.port, 'GET', '/v1/policy?rejected=ab&rejected=cd', { token: billingToken });
    expect(twice.status).toBe(400);
    expect(await rejections()).toBe(before);

    // The report rides on the next long-poll; the answer is still the policy.
    const r = await call(collector.port, 'GET', `/v1/policy?rejected=${current.version}`, { token: billingToken });
    expect(r.status, r.text).toBe(200);
    expect((r.json as PolicyDocument).version).toBe(current.version);
    expect(await rejections()).toBe(before + 1);
    const text = await collector.metrics.registry.getSingleMetricAsString('byline_collector_policy_rejections_total');
    expect(text).toContain(`byline_collector_policy_rejections_total{namespace="${ns}",identity="billing-reconciler"}`);
  });
});

describe('a running sidecar enforces the live policy', () => {
  test('DDL denied with the HINT; approved while the session is open, the next statement runs under it (within 2 s) and says so; at expiresAt the sidecar stops honouring it by its own clock', async () => {
    // The approval the previous test left would unlock DDL: this test starts without it.
    await custom
      .deleteNamespacedCustomObject({ ...group, plural: 'approvals', name: `migrate-${suffix}` })
      .catch(() => {});
    await setRoutes([{ name: 'orders-db', access: 'admin' }]);
    await custom.patchNamespacedCustomObject({
      ...group,
      plural: crds.AgentIdentityKind.plural,
      name: 'billing-reconciler',
      body: [{ op: 'add', path: '/spec/guardrails', value: { requireApproval: { classes: ['ddl'] } } }],
    });
    const db = await startPostgres();
    const tokenPath = join(dir, 'billing.token');
    writeFileSync(tokenPath, billingToken);
    writeFileSync(join(dir, 'password'), `${TEST_PASSWORD}\n`);
    const auditFile = join(dir, 'sidecar-audit.jsonl');
    const sidecar = await startSidecar(
      validate(
        SidecarConfigSchema,
        {
          identity: { kubernetes: { tokenPath, collector: { url: collector.url } } },
          routes: [
            {
              name: 'orders-db',
              listen: '127.0.0.1:0',
              upstream: { host: db.host, port: db.port, database: 'postgres', sslMode: 'disable' },
              credentials: {
                mode: 'inject',
                username: AUTH_USERS.scram,
                passwordFile: join(dir, 'password'),
                acceptAnyUser: true,
              },
            },
          ],
          audit: { params: 'redacted', sinks: [{ file: auditFile }] },
        },
        'policy test sidecar config',
      ),
      { logger: logger() },
    );
    const client = new pg.Client({
      host: sidecar.routes[0]!.host,
      port: sidecar.routes[0]!.port,
      user: 'agent',
      database: 'postgres',
    });
    try {
      await eventually(async () => {
        if (sidecar.policy.document?.routes[0]?.guardrails.length !== 1)
          throw new Error('the gate is not in force yet');
      }, 5000);
      await client.connect();
      const ddl = (n: number) => client.query(`create table gated_${suffix}_${n} (a int)`);
      const denied = await ddl(0).then(
        () => null,
        (e: { code?: string; message: string; hint?: string }) => e,
      );
      expect(denied?.code).toBe('42501');
      expect(denied?.message).toBe(
        `byline: CREATE TABLE needs an approval for billing-reconciler by AgentIdentity ${ns}/billing-reconciler guardrails.requireApproval (ddl); none is active`,
      );
      expect(denied?.hint).toContain(
        `byline approval request --namespace ${ns} --identity billing-reconciler --route orders-db --scope ddl `,
      );

      const expiresAt = new Date(Date.now() + 8000);
      const approvedAt = Date.now();
      await approve(`ddl-${suffix}`, { classes: ['ddl'] }, expiresAt);
      // The same open session: its next statement runs under the approval within 2 s.
      let n = 1;
      await eventually(() => ddl(n++), 2000);
      expect(Date.now() - approvedAt).toBeLessThan(2000);

      const ran = await eventually(async () => {
        await sidecar.flush();
        const events = readFileSync(auditFile, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as AuditEvent);
        const ok = events.filter((e) => e.type === 'statement' && e.result?.status === 'ok');
        if (ok.length === 0) throw new Error('no statement ran yet');
        return { ok, denied: events.filter((e) => e.result?.status === 'denied') };
      });
      expect(ran.ok[0]!.authz).toEqual({
        approval: {
          approvedBy: 'alice@example.com',
          expiresAt: expiresAt.toISOString(),
          name: `ddl-${suffix}`,
          reason: 'add an index',
          ticket: 'OPS-7',
        },
        decision: 'allow',
        rule: `AgentIdentity ${ns}/billing-reconciler guardrails.requireApproval`,
      });
      expect(ran.ok[0]!.identity).toMatchObject({ name: 'billing-reconciler', source: 'kubernetes' });
      expect(ran.denied[0]!.authz).toMatchObject({ decision: 'deny', approval: null });
      // Every policy the collector sent was applied and counted: the first, and the one with the approval.
      const updates = await sidecar.metrics.registry.getSingleMetricAsString('byline_policy_updates_total');
      expect(Number(/result="applied"} (\d+)/.exec(updates)?.[1])).toBeGreaterThanOrEqual(2);

      // Nothing changes in the API (no operator marks it Expired here): the sidecar's clock decides.
      await new Promise((r) => setTimeout(r, Math.max(0, expiresAt.getTime() - Date.now()) + 50));
      await expect(ddl(100)).rejects.toMatchObject({ code: '42501', message: expect.stringMatching(/none is active/) });
    } finally {
      await client.end().catch(() => {});
      await sidecar.close();
      await db.stop();
      await custom.patchNamespacedCustomObject({
        ...group,
        plural: crds.AgentIdentityKind.plural,
        name: 'billing-reconciler',
        body: [{ op: 'remove', path: '/spec/guardrails' }],
      });
      await setRoutes([{ name: 'orders-db', access: 'readWrite' }]);
    }
  });
});

describe("the sidecar's policy client", () => {
  test('applies the first policy, picks up a change within 2 s, and keeps the last one when the collector goes away', async () => {
    const engine = new PolicyEngine();
    const analysis = analyzer.analyze('DELETE FROM orders WHERE id = 1');
    const allowed = () => engine.decideAll('orders-db', analysis, Date.now())[0]!.allow;
    expect(allowed()).toBe(false); // no policy yet: fail closed
    const updates: string[] = [];
    const client = await PolicyClient.start({
      url: collector.url,
      token: () => billingToken,
      logger: logger(),
      engine,
      onUpdate: (result) => updates.push(result),
    });
    try {
      expect(allowed()).toBe(true); // readWrite, as the previous test left it
      const changedAt = Date.now();
      await setRoutes([{ name: 'orders-db', access: 'read' }]);
      await eventually(async () => {
        if (allowed()) throw new Error('still allowed');
      }, 2000);
      expect(Date.now() - changedAt).toBeLessThan(2000);
      expect(engine.decideAll('orders-db', analysis, Date.now())[0]!.rule).toBe(
        `AgentIdentity ${ns}/billing-reconciler routes[orders-db].access=read`,
      );
      expect(updates).toEqual(['applied', 'applied']);

      // Stopping ends the long-polls at once (no waiting out a sidecar's kept-alive connection).
      const closing = Date.now();
      await collector.close();
      expect(Date.now() - closing).toBeLessThan(2000);
      await eventually(async () => {
        if (client.stats.failures < 2) throw new Error('the client has not noticed yet');
      }, 10_000);
      expect(engine.document?.routes[0]?.access).toBe('read');
      expect(allowed()).toBe(false);
      expect(engine.decideAll('orders-db', analyzer.analyze('SELECT 1'), Date.now())[0]!.allow).toBe(true);
    } finally {
      await client.stop();
    }
  });
});
