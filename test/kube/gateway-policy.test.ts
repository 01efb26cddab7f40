/**
 * Per-person policy at the gateway, against the real API server, a real OpenID provider and a real
 * Postgres: each connection is decided by the policy of the AgentIdentity its person signed in as,
 * which the gateway follows from the collector's `/v1/policy?identity=NS/NAME` (as a gateway writer:
 * RBAC `write` on gatewayevents.byline.dev). Two people through one gateway get different access;
 * an Approval for one person's identity unlocks their statement and never another's in its window,
 * and stops counting at its expiry by the gateway's clock; a group-claimed identity has its own
 * policy; with the collector away the last policy is kept, and an identity never served one is
 * refused at sign-in (fail closed). A person whose AgentIdentity is deleted loses their open sessions
 * at once (FATAL, recorded) and the gateway stops following it; an identity no session holds is let
 * go after a while and followed afresh at the next sign-in (fail closed until its policy is back).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AuditEvent, crds, type GatewayConfig } from '@byline/api';
import { GATEWAY_WRITER_RBAC_RULES, type RunningCollector, startCollector } from '@byline/collector';
import { type RunningGateway, startGateway } from '@byline/sidecar';
import { SignJWT } from 'jose';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type IdentityWatch, watchIdentities } from '../../cli/src/gateway.js';
import { call } from '../collector/http.js';
import { CLI_CLIENT_ID, startProvider, type TestProvider } from '../harness/oidc-provider.js';
import { startPostgres, type TestPostgres } from '../harness/postgres.js';
import { eventually } from '../harness/sidecar.js';
import { applyCrds } from './apply-crds.js';
import { controlPlane } from './control-plane.js';
import { kubeRest, type Rest, statusMessage } from './rest.js';

const suffix = randomBytes(3).toString('hex');
const ns = `gw-policy-${suffix}`;
const role = `byline-gateway-policy-${suffix}`;
const API = `/apis/${crds.GROUP}/${crds.VERSION}/namespaces/${ns}`;
const logger = () => pino({ level: process.env.BYLINE_TEST_LOG ?? 'silent' });

const dir = mkdtempSync(join(tmpdir(), 'byline-gw-policy-'));
let plane: ReturnType<typeof controlPlane>;
let rest: Rest;
let db: TestPostgres;
let op: TestProvider;
let watch: IdentityWatch;
let collector: RunningCollector;
let gw: RunningGateway;
let config: GatewayConfig;
let gatewayToken: string;
let agentToken: string;
const eventsFile = join(dir, 'events.jsonl');

const people = {
  ada: { sub: 'ada-0001', email: 'ada@example.com' },
  bob: { sub: 'bob-0002', email: 'bob@example.com' },
  carol: { sub: 'carol-0003', email: 'carol@example.com', groups: ['auditors'] },
  dave: { sub: 'dave-0004', email: 'dave@example.com' },
  erin: { sub: 'erin-0005', email: 'erin@example.com' },
};
type Person = keyof typeof people;

async function ok(method: string, path: string, body: unknown): Promise<void> {
  const res = await rest(method, path, { body });
  expect([200, 201], `${method} ${path}: ${statusMessage(res)}`).toContain(res.status);
}

async function saToken(name: string): Promise<string> {
  await ok('POST', `/api/v1/namespaces/${ns}/serviceaccounts`, { metadata: { name } });
  const res = await rest('POST', `/api/v1/namespaces/${ns}/serviceaccounts/${name}/token`, {
    body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { audiences: ['byline.dev'] } },
  });
  expect(res.status, statusMessage(res)).toBe(201);
  return (res.body as { status: { token: string } }).status.token;
}

const identity = (name: string, spec: Record<string, unknown>) =>
  ok('POST', `${API}/agentidentities`, {
    apiVersion: crds.API_VERSION,
    kind: crds.AgentIdentityKind.kind,
    metadata: { name, namespace: ns },
    spec,
  });

/** An Approved Approval for `forIdentity`, as the approval webhook and an approver would leave it. */
async function approve(name: string, forIdentity: string, tables: string[], expiresAt: Date): Promise<void> {
  await ok('POST', `${API}/approvals`, {
    apiVersion: crds.API_VERSION,
    kind: 'Approval',
    metadata: { name, namespace: ns },
    spec: { identity: forIdentity, route: 'orders-db', scope: { tables }, reason: 'pay out', duration: '1h' },
  });
  const res = await rest('PATCH', `${API}/approvals/${name}/status`, {
    contentType: 'application/merge-patch+json',
    body: { status: { phase: 'Approved', approvedBy: 'lead@example.com', expiresAt: expiresAt.toISOString() } },
  });
  expect(res.status, statusMessage(res)).toBe(200);
}

