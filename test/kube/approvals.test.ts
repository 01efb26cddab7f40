/**
 * Approvals on the real API server, with the operator's webhook registered and three people, each
 * with a client certificate of the test CA and bound to the chart's own ClusterRoles:
 *
 *   alice  byline-requester + byline-approver (so that only the self-approval rule can stop her)
 *   bob    byline-approver
 *   carol  byline-requester + a Role that may write approvals/status, without the approve verb
 *
 * They use the CLI (`byline approval request`, `byline approve`, `byline deny`) through their own
 * kubeconfigs, and raw requests where the CLI would not send what a hostile client might.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { type Approval, type AuditEvent, POLICY_FIELDS_HEADER, SidecarConfigSchema, validate } from '@byline/api';
import { type RunningCollector, startCollector } from '@byline/collector';
import { type RunningOperator, startOperator } from '@byline/operator';
import { type RunningSidecar, startSidecar } from '@byline/sidecar';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decideApproval, listApprovals, requestApproval } from '../../cli/src/approval.js';
import { parseCommand } from '../../cli/src/command-table.js';
import { COMMANDS } from '../../cli/src/commands.js';
import { trail } from '../../cli/src/trail.js';
import { buildHelm, findHelm } from '../chart/helm.js';
import { render } from '../chart/render.js';
import { call } from '../collector/http.js';
import { freePort } from '../harness/net.js';
import { AUTH_USERS, startPostgres, TEST_PASSWORD, type TestPostgres } from '../harness/postgres.js';
import { applyCrds } from './apply-crds.js';
import { controlPlane } from './control-plane.js';
import { kubeRest, type Rest, statusMessage } from './rest.js';

const logger = pino({ level: process.env.BYLINE_TEST_LOG ?? 'silent' });
const suffix = randomBytes(3).toString('hex');
const operatorNs = `byline-approp-${suffix}`;
const ns = `approvals-${suffix}`;
const testLabel = { 'byline.dev/approvals-test': suffix };
const webhookConfig = `byline-pod-injector-apprtest-${suffix}`;
const API = '/apis/byline.dev/v1alpha1';
const people = ['alice', 'bob', 'carol'] as const;
type Person = (typeof people)[number];

let rest: Rest;
let operator: RunningOperator;
let dir: string;
let server: string;
let caFile: string;
const kubeconfigs = {} as Record<Person, string>;

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

/** A client certificate of the test CA for `name` (the API server takes the CN as the user name). */
function personKubeconfig(name: Person): string {
  const caKey = join(dirname(caFile), 'ca.key');
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  run(
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-subj',
    `/CN=${name}`,
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.csr`,
  );
  writeFileSync(join(dir, `${name}.ext`), 'extendedKeyUsage=clientAuth\n');
  run(
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    caFile,
    '-CAkey',
    caKey,
    '-CAcreateserial',
    '-CAserial',
    join(dir, 'ca.srl'),
    '-days',
    '1',
    '-extfile',
    `${name}.ext`,
    '-out',
    `${name}.crt`,
  );
  const b64 = (f: string) => readFileSync(f).toString('base64');
  const path = join(dir, `${name}.kubeconfig`);
  writeFileSync(
    path,
    [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      '- name: test',
      `  cluster: { server: "${server}", certificate-authority-data: ${b64(caFile)} }`,
      'users:',
      `- name: ${name}`,
      `  user: { client-certificate-data: ${b64(join(dir, `${name}.crt`))}, client-key-data: ${b64(join(dir, `${name}.key`))} }`,
      'contexts:',
      `- name: ${name}`,
      `  context: { cluster: test, user: ${name}, namespace: ${ns} }`,
      `current-context: ${name}`,
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  return path;
}

/** A raw request as one person: for what the CLI never sends (forged fields). */
function as(person: Person, method: string, path: string, body?: unknown, patch = false) {
  return new Promise<{ status: number; message: string; body: unknown }>((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      `${server}${path}`,
      {
        method,
        ca: readFileSync(caFile),
        cert: readFileSync(join(dir, `${person}.crt`)),
        key: readFileSync(join(dir, `${person}.key`)),
        headers: {
          accept: 'application/json',
          ...(payload ? { 'content-type': patch ? 'application/merge-patch+json' : 'application/json' } : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const parsed = JSON.parse(Buffer.concat(chunks).toString() || '{}');
          resolve({ status: res.statusCode ?? 0, message: String(parsed.message ?? ''), body: parsed });
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/** Runs a CLI command in this process; its output, or the error it ended with. */
async function cli(run: (out: NodeJS.WritableStream) => Promise<number>): Promise<{ code: number; out: string }> {
  let out = '';
  const sink = {
    write: (s: string) => {
      out += s;
      return true;
    },
  } as unknown as NodeJS.WritableStream;
  try {
    return { code: await run(sink), out };
  } catch (err) {
    return { code: 1, out: (err as Error).message };
  }
}

/** The arguments as `byline NAME …` parses them, from the same command table. */
const parsed = (name: string, args: string[]) => parseCommand(COMMANDS.find((c) => c.name === name)!, args);

const kc = (p: Person) => ['--kubeconfig', kubeconfigs[p]];

async function requestAs(person: Person, extra: string[] = ['--for', '2h']): Promise<string> {
  const r = await cli((out) =>
    requestApproval(
      parsed('approval request', [
        ...kc(person),
        '--identity',
        'migrator',
        '--route',
        'orders-db',
        '--scope',
        'ddl',
        '--reason',
        'add a column',
        '--ticket',
        'CHG-42',
        ...extra,
      ]),
      out,
    ),
  );
  expect(r.code, r.out).toBe(0);
  const name = /approval \S+\/(\S+) requested by/.exec(r.out)?.[1];
  expect(name, r.out).toBeDefined();
  return name!;
}

const get = async (name: string) => (await ok('GET', `${API}/namespaces/${ns}/approvals/${name}`)) as Approval;

beforeAll(async () => {
  const plane = controlPlane();
  rest = kubeRest(plane);
  server = plane.server;
  caFile = plane.caFile;
  dir = mkdtempSync(join(tmpdir(), 'byline-approvals-'));
  await applyCrds(rest);
  await ok('POST', '/api/v1/namespaces', { metadata: { name: operatorNs } });
  await ok('POST', '/api/v1/namespaces', { metadata: { name: ns, labels: testLabel } });

  // The chart's own ClusterRoles, as Helm renders them for a release named byline.
  const helmBin = findHelm() ?? (await buildHelm());
  const roles = render(helmBin, { release: 'byline', namespace: 'byline' }).filter(
    (m) => m.kind === 'ClusterRole' && ['byline-requester', 'byline-approver'].includes(m.metadata.name),
  );
  expect(roles).toHaveLength(2);
  for (const role of roles) {
    await rest('DELETE', `/apis/rbac.authorization.k8s.io/v1/clusterroles/${role.metadata.name}`);
    await ok('POST', '/apis/rbac.authorization.k8s.io/v1/clusterroles', role);
  }
  await ok('POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/roles`, {
    metadata: { name: 'status-writer' },
    rules: [{ apiGroups: ['byline.dev'], resources: ['approvals/status'], verbs: ['get', 'update', 'patch'] }],
  });
  const bind = (user: Person, kind: 'ClusterRole' | 'Role', role: string) =>
    ok('POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings`, {
      metadata: { name: `${user}-${role}` },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind, name: role },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: user }],
    });
  await bind('alice', 'ClusterRole', 'byline-requester');
  await bind('alice', 'ClusterRole', 'byline-approver');
  await bind('bob', 'ClusterRole', 'byline-approver');
  await bind('carol', 'ClusterRole', 'byline-requester');
  await bind('carol', 'Role', 'status-writer');
  for (const p of people) kubeconfigs[p] = personKubeconfig(p);

  await ok('POST', `${API}/namespaces/${ns}/agentidentities`, {
    apiVersion: 'byline.dev/v1alpha1',
    kind: 'AgentIdentity',
    metadata: { name: 'migrator' },
    spec: {
      kind: 'agent',
      serviceAccounts: ['migrator'],
      routes: [{ name: 'orders-db', access: 'admin' }],
      guardrails: { requireApproval: { classes: ['ddl'] } },
    },
  });

  const port = await freePort();
  operator = await startOperator({
    kubeconfig: plane.kubeconfigPath,
    namespace: operatorNs,
    webhookListen: `127.0.0.1:${port}`,
    webhookUrl: `https://127.0.0.1:${port}`,
    webhookConfigurationName: webhookConfig,
    webhookNamespaceLabels: testLabel,
    metricsListen: '127.0.0.1:0',
    image: 'ghcr.io/byline-dev/byline:approvals-test',
    collectorUrl: 'http://collector.byline.svc:8080',
    leaderElection: false,
    logger,
  });
  // RBAC and the webhook registration reach the API server's caches a moment later.
  await waitFor('the approvals webhook to answer', async () => {
    const res = await as('alice', 'POST', `${API}/namespaces/${ns}/approvals?dryRun=All`, {
      apiVersion: 'byline.dev/v1alpha1',
      kind: 'Approval',
      metadata: { name: 'probe' },
      spec: { identity: 'migrator', route: 'orders-db', scope: { classes: ['ddl'] }, reason: 'probe', duration: '1h' },
    });
    return res.status === 201 && (res.body as Approval).spec.requestedBy === 'alice' ? true : undefined;
  });
}, 120_000);

