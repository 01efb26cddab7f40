/**
 * The generated CRDs on a real API server: they install, serve the issue's examples with defaults,
 * have a working status subresource and printer columns, and refuse obviously wrong resources with
 * a message that names the field — the API server's own schema and CEL validation, nothing of ours.
 */
import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { applyCrds } from './apply-crds.js';
import { controlPlane } from './control-plane.js';
import { kubeRest, type Rest, statusMessage } from './rest.js';

const GROUP_PATH = '/apis/byline.dev/v1alpha1';
const namespace = `crds-${randomBytes(4).toString('hex')}`;
const TABLE = 'application/json;as=Table;g=meta.k8s.io;v=v1';

type Obj = Record<string, unknown> & { metadata: { name: string; namespace?: string; generation?: number } };

const route = (name = 'orders-db', spec: Record<string, unknown> = {}): Obj => ({
  apiVersion: 'byline.dev/v1alpha1',
  kind: 'DatabaseRoute',
  metadata: { name, namespace },
  spec: {
    upstream: { host: 'orders.db.svc', port: 5432, database: 'orders', sslMode: 'require' },
    credentials: { secretRef: { name: 'orders-db-app' } },
    listenPort: 15432,
    env: { host: 'PGHOST', port: 'PGPORT', url: 'DATABASE_URL' },
    ...spec,
  },
});

const identity = (name = 'billing-reconciler', spec: Record<string, unknown> = {}): Obj => ({
  apiVersion: 'byline.dev/v1alpha1',
  kind: 'AgentIdentity',
  metadata: { name, namespace },
  spec: {
    kind: 'agent',
    owner: 'team-payments@example.com',
    serviceAccounts: ['billing-reconciler'],
    routes: [{ name: 'orders-db', access: 'readWrite' }],
    parameters: 'redacted',
    ...spec,
  },
});

const plural = (o: Obj) => (o.kind === 'AgentIdentity' ? 'agentidentities' : 'databaseroutes');
const collection = (o: Obj) => `${GROUP_PATH}/namespaces/${namespace}/${plural(o)}`;

let rest: Rest;

/** Creates with fieldValidation=Strict, as `kubectl create` does by default. */
function create(o: Obj) {
  return rest('POST', `${collection(o)}?fieldValidation=Strict`, { body: o });
}

async function mustCreate(o: Obj): Promise<Obj> {
  const res = await create(o);
  if (res.status !== 201) throw new Error(`creating ${o.kind} ${o.metadata.name}: ${res.status} ${statusMessage(res)}`);
  return res.body as Obj;
}

beforeAll(async () => {
  rest = kubeRest(controlPlane());
  await applyCrds(rest);
  const res = await rest('POST', '/api/v1/namespaces', { body: { metadata: { name: namespace } } });
  expect(res.status, statusMessage(res)).toBe(201);
});