async function token(person: Person): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ ...people[person], email_verified: true })
    .setProtectedHeader({ alg: 'RS256', kid: op.key.kid })
    .setIssuer(op.issuer)
    .setAudience(CLI_CLIENT_ID)
    .setIssuedAt(now)
    .setExpirationTime(now + 600)
    .sign(op.key.privateKey);
}

/** A psql-like session through the gateway: the person's token is the password. */
async function signIn(person: Person, through: RunningGateway = gw): Promise<pg.Client> {
  const client = new pg.Client({
    host: '127.0.0.1',
    port: through.routes[0]!.port,
    user: person,
    database: 'postgres',
    password: await token(person),
  });
  await client.connect();
  return client;
}

/** What a statement's failure says: SQLSTATE, message and hint, or 'ok'. */
async function attempt(
  client: pg.Client,
  sql: string,
): Promise<'ok' | { code: string; message: string; hint?: string }> {
  try {
    await client.query(sql);
    return 'ok';
  } catch (e) {
    const { code, message, hint } = e as { code: string; message: string; hint?: string };
    return { code, message, ...(hint ? { hint } : {}) };
  }
}

async function events(): Promise<AuditEvent[]> {
  await gw.flush();
  return readFileSync(eventsFile, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as AuditEvent);
}

const statementsOf = async (person: Person, text: string) =>
  (await events()).filter(
    (e) => e.type === 'statement' && e.identity.name === people[person].email && e.statement?.text === text,
  );

const startTheCollector = (listen: string) =>
  startCollector(
    {
      listen,
      store: `sqlite:${join(dir, 'trail.db')}`,
      auth: { kubernetes: { kubeconfig: plane.kubeconfigPath, cacheSeconds: 0 } },
    },
    { logger: logger(), policyWaitSeconds: 5 },
  );