afterAll(async () => {
  await operator?.close();
  for (const name of [webhookConfig, `${webhookConfig}-approvals`])
    await rest?.('DELETE', `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${name}`);
  await rest?.('DELETE', `/api/v1/namespaces/${ns}`);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('Approvals on the real API server', () => {
  it('stamps who asked from the authenticated user; the operator marks it Pending', async () => {
    const name = await requestAs('carol');
    const stored = await get(name);
    expect(stored.spec).toMatchObject({
      identity: 'migrator',
      route: 'orders-db',
      scope: { classes: ['ddl'] },
      ticket: 'CHG-42',
      duration: '2h',
      requestedBy: 'carol',
    });
    const pending = await waitFor('phase Pending', async () => {
      const a = await get(name);
      return a.status?.phase === 'Pending' ? a : undefined;
    });
    expect(pending.status).toEqual({ phase: 'Pending', requestedBy: 'carol' });
    const listed = await cli((out) => listApprovals(parsed('approval list', ['--pending', ...kc('bob')]), out));
    expect(listed.out).toMatch(new RegExp(`${name}\\s+migrator\\s+orders-db\\s+ddl\\s+Pending\\s+carol`));
    // kubectl's view: the printer columns.
    const table = await rest('GET', `${API}/namespaces/${ns}/approvals/${name}`, {
      accept: 'application/json;as=Table;g=meta.k8s.io;v=v1',
    });
    const columns = (table.body as { columnDefinitions: { name: string }[] }).columnDefinitions.map((c) => c.name);
    expect(columns).toEqual(
      expect.arrayContaining(['Identity', 'Route', 'Phase', 'Requested By', 'Approved By', 'Expires']),
    );
  });

  it('a client cannot forge requestedBy, at creation or afterwards', async () => {
    const forged = await as('carol', 'POST', `${API}/namespaces/${ns}/approvals`, {
      apiVersion: 'byline.dev/v1alpha1',
      kind: 'Approval',
      metadata: { name: `forged-${suffix}` },
      spec: {
        identity: 'migrator',
        route: 'orders-db',
        scope: { classes: ['ddl'] },
        reason: 'x',
        duration: '1h',
        requestedBy: 'bob',
      },
    });
    expect(forged.status).toBe(403);
    expect(forged.message).toMatch(/spec\.requestedBy is stamped by Byline .*you are "carol"/);

    // A status sent with the object is dropped by the API server (status subresource), not kept.
    const preset = await as('carol', 'POST', `${API}/namespaces/${ns}/approvals`, {
      apiVersion: 'byline.dev/v1alpha1',
      kind: 'Approval',
      metadata: { name: `preset-${suffix}` },
      spec: { identity: 'migrator', route: 'orders-db', scope: { classes: ['ddl'] }, reason: 'x', duration: '1h' },
      status: { phase: 'Approved', approvedBy: 'bob', expiresAt: '2030-01-01T00:00:00Z' },
    });
    expect(preset.status).toBe(201);
    expect((preset.body as Approval).status?.approvedBy).toBeUndefined();
    const settled = await waitFor('phase Pending', async () => {
      const a = await get(`preset-${suffix}`);
      return a.status?.phase ? a : undefined;
    });
    expect(settled.status).toEqual({ phase: 'Pending', requestedBy: 'carol' });

    const name = await requestAs('carol');
    // The spec is immutable (CEL), requestedBy included; the admin cannot change it either. (Once the
    // operator has written Pending, so that the PUT is not refused as stale instead.)
    const stored = await waitFor('phase Pending', async () => {
      const a = await get(name);
      return a.status?.phase ? a : undefined;
    });
    const edit = await rest('PUT', `${API}/namespaces/${ns}/approvals/${name}`, {
      body: { ...stored, spec: { ...stored.spec, requestedBy: 'bob' } },
    });
    expect(edit.status).toBe(422);
    expect(statusMessage(edit)).toMatch(/spec is immutable/);
    const status = await as(
      'carol',
      'PATCH',
      `${API}/namespaces/${ns}/approvals/${name}/status`,
      { status: { requestedBy: 'bob' } },
      true,
    );
    expect(status.status).toBe(403);
    expect(status.message).toMatch(/status\.requestedBy is stamped by Byline/);
  });

  it('the requester can never approve their own request, even holding the approve verb', async () => {
    const name = await requestAs('alice');
    const r = await cli((out) => decideApproval('Approved', parsed('approve', [name, ...kc('alice')]), out));
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/"alice" requested Approval .* and cannot approve it/);
    expect((await get(name)).status?.phase ?? 'Pending').toBe('Pending');
  });

  it('approving without the approve verb is refused, even with write access to the status', async () => {
    const name = await requestAs('alice');
    const r = await cli((out) => decideApproval('Approved', parsed('approve', [name, ...kc('carol')]), out));
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/"carol" may not decide .* needs the "approve" verb on approvals\.byline\.dev/);
    // Nor may carol write the approver's name herself.
    const forged = await as(
      'carol',
      'PATCH',
      `${API}/namespaces/${ns}/approvals/${name}/status`,
      { status: { approvedBy: 'bob', expiresAt: '2030-01-01T00:00:00Z' } },
      true,
    );
    expect(forged.status).toBe(403);
    expect(forged.message).toMatch(/status\.(approvedBy|expiresAt) is stamped by Byline/);
    expect((await get(name)).status?.approvedBy).toBeUndefined();
  });

  it('another person with the verb approves: approvedBy, decidedAt and expiresAt are stamped and cannot be edited', async () => {
    const name = await requestAs('alice');
    const before = Date.now();
    const r = await cli((out) =>
      decideApproval('Approved', parsed('approve', [name, '--reason', 'reviewed in CAB', ...kc('bob')]), out),
    );
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/approved by bob until /);
    const a = await get(name);
    expect(a.status).toMatchObject({
      phase: 'Approved',
      requestedBy: 'alice',
      approvedBy: 'bob',
      decisionReason: 'reviewed in CAB',
    });
    const expires = Date.parse(a.status!.expiresAt!);
    expect(expires).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 + 2 * 3600_000);
    expect(expires).toBeLessThanOrEqual(Date.now() + 2 * 3600_000);
    const edit = await as(
      'bob',
      'PATCH',
      `${API}/namespaces/${ns}/approvals/${name}/status`,
      { status: { approvedBy: 'the-ciso' } },
      true,
    );
    expect(edit.status).toBe(403);
    expect(edit.message).toMatch(/status\.approvedBy is stamped by Byline/);
    const again = await cli((out) => decideApproval('Approved', parsed('approve', [name, ...kc('bob')]), out));
    expect(again.code).toBe(0); // same phase: nothing changes
    expect((await get(name)).status?.decidedAt).toBe(a.status?.decidedAt);
  });

  it('deny: stamped deniedBy, and a denied approval cannot be approved later', async () => {
    const name = await requestAs('alice');
    expect((await cli((out) => decideApproval('Denied', parsed('deny', [name, ...kc('bob')]), out))).code).toBe(0);
    expect((await get(name)).status).toMatchObject({ phase: 'Denied', deniedBy: 'bob' });
    const r = await cli((out) => decideApproval('Approved', parsed('approve', [name, ...kc('bob')]), out));
    expect(r.out).toMatch(/status\.phase cannot change from Denied to Approved/);
  });

  it('expires at expiresAt: the operator moves it to Expired, and nobody can expire it early', async () => {
    const early = await requestAs('alice', ['--for', '1h']);
    expect((await cli((out) => decideApproval('Approved', parsed('approve', [early, ...kc('bob')]), out))).code).toBe(
      0,
    );
    const res = await as(
      'bob',
      'PATCH',
      `${API}/namespaces/${ns}/approvals/${early}/status`,
      { status: { phase: 'Expired' } },
      true,
    );
    expect(res.status).toBe(403);
    expect(res.message).toMatch(/cannot expire before/);

    const name = await requestAs('alice', ['--for', '3s']);
    expect((await cli((out) => decideApproval('Approved', parsed('approve', [name, ...kc('bob')]), out))).code).toBe(0);
    const approved = await get(name);
    expect(approved.status?.phase).toBe('Approved');
    const expired = await waitFor(
      'phase Expired',
      async () => {
        const a = await get(name);
        return a.status?.phase === 'Expired' ? a : undefined;
      },
      15_000,
    );
    expect(Date.now()).toBeGreaterThanOrEqual(Date.parse(approved.status!.expiresAt!));
    expect(expired.status).toMatchObject({ approvedBy: 'bob', expiresAt: approved.status?.expiresAt });
  });

  it("reports guardrail conflicts in the AgentIdentity's Ready condition", async () => {
    await ok('POST', `/api/v1/namespaces/${ns}/secrets`, {
      metadata: { name: 'orders-db-app' },
      stringData: { username: 'app', password: 'pw' },
    });
    await ok('POST', `${API}/namespaces/${ns}/databaseroutes`, {
      apiVersion: 'byline.dev/v1alpha1',
      kind: 'DatabaseRoute',
      metadata: { name: 'orders-db' },
      spec: {
        upstream: { host: 'orders.db.svc', database: 'orders' },
        credentials: { secretRef: { name: 'orders-db-app' } },
        listenPort: 15432,
        guardrails: { deny: { classes: ['ddl'] } },
      },
    });
    await ok('POST', `${API}/namespaces/${ns}/agentidentities`, {
      apiVersion: 'byline.dev/v1alpha1',
      kind: 'AgentIdentity',
      metadata: { name: 'conflicted' },
      spec: {
        kind: 'agent',
        serviceAccounts: ['conflicted'],
        routes: [{ name: 'orders-db', access: 'admin' }],
        guardrails: { requireApproval: { classes: ['ddl'] } },
      },
    });
    const ready = await waitFor('Ready reason GuardrailConflict', async () => {
      const i = (await ok('GET', `${API}/namespaces/${ns}/agentidentities/conflicted`)) as {
        status?: { conditions?: { type: string; status: string; reason: string; message: string }[] };
      };
      const c = i.status?.conditions?.find((x) => x.type === 'Ready');
      return c?.reason === 'GuardrailConflict' ? c : undefined;
    });
    expect(ready.message).toBe(
      'routes[orders-db]: class "ddl" is both denied and approval-gated; deny wins, no approval can unlock it',
    );
  });

  it('refuses an unknown route, an unknown class and a malformed table pattern, naming the field', async () => {
    const body = (spec: Record<string, unknown>) => ({
      apiVersion: 'byline.dev/v1alpha1',
      kind: 'Approval',
      metadata: { generateName: 'bad-' },
      spec: {
        identity: 'migrator',
        route: 'orders-db',
        scope: { classes: ['ddl'] },
        reason: 'x',
        duration: '1h',
        ...spec,
      },
    });
    const route = await as('alice', 'POST', `${API}/namespaces/${ns}/approvals`, body({ route: 'hr-db' }));
    expect(route.message).toMatch(/spec\.route: AgentIdentity .*\/migrator has no route "hr-db"/);
    const identity = await as('alice', 'POST', `${API}/namespaces/${ns}/approvals`, body({ identity: 'ghost' }));
    expect(identity.message).toMatch(/spec\.identity: AgentIdentity "ghost" not found/);
    const cls = await as('alice', 'POST', `${API}/namespaces/${ns}/approvals`, body({ scope: { classes: ['dcl'] } }));
    expect(cls.status).toBe(422);
    expect(cls.message).toMatch(/spec\.scope\.classes\[0\]: Unsupported value: "dcl"/);
    const glob = await as(
      'alice',
      'POST',
      `${API}/namespaces/${ns}/approvals`,
      body({ scope: { tables: ['public.'] } }),
    );
    expect(glob.status).toBe(422);
    expect(glob.message).toMatch(/spec\.scope\.tables\[0\]: .*a table pattern is "table" or "schema\.table"/);
    const both = await as(
      'alice',
      'POST',
      `${API}/namespaces/${ns}/approvals`,
      body({ notAfter: '2030-01-01T00:00:00Z' }),
    );
    expect(both.message).toMatch(/give spec\.duration or spec\.notAfter \(exactly one\)/);

    // The same rules on the guardrails of AgentIdentity and DatabaseRoute.
    const identityRes = await rest('POST', `${API}/namespaces/${ns}/agentidentities`, {
      body: {
        apiVersion: 'byline.dev/v1alpha1',
        kind: 'AgentIdentity',
        metadata: { name: 'bad-guardrails' },
        spec: {
          kind: 'agent',
          serviceAccounts: ['x'],
          routes: [{ name: 'orders-db' }],
          guardrails: { deny: { classes: ['dcl'], tables: ['pay roll'] }, requireWhere: ['select'] },
        },
      },
    });
    expect(identityRes.status).toBe(422);
    const m = statusMessage(identityRes);
    expect(m).toMatch(/spec\.guardrails\.deny\.classes\[0\]: Unsupported value: "dcl"/);
    // With other errors in the object the API server skips CEL; the pattern still names the field.
    expect(m).toMatch(/spec\.guardrails\.deny\.tables\[0\]: Invalid value: "pay roll"/);
    expect(m).toMatch(/spec\.guardrails\.requireWhere\[0\]: Unsupported value: "select"/);
    const routeRes = await rest('POST', `${API}/namespaces/${ns}/databaseroutes`, {
      body: {
        apiVersion: 'byline.dev/v1alpha1',
        kind: 'DatabaseRoute',
        metadata: { name: 'bad-guardrails' },
        spec: {
          upstream: { host: 'db.svc', database: 'orders' },
          credentials: { secretRef: { name: 's' } },
          listenPort: 15432,
          guardrails: { requireApproval: { tables: ['a.b.c'] } },
        },
      },
    });
    expect(routeRes.status).toBe(422);
    expect(statusMessage(routeRes)).toMatch(/spec\.guardrails\.requireApproval\.tables\[0\]: .*a table pattern is/);
  });
});