describe('CRDs on a real API server', () => {
  it('serve both kinds in the byline category, with short names and a status subresource', async () => {
    const res = await rest('GET', GROUP_PATH);
    expect(res.status).toBe(200);
    const resources = (res.body as { resources: { name: string; shortNames?: string[]; categories?: string[] }[] })
      .resources;
    const byName = new Map(resources.map((r) => [r.name, r]));
    expect(byName.get('agentidentities')).toMatchObject({ shortNames: ['agentid'], categories: ['byline'] });
    expect(byName.get('databaseroutes')).toMatchObject({ shortNames: ['dbroute'], categories: ['byline'] });
    expect(byName.has('agentidentities/status')).toBe(true);
    expect(byName.has('databaseroutes/status')).toBe(true);
  });

  it('accept the issue’s examples', async () => {
    const r = await mustCreate(route());
    const i = await mustCreate(identity());
    expect((r.spec as { listenPort: number }).listenPort).toBe(15432);
    expect((i.spec as { serviceAccounts: string[] }).serviceAccounts).toEqual(['billing-reconciler']);
  });

  it('fill in the defaults a user leaves out', async () => {
    const r = await mustCreate(
      route('minimal-db', {
        upstream: { host: 'pg.example.com', database: 'app' },
        credentials: { secretRef: { name: 'app-db' } },
        env: undefined,
      }),
    );
    expect(r.spec).toMatchObject({
      upstream: { port: 5432, sslMode: 'require' },
      credentials: { secretRef: { name: 'app-db', usernameKey: 'username', passwordKey: 'password' } },
    });
    const i = await mustCreate(
      identity('minimal-agent', {
        serviceAccounts: ['minimal'],
        routes: [{ name: 'minimal-db' }],
        parameters: undefined,
      }),
    );
    expect(i.spec).toMatchObject({ routes: [{ name: 'minimal-db', access: 'readWrite' }], parameters: 'redacted' });
  });

  it('accept IP addresses as hosts when nothing checks the host name', async () => {
    for (const [name, host] of [
      ['ipv4-db', '10.0.0.7'],
      ['ipv6-db', 'fd00::7'],
    ] as const) {
      const r = await mustCreate(route(name, { upstream: { host, database: 'orders', sslMode: 'require' } }));
      expect((r.spec as { upstream: { host: string } }).upstream.host).toBe(host);
    }
  });

  it('keep status behind the status subresource', async () => {
    const o = await mustCreate(identity('status-agent', { serviceAccounts: ['status-agent'] }));
    const path = `${collection(o)}/status-agent`;
    const generation = o.metadata.generation;
    expect(generation).toBe(1);
    const condition = {
      type: 'Ready',
      status: 'False',
      reason: 'RouteNotFound',
      message: 'DatabaseRoute orders-db does not exist',
      lastTransitionTime: '2026-11-27T03:00:00Z',
    };

    // A status written through the main resource is dropped ...
    const viaMain = await rest('PATCH', path, {
      body: { status: { conditions: [condition] } },
      contentType: 'application/merge-patch+json',
    });
    expect(viaMain.status).toBe(200);
    expect((viaMain.body as Obj).status).toBeUndefined();

    // ... and one written through /status is kept, without touching spec or generation.
    const viaStatus = await rest('PATCH', `${path}/status`, {
      body: { spec: { kind: 'human' }, status: { observedGeneration: generation, conditions: [condition] } },
      contentType: 'application/merge-patch+json',
    });
    expect(viaStatus.status, statusMessage(viaStatus)).toBe(200);
    const after = viaStatus.body as Obj & { status: unknown; spec: { kind: string } };
    expect(after.status).toEqual({ observedGeneration: generation, conditions: [condition] });
    expect(after.spec.kind).toBe('agent');
    expect(after.metadata.generation).toBe(generation);

    // The status schema is enforced too.
    const bad = await rest('PATCH', `${path}/status`, {
      body: { status: { conditions: [{ ...condition, status: 'Maybe' }] } },
      contentType: 'application/merge-patch+json',
    });
    expect(bad.status).toBe(422);
    expect(statusMessage(bad)).toMatch(/status\.conditions\[0\]\.status: Unsupported value: "Maybe"/);
  });

  it('print Kind, Service Accounts, OIDC (wide), Ready and Reason for AgentIdentities', async () => {
    const o = await mustCreate(identity('table-agent', { serviceAccounts: ['table-a', 'table-b'] }));
    await rest('PATCH', `${collection(o)}/table-agent/status`, {
      contentType: 'application/merge-patch+json',
      body: {
        status: {
          conditions: [
            {
              type: 'Ready',
              status: 'True',
              reason: 'Reconciled',
              message: 'ok',
              lastTransitionTime: '2026-11-27T03:00:00Z',
            },
          ],
        },
      },
    });
    const table = await readTable(`${collection(o)}/table-agent`);
    // OIDC (the issuers of an identity of people) has priority 1: only `kubectl get -o wide` shows it.
    expect(table.columns).toEqual(['Name', 'Kind', 'Service Accounts', 'OIDC', 'Ready', 'Reason', 'Age']);
    expect(table.row.slice(0, 3)).toEqual(['table-agent', 'agent', '["table-a","table-b"]']);
    expect(table.row.slice(4, 6)).toEqual(['True', 'Reconciled']);
    expect(table.row[6]).toMatch(/^\d+s$/);
  });

  it('print Host, Database, Port, Ready and Reason for DatabaseRoutes', async () => {
    const o = await mustCreate(route('table-db', { listenPort: 15999 }));
    const table = await readTable(`${collection(o)}/table-db`);
    expect(table.columns).toEqual(['Name', 'Host', 'Database', 'Port', 'Ready', 'Reason', 'Age']);
    expect(table.row.slice(0, 4)).toEqual(['table-db', 'orders.db.svc', 'orders', 15999]);
    // Ready and Reason come from status.conditions. An operator started by another test file (they
    // share this API server and watch every namespace) may have reconciled the route already: the
    // cells are then its Ready condition, else empty.
    const read = (await rest('GET', `${collection(o)}/table-db`)).body as {
      status?: { conditions?: { type: string; status: string; reason: string }[] };
    };
    const ready = read.status?.conditions?.find((c) => c.type === 'Ready');
    const cells = table.row.slice(4, 6);
    if (cells[0] === null) expect(cells).toEqual([null, null]);
    else expect(cells).toEqual([ready?.status, ready?.reason]);
  });
});