beforeAll(async () => {
  plane = controlPlane();
  rest = kubeRest(plane);
  await applyCrds(rest);
  await ok('POST', '/api/v1/namespaces', { metadata: { name: ns } });
  gatewayToken = await saToken('byline-gateway');
  agentToken = await saToken('agent');
  await ok('POST', '/apis/rbac.authorization.k8s.io/v1/clusterroles', {
    metadata: { name: role },
    rules: GATEWAY_WRITER_RBAC_RULES,
  });
  await ok('POST', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
    metadata: { name: role },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
    subjects: [{ kind: 'ServiceAccount', name: 'byline-gateway', namespace: ns }],
  });

  db = await startPostgres();
  const admin = db.client();
  await admin.connect();
  await admin.query('CREATE TABLE orders (id int); CREATE TABLE payouts (id int)');
  await admin.end();
  op = await startProvider({ dir });

  // Every statement on payouts needs an approval, whoever runs it (the DatabaseRoute's guardrails).
  await ok('POST', `${API}/databaseroutes`, {
    apiVersion: crds.API_VERSION,
    kind: crds.DatabaseRouteKind.kind,
    metadata: { name: 'orders-db', namespace: ns },
    spec: {
      upstream: { host: db.host, port: db.port, database: 'postgres' },
      credentials: { secretRef: { name: 'orders-db-credentials' } },
      listenPort: 15432,
      guardrails: { requireApproval: { tables: ['public.payouts'] } },
    },
  });
  const byline = (sub: string) => [{ issuer: op.issuer, subject: sub }];
  await identity('ada', {
    kind: 'human',
    oidc: byline(people.ada.sub),
    routes: [{ name: 'orders-db', access: 'readWrite' }],
  });
  await identity('bob', {
    kind: 'human',
    oidc: byline(people.bob.sub),
    routes: [{ name: 'orders-db', access: 'readWrite' }],
  });
  await identity('auditors', {
    kind: 'human',
    oidc: [{ issuer: op.issuer, group: 'auditors' }],
    routes: [{ name: 'orders-db', access: 'read' }],
  });
  await identity('dave', {
    kind: 'service',
    oidc: byline(people.dave.sub),
    routes: [{ name: 'orders-db', access: 'admin' }],
  });
  await identity('agent', { kind: 'agent', serviceAccounts: ['agent'], routes: [{ name: 'orders-db' }] });

  collector = await startTheCollector('127.0.0.1:0');
  watch = await watchIdentities(plane.kubeconfigPath, () => {});
  await eventually(async () => {
    if (watch.list().filter((i) => i.metadata?.namespace === ns).length < 5)
      throw new Error('identities not watched yet');
  }, 10_000);

  const passwordFile = join(dir, 'pw');
  const tokenFile = join(dir, 'gateway.token');
  writeFileSync(passwordFile, `${db.password}\n`);
  writeFileSync(tokenFile, gatewayToken);
  config = {
    routes: [
      {
        name: 'orders-db',
        listen: '127.0.0.1:0',
        upstream: { host: db.host, port: db.port, database: 'postgres', sslMode: 'disable' },
        credentials: { mode: 'inject', username: db.user, passwordFile },
      },
    ],
    oidc: { issuers: [{ issuer: op.issuer, audiences: [CLI_CLIENT_ID], caFile: op.caFile }], identityNamespaces: [ns] },
    allowPlaintext: true,
    audit: {
      spoolDir: join(dir, 'spool'),
      drainSeconds: 1,
      sinks: [{ collector: { url: `http://127.0.0.1:${collector.port}`, tokenFile } }, { file: eventsFile }],
    },
  };
  gw = await startGateway(config, {
    identities: () => watch.list(),
    logger: logger(),
    firstPolicyWaitMs: 3000,
    policyBackoff: { baseMs: 100, capMs: 500 },
  });
});

afterAll(async () => {
  await gw?.close();
  watch?.stop();
  await collector?.close();
  await op?.stop();
  await db?.stop();
  await rest?.('DELETE', `/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/${role}`);
  await rest?.('DELETE', `/apis/rbac.authorization.k8s.io/v1/clusterroles/${role}`);
  await rest?.('DELETE', `/api/v1/namespaces/${ns}`);
  rmSync(dir, { recursive: true, force: true });
});

describe("the collector serves a gateway the policies of the identities people sign in as, and nobody else's", () => {
  const policy = (t: string, query: string) => call(collector.port, 'GET', `/v1/policy${query}`, { token: t });

  it('a gateway gets an OIDC identity policy by name; without a name, or for an agent, it is refused', async () => {
    const ada = await policy(gatewayToken, `?identity=${ns}/ada`);
    expect(ada.status, ada.text).toBe(200);
    expect(ada.json.identity).toEqual({ name: 'ada', namespace: ns });
    expect(ada.json.routes[0]).toMatchObject({ name: 'orders-db', access: 'readWrite' });
    const unnamed = await policy(gatewayToken, '');
    expect(unnamed.status).toBe(400);
    expect(unnamed.json.error).toMatch(
      /is a gateway: ask for the policy of the AgentIdentity .* identity=<namespace>\/<name>/,
    );
    const agent = await policy(gatewayToken, `?identity=${ns}/agent`);
    expect(agent.status).toBe(403);
    expect(agent.json.error).toContain(`AgentIdentity ${ns}/agent claims no OIDC subjects (spec.oidc)`);
    const malformed = await policy(gatewayToken, '?identity=ada');
    expect(malformed.status).toBe(400);
  });

  it("an agent's token cannot read a person's policy (only its own)", async () => {
    const r = await policy(agentToken, `?identity=${ns}/ada`);
    expect(r.status).toBe(403);
    expect(r.json.error).toMatch(/may read only its own policy/);
    expect((await policy(agentToken, '')).json.identity).toEqual({ name: 'agent', namespace: ns });
  });
});