/**
 * The whole way: alice asks through her kubeconfig, bob approves through his, the collector serves
 * the approval (with who asked) to a running sidecar, the statement runs under it, and the stored
 * event, `byline trail` and the policy document name both people.
 */
describe('who asked and who approved, in the stored trail', () => {
  const READER = 'reader-token-approvals-0123456789';
  let db: TestPostgres;
  let collector: RunningCollector;
  let sidecar: RunningSidecar;
  let sidecarToken: string;

  beforeAll(async () => {
    await ok('POST', `/api/v1/namespaces/${ns}/serviceaccounts`, { metadata: { name: 'reporter' } });
    await ok('POST', `${API}/namespaces/${ns}/databaseroutes`, {
      apiVersion: 'byline.dev/v1alpha1',
      kind: 'DatabaseRoute',
      metadata: { name: 'ledger-db' },
      spec: {
        upstream: { host: 'ledger.db.svc', database: 'ledger' },
        credentials: { secretRef: { name: 'ledger-db-app' } },
        listenPort: 15433,
      },
    });
    await ok('POST', `${API}/namespaces/${ns}/agentidentities`, {
      apiVersion: 'byline.dev/v1alpha1',
      kind: 'AgentIdentity',
      metadata: { name: 'reporter' },
      spec: {
        kind: 'agent',
        serviceAccounts: ['reporter'],
        routes: [{ name: 'ledger-db', access: 'admin' }],
        guardrails: { requireApproval: { classes: ['ddl'] } },
      },
    });
    const tokenRequest = (await ok('POST', `/api/v1/namespaces/${ns}/serviceaccounts/reporter/token`, {
      spec: { audiences: ['byline.dev'], expirationSeconds: 3600 },
    })) as { status: { token: string } };
    sidecarToken = tokenRequest.status.token;
    const tokenPath = join(dir, 'reporter.token');
    writeFileSync(tokenPath, sidecarToken);
    writeFileSync(join(dir, 'reader.token'), READER);
    writeFileSync(join(dir, 'password'), `${TEST_PASSWORD}\n`);

    db = await startPostgres();
    collector = await startCollector(
      {
        listen: '127.0.0.1:0',
        store: `sqlite:${join(dir, 'trail.db')}`,
        auth: {
          static: [{ token: READER, reader: true }],
          kubernetes: { kubeconfig: controlPlane().kubeconfigPath, cacheSeconds: 2 },
        },
      },
      { logger, policyWaitSeconds: 2 },
    );
    sidecar = await startSidecar(
      validate(
        SidecarConfigSchema,
        {
          identity: { kubernetes: { tokenPath, collector: { url: collector.url } } },
          routes: [
            {
              name: 'ledger-db',
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
          audit: {
            params: 'redacted',
            spoolDir: join(dir, 'spool'),
            sinks: [{ collector: { url: collector.url, tokenFile: tokenPath } }],
          },
        },
        'approvals test sidecar',
      ),
      { logger },
    );
  }, 120_000);

  afterAll(async () => {
    await sidecar?.close();
    await collector?.close();
    await db?.stop();
  });

  it('a statement run under an approval alice requested and bob approved names both, in the event and in byline trail', async () => {
    await waitFor('the gate in force at the sidecar', async () =>
      sidecar.policy.document?.routes[0]?.guardrails.length === 1 ? true : undefined,
    );
    const route = sidecar.routes[0]!;
    const client = new pg.Client({ host: route.host, port: route.port, user: 'agent', database: 'postgres' });
    await client.connect();
    const ddl = `create table requested_${suffix} (a int)`;
    try {
      await expect(client.query(ddl)).rejects.toMatchObject({ code: '42501' });

      const asked = await cli((out) =>
        requestApproval(
          parsed('approval request', [
            ...kc('alice'),
            '--identity',
            'reporter',
            '--route',
            'ledger-db',
            '--scope',
            'ddl',
            '--reason',
            'a table for the report',
            '--for',
            '1h',
          ]),
          out,
        ),
      );
      expect(asked.code, asked.out).toBe(0);
      const name = /approval \S+\/(\S+) requested by alice/.exec(asked.out)?.[1];
      expect(name, asked.out).toBeDefined();
      const approved = await cli((out) => decideApproval('Approved', parsed('approve', [name!, ...kc('bob')]), out));
      expect(approved.code, approved.out).toBe(0);

      await waitFor('the approval at the sidecar', () => client.query(ddl).then(() => true), 10_000);

      await sidecar.flush();
      const event = await waitFor('the event stored', async () => {
        const r = await call(collector.port, 'GET', `/v1/events?approval=${name}&type=statement`, { token: READER });
        return (r.json.events as { event: AuditEvent }[] | undefined)?.find((e) => e.event.statement?.text === ddl)
          ?.event;
      });
      expect(event.identity).toMatchObject({ name: 'reporter', namespace: ns, source: 'kubernetes' });
      expect(event.result?.status).toBe('ok');
      expect(event.authz?.approval).toMatchObject({
        name,
        requestedBy: 'alice',
        approvedBy: 'bob',
        reason: 'a table for the report',
      });

      const printed = await cli((out) =>
        trail(
          parsed('trail', [
            '--collector',
            collector.url,
            '--token-file',
            join(dir, 'reader.token'),
            '--approval',
            name!,
            '--table',
            `requested_${suffix}`,
          ]),
          out,
        ),
      );
      expect(printed.code, printed.out).toBe(0);
      expect(printed.out).toContain(`${name} (requested by alice, approved by bob)`);

      // The policy document names the requester only to a sidecar that reads it; an older one gets
      // the document it always got (it would refuse an unknown field), under that document's version.
      const policy = (headers: Record<string, string>) =>
        call(collector.port, 'GET', '/v1/policy', { token: sidecarToken, headers });
      const current = await policy({ [POLICY_FIELDS_HEADER]: 'requestedBy' });
      const older = await policy({});
      expect(current.json.routes[0].approvals[0]).toMatchObject({ name, requestedBy: 'alice', approvedBy: 'bob' });
      expect(older.json.routes[0].approvals[0]).toMatchObject({ name, approvedBy: 'bob' });
      expect(older.json.routes[0].approvals[0]).not.toHaveProperty('requestedBy');
      expect(older.json.version).not.toBe(current.json.version);
    } finally {
      await client.end().catch(() => {});
    }
  }, 60_000);
});