async function readTable(path: string): Promise<{ columns: string[]; row: unknown[] }> {
  const res = await rest('GET', path, { accept: TABLE });
  expect(res.status, statusMessage(res)).toBe(200);
  const table = res.body as { kind: string; columnDefinitions: { name: string }[]; rows: { cells: unknown[] }[] };
  expect(table.kind).toBe('Table');
  return { columns: table.columnDefinitions.map((c) => c.name), row: table.rows[0]?.cells ?? [] };
}

const withUpstream = (upstream: Record<string, unknown>) =>
  route('bad-route', { upstream: { host: 'orders.db.svc', database: 'orders', ...upstream } });

/** [what, resource, what the API server's message must say — always including the field]. */
const refusals: [string, Obj, RegExp][] = [
  [
    'an identity without serviceAccounts (or oidc)',
    identity('bad-agent', { serviceAccounts: undefined }),
    /spec: Invalid value: .*an identity names either serviceAccounts \(pods\) or oidc/,
  ],
  [
    'an identity with no serviceAccounts',
    identity('bad-agent', { serviceAccounts: [] }),
    /spec\.serviceAccounts: Invalid value: 0: spec\.serviceAccounts in body should have at least 1 items/,
  ],
  [
    'a service account listed twice',
    identity('bad-agent', { serviceAccounts: ['a', 'a'] }),
    /spec\.serviceAccounts\[1\]: Duplicate value: "a"/,
  ],
  [
    'kind robot',
    identity('bad-agent', { kind: 'robot' }),
    /spec\.kind: Unsupported value: "robot": supported values: "agent", "human", "service"/,
  ],
  [
    'route access write',
    identity('bad-agent', { routes: [{ name: 'orders-db', access: 'write' }] }),
    /spec\.routes\[0\]\.access: Unsupported value: "write": supported values: "read", "readWrite", "admin"/,
  ],
  [
    'the same route twice',
    identity('bad-agent', {
      routes: [
        { name: 'orders-db', access: 'read' },
        { name: 'orders-db', access: 'admin' },
      ],
    }),
    /spec\.routes\[1\]: Duplicate value: .*"name":"orders-db"/,
  ],
  [
    'an unknown field in spec (fieldValidation=Strict)',
    identity('bad-agent', { serviceAcounts: ['typo'] }),
    /strict decoding error: unknown field "spec\.serviceAcounts"/,
  ],
  [
    'listenPort 80',
    route('bad-route', { listenPort: 80 }),
    /spec\.listenPort: Invalid value: 80: spec\.listenPort in body should be greater than or equal to 1024/,
  ],
  [
    'listenPort 9187 (the sidecar’s metrics)',
    route('bad-route', { listenPort: 9187 }),
    /spec\.listenPort: Invalid value: 9187: listenPort 9187 is taken by the sidecar's metrics/,
  ],
  [
    'sslMode maybe',
    withUpstream({ sslMode: 'maybe' }),
    /spec\.upstream\.sslMode: Unsupported value: "maybe": supported values: "disable", "prefer", "require", "verify-full"/,
  ],
  [
    'verify-full against an IPv4 address',
    withUpstream({ host: '10.0.0.7', sslMode: 'verify-full' }),
    /spec\.upstream\.host: Invalid value: upstream\.sslMode verify-full checks the host name: upstream\.host must be a DNS name, not an IP address/,
  ],
  [
    'verify-full against an IPv6 address',
    withUpstream({ host: 'fd00::7', sslMode: 'verify-full' }),
    /spec\.upstream\.host: Invalid value: upstream\.sslMode verify-full checks the host name/,
  ],
  [
    'a host with a port',
    withUpstream({ host: 'orders.db.svc:5432' }),
    /spec\.upstream\.host: Invalid value: "orders\.db\.svc:5432": upstream\.host must be a host name or an IP address, without a scheme, port/,
  ],
  [
    'a URL as host',
    withUpstream({ host: 'postgres://orders.db.svc/orders' }),
    /spec\.upstream\.host: Invalid value: "postgres:\/\/orders\.db\.svc\/orders": upstream\.host must be a host name/,
  ],
  [
    'a CA without verify-full',
    withUpstream({ sslMode: 'require', caSecretRef: { name: 'orders-ca' } }),
    /spec\.upstream\.caSecretRef: Invalid value: upstream\.caSecretRef is used only with sslMode verify-full/,
  ],
  [
    'env host == env port',
    route('bad-route', { env: { host: 'PGHOST', port: 'PGHOST' } }),
    /spec\.env: Invalid value: env\.host, env\.port, env\.url and env\.user must name different variables/,
  ],
  [
    'env user == env url',
    route('bad-route', {
      credentials: { username: 'app', secretRef: { name: 's' } },
      env: { url: 'PGUSER', user: 'PGUSER' },
    }),
    /spec\.env: Invalid value: env\.host, env\.port, env\.url and env\.user must name different variables/,
  ],
  [
    'env.user without credentials.username',
    route('bad-route', { env: { user: 'PGUSER' } }),
    /spec\.env\.user: Invalid value: env\.user names the role in credentials\.username: give credentials\.username too/,
  ],
  [
    'an env name that is not a variable name',
    route('bad-route', { env: { url: 'DATABASE-URL' } }),
    /spec\.env\.url: Invalid value: "DATABASE-URL": spec\.env\.url in body should match/,
  ],
  [
    'a route name with a dot',
    route('orders.db'),
    /metadata\.name must be a DNS label .*it names the route in the sidecar/,
  ],
];

describe('obviously wrong resources are refused', () => {
  it.each(refusals)('%s', async (_what, o, message) => {
    const res = await create(o);
    // 422 Invalid for schema and CEL; an unknown field fails decoding, before validation: 400.
    expect(res.status, JSON.stringify(res.body)).toBe(message.source.includes('unknown field') ? 400 : 422);
    expect(statusMessage(res)).toMatch(message);
    // The API server names the kind it refused.
    expect(statusMessage(res)).toContain(String(o.kind));
  });

  it('and none of them was stored', async () => {
    const names = async (p: string) =>
      ((await rest('GET', `${GROUP_PATH}/namespaces/${namespace}/${p}`)).body as { items: Obj[] }).items.map(
        (o) => o.metadata.name,
      );
    expect(await names('agentidentities')).not.toContain('bad-agent');
    expect(await names('databaseroutes')).not.toContain('bad-route');
    expect(await names('databaseroutes')).not.toContain('orders.db');
  });
});