describe('per-person policy at the gateway', () => {
  it('two people through one gateway: each gets the access of the identity they signed in as (a group-claimed one too), denials name the person', async () => {
    const ada = await signIn('ada');
    const carol = await signIn('carol'); // claimed by group "auditors": read
    try {
      expect(await attempt(ada, 'INSERT INTO orders VALUES (1)')).toBe('ok');
      expect(await attempt(carol, 'INSERT INTO orders VALUES (2)')).toEqual({
        code: '42501',
        message: `byline: INSERT is denied for carol@example.com by AgentIdentity ${ns}/auditors routes[orders-db].access=read (a write statement)`,
      });
      expect((await carol.query('SELECT count(*)::int AS n FROM orders')).rows).toEqual([{ n: 1 }]);
      // read is enforced by Postgres too, per person: carol's upstream session is read-only, ada's is not
      expect((await carol.query('SHOW default_transaction_read_only')).rows[0].default_transaction_read_only).toBe(
        'on',
      );
      expect((await ada.query('SHOW default_transaction_read_only')).rows[0].default_transaction_read_only).toBe('off');
    } finally {
      await ada.end();
      await carol.end();
    }
    const [denied] = await statementsOf('carol', 'INSERT INTO orders VALUES (2)');
    expect(denied?.identity).toMatchObject({ name: 'carol@example.com', oidc: { agentIdentity: 'auditors' } });
    expect(denied?.result?.status).toBe('denied');
    expect(denied?.authz).toMatchObject({
      decision: 'deny',
      rule: `AgentIdentity ${ns}/auditors routes[orders-db].access=read`,
      approval: null,
    });
    const [allowed] = await statementsOf('ada', 'INSERT INTO orders VALUES (1)');
    expect(allowed?.authz).toMatchObject({
      decision: 'allow',
      rule: `AgentIdentity ${ns}/ada routes[orders-db].access=readWrite`,
    });
  });

  it("an Approval for ada unlocks ada's statement and never bob's in its window; at its expiry the gateway stops honouring it by its own clock", async () => {
    const ada = await signIn('ada');
    const bob = await signIn('bob');
    try {
      const before = await attempt(ada, 'INSERT INTO payouts VALUES (1)');
      expect(before).toMatchObject({
        code: '42501',
        message: `byline: INSERT needs an approval for ada@example.com by DatabaseRoute ${ns}/orders-db guardrails.requireApproval (table payouts); none is active`,
      });
      expect((before as { hint: string }).hint).toContain(
        `byline approval request --namespace ${ns} --identity ada --route orders-db`,
      );

      const expiresAt = new Date(Date.now() + 12_000);
      await approve(`ada-payouts-${suffix}`, 'ada', ['public.payouts'], expiresAt);
      // The same open session: its next statement runs under the approval once the gateway has it.
      await eventually(async () => {
        const r = await attempt(ada, 'INSERT INTO payouts VALUES (2)');
        if (r !== 'ok') throw new Error(JSON.stringify(r));
      }, 5000);
      // Hostile: bob runs the very statement in the approval's window, in a session open before it and in a new one.
      const fresh = await signIn('bob');
      for (const session of [bob, fresh]) {
        expect(await attempt(session, 'INSERT INTO payouts VALUES (2)')).toMatchObject({
          code: '42501',
          message: `byline: INSERT needs an approval for bob@example.com by DatabaseRoute ${ns}/orders-db guardrails.requireApproval (table payouts); none is active`,
        });
      }
      await fresh.end();
      const [underApproval] = await statementsOf('ada', 'INSERT INTO payouts VALUES (2)').then((all) =>
        all.filter((e) => e.authz?.decision === 'allow'),
      );
      expect(underApproval?.authz).toMatchObject({
        decision: 'allow',
        rule: `DatabaseRoute ${ns}/orders-db guardrails.requireApproval`,
        approval: { name: `ada-payouts-${suffix}`, approvedBy: 'lead@example.com', expiresAt: expiresAt.toISOString() },
      });
      for (const e of await statementsOf('bob', 'INSERT INTO payouts VALUES (2)')) {
        expect(e.authz).toMatchObject({ decision: 'deny', approval: null });
      }

      // Nothing changes at the collector at expiry: the gateway's own clock ends the approval.
      await new Promise((r) => setTimeout(r, Math.max(0, expiresAt.getTime() - Date.now() + 200)));
      expect(await attempt(ada, 'INSERT INTO payouts VALUES (3)')).toMatchObject({ code: '42501' });
    } finally {
      await ada.end();
      await bob.end();
    }
    const admin = db.client();
    await admin.connect();
    expect((await admin.query('SELECT id FROM payouts ORDER BY id')).rows).toEqual([{ id: 2 }]);
    await admin.end();
  });

  it('with the collector away, the last policy is kept; an identity never served one is refused at sign-in (57P03) and the refusal recorded', async () => {
    await collector.close();
    const ada = await signIn('ada');
    const carol = await signIn('carol');
    try {
      expect(await attempt(ada, 'INSERT INTO orders VALUES (3)')).toBe('ok');
      expect(await attempt(carol, 'DELETE FROM orders')).toMatchObject({ code: '42501' });
    } finally {
      await ada.end();
      await carol.end();
    }
    // dave's identity (admin) was never asked for: no policy, no session.
    const refused = await signIn('dave').then(
      async (c) => {
        await c.end();
        return null;
      },
      (e: { code?: string; message: string }) => e,
    );
    expect(refused?.code).toBe('57P03');
    expect(refused?.message).toBe(
      `byline: the gateway has no policy for AgentIdentity ${ns}/dave yet (the collector has not served one); nothing runs without it, retry shortly`,
    );
    const recorded = (await events()).filter((e) => e.identity.name === 'dave@example.com');
    expect(recorded.map((e) => e.type)).toEqual(['session.start', 'session.end']);
    expect(recorded[1]!.result).toMatchObject({ status: 'error', sqlstate: '57P03' });
  });

  it("the gateway's own incident events reach the trail under its writer identity; only the refused events are dead-lettered", async () => {
    // ada's AgentIdentity goes while her last session's events wait in the spool (the collector is
    // away since the previous test): the collector refuses them for good, and the gateway records a
    // spool.deadLettered event for each under its own identity, which the collector must take.
    const deleted = await rest('DELETE', `${API}/agentidentities/ada`);
    expect(deleted.status, statusMessage(deleted)).toBe(200);
    const port = collector.port;
    collector = await startTheCollector(`127.0.0.1:${port}`);
    const stored = async (type: string) =>
      (await collector.store.query({ type }, 1000)).events.map((e) => JSON.parse(e.json) as AuditEvent);
    const markers = await eventually(async () => {
      const found = await stored('spool.deadLettered');
      if (found.length === 0) throw new Error('no spool.deadLettered event stored yet');
      return found;
    }, 20_000);
    for (const marker of markers) {
      expect(marker.identity).toEqual({
        name: `system:serviceaccount:${ns}:byline-gateway`,
        kind: 'service',
        namespace: ns,
        serviceAccount: 'byline-gateway',
        pod: null,
        source: 'kubernetes',
      });
    }
    const deadDir = join(dir, 'spool', 'dead-letter');
    const dead = readdirSync(deadDir)
      .filter((f) => f.endsWith('.ndjson'))
      .map((f) => JSON.parse(readFileSync(join(deadDir, f), 'utf8')) as AuditEvent);
    expect(dead.length).toBeGreaterThan(0);
    // Only ada's events, never a marker: every marker was stored.
    for (const e of dead) expect(e.identity.name).toBe('ada@example.com');
    for (const f of readdirSync(deadDir).filter((f) => f.endsWith('.refusal.json'))) {
      expect(JSON.parse(readFileSync(join(deadDir, f), 'utf8'))).toMatchObject({ status: 403 });
    }
    // People's events reach the trail as emitted (canonical JSON, chained), the refusal of dave's sign-in too.
    const shipped = await eventually(async () => {
      const all = await stored('session.end');
      if (!all.some((e) => e.identity.name === 'dave@example.com')) throw new Error('not shipped yet');
      return stored('statement');
    }, 20_000);
    expect(shipped.find((e) => e.statement?.text === 'INSERT INTO orders VALUES (2)')?.identity).toMatchObject({
      name: 'carol@example.com',
      oidc: { agentIdentity: 'auditors' },
    });
    const reported = markers.flatMap((m) => (m.incident as { events: { id: string }[] }).events.map((e) => e.id));
    expect(reported.sort()).toEqual(dead.map((e) => e.id).sort());
  });
});

describe('identities that go, or that nobody uses', () => {
  /** The FATAL a server sends an idle pg client arrives as an 'error' event. */
  const nextError = (client: pg.Client) =>
    new Promise<{ code?: string; message: string }>((resolve) => client.once('error', resolve));

  it('a person whose AgentIdentity is deleted loses access at once: the open session ends (FATAL 28000 naming why, recorded, its transaction rolled back), the gateway stops following it; re-created, they sign in again; edited to stop claiming them, the session ends too', async () => {
    await identity('erin', {
      kind: 'human',
      oidc: [{ issuer: op.issuer, subject: people.erin.sub }],
      routes: [{ name: 'orders-db', access: 'readWrite' }],
    });
    await eventually(async () => {
      if (!watch.list().some((i) => i.metadata?.namespace === ns && i.metadata.name === 'erin'))
        throw new Error('erin not watched yet');
    }, 10_000);
    const erin = await signIn('erin');
    const ended = nextError(erin);
    await erin.query('BEGIN');
    await erin.query('INSERT INTO orders VALUES (500)');
    expect(gw.policyStreams()).toContain(`${ns}/erin`);

    // Hostile: the session stays open, idle inside a transaction, and waits for nobody to notice.
    const deleted = await rest('DELETE', `${API}/agentidentities/erin`);
    expect(deleted.status, statusMessage(deleted)).toBe(200);
    const fatal = await Promise.race([ended, new Promise<null>((r) => setTimeout(() => r(null), 10_000).unref())]);
    // Whichever notices first: the collector's 404 for its policy, or the gateway's own watch of identities.
    const why = [
      `byline: access withdrawn: the policy of AgentIdentity ${ns}/erin, which this session signed in as, is gone (the collector answered 404: AgentIdentity ${ns}/erin no longer exists)`,
      `byline: access withdrawn: AgentIdentity ${ns}/erin, which this session signed in as, no longer claims this person (subject "${people.erin.sub}" of issuer "${op.issuer}" is claimed by no AgentIdentity (add { issuer, subject | email | group } to the spec.oidc of one))`,
    ];
    expect(fatal?.code).toBe('28000');
    expect(why).toContain(fatal?.message);
    await erin.end().catch(() => {});
    await eventually(async () => {
      if (gw.policyStreams().includes(`${ns}/erin`)) throw new Error('still following erin');
    }, 5000);

    const admin = db.client();
    await admin.connect();
    expect((await admin.query('SELECT count(*)::int AS n FROM orders WHERE id = 500')).rows).toEqual([{ n: 0 }]);
    await admin.end();
    const erinsEvents = (await events()).filter((e) => e.identity.name === people.erin.email);
    expect(erinsEvents.at(-1)).toMatchObject({
      type: 'session.end',
      result: { status: 'error', sqlstate: '28000', error: fatal!.message.slice('byline: '.length) },
    });

    // Re-created under the same name: the next sign-in follows its policy afresh.
    await identity('erin', {
      kind: 'human',
      oidc: [{ issuer: op.issuer, subject: people.erin.sub }],
      routes: [{ name: 'orders-db', access: 'read' }],
    });
    const again = await eventually(() => signIn('erin'), 10_000);
    const endedAgain = nextError(again);
    expect(await attempt(again, 'INSERT INTO orders VALUES (501)')).toMatchObject({ code: '42501' });
    expect(gw.policyStreams()).toContain(`${ns}/erin`);

    // Not deleted but edited: the identity stops claiming erin (the collector still serves its policy).
    const edited = await rest('PATCH', `${API}/agentidentities/erin`, {
      contentType: 'application/merge-patch+json',
      body: { spec: { oidc: [{ issuer: op.issuer, subject: 'someone-else' }] } },
    });
    expect(edited.status, statusMessage(edited)).toBe(200);
    const unclaimed = await Promise.race([
      endedAgain,
      new Promise<null>((r) => setTimeout(() => r(null), 10_000).unref()),
    ]);
    expect(unclaimed).toMatchObject({
      code: '28000',
      message: `byline: access withdrawn: AgentIdentity ${ns}/erin, which this session signed in as, no longer claims this person (subject "${people.erin.sub}" of issuer "${op.issuer}" is claimed by no AgentIdentity (add { issuer, subject | email | group } to the spec.oidc of one))`,
    });
    await again.end().catch(() => {});
  });

  it('an identity no session has held for policyIdleMs is let go; the next sign-in follows it afresh, and is refused (57P03) while the collector cannot serve it', async () => {
    const quiet = await startGateway(
      {
        ...config,
        audit: { ...config.audit, spoolDir: join(dir, 'spool-idle'), sinks: [config.audit.sinks[0]!] },
      },
      {
        identities: () => watch.list(),
        logger: logger(),
        firstPolicyWaitMs: 2000,
        policyIdleMs: 800,
        policyBackoff: { baseMs: 100, capMs: 500 },
      },
    );
    try {
      const bob = await signIn('bob', quiet);
      try {
        // An open session holds its identity however long it is idle.
        await new Promise((r) => setTimeout(r, 1600));
        expect(quiet.policyStreams()).toEqual([`${ns}/bob`]);
        expect(await attempt(bob, 'INSERT INTO orders VALUES (600)')).toBe('ok');
      } finally {
        await bob.end();
      }
      await eventually(async () => {
        if (quiet.policyStreams().length > 0) throw new Error(`still following ${quiet.policyStreams()}`);
      }, 5000);
      const back = await signIn('bob', quiet);
      expect(quiet.policyStreams()).toEqual([`${ns}/bob`]);
      await back.end();
      await eventually(async () => {
        if (quiet.policyStreams().length > 0) throw new Error(`still following ${quiet.policyStreams()}`);
      }, 5000);

      // Let go means forgotten: with the collector away, nothing stale lets bob in.
      const port = collector.port;
      await collector.close();
      try {
        const refused = await signIn('bob', quiet).then(
          async (c) => {
            await c.end();
            return null;
          },
          (e: { code?: string; message: string }) => e,
        );
        expect(refused).toMatchObject({
          code: '57P03',
          message: `byline: the gateway has no policy for AgentIdentity ${ns}/bob yet (the collector has not served one); nothing runs without it, retry shortly`,
        });
      } finally {
        collector = await startTheCollector(`127.0.0.1:${port}`);
      }
    } finally {
      await quiet.close();
    }
  });
});
