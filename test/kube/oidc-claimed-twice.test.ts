/**
 * Two AgentIdentities claiming one OIDC subject, against the real API server: the operator flags
 * both (Ready=False OidcClaimedTwice naming the other, and a Warning Event on each), and byline
 * gateway refuses that subject at sign-in with 28000 naming both identities, recording the refusal
 * as an event; once one claim is gone, the other identity is Valid again and the person gets in.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AuditEvent, GatewayConfig } from '@byline/api';
import { type RunningOperator, startOperator } from '@byline/operator';
import { type RunningSidecar, startGateway } from '@byline/sidecar';
import { SignJWT } from 'jose';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type IdentityWatch, watchIdentities } from '../../cli/src/gateway.js';
import { freePort } from '../harness/net.js';
import { CLI_CLIENT_ID, startProvider, type TestProvider } from '../harness/oidc-provider.js';
import { startPostgres, type TestPostgres } from '../harness/postgres.js';
import { eventually } from '../harness/sidecar.js';
import { applyCrds } from './apply-crds.js';
import { controlPlane } from './control-plane.js';
import { kubeRest, type Rest, statusMessage } from './rest.js';

const suffix = randomBytes(3).toString('hex');
const operatorNs = `byline-op2-${suffix}`;
const nsA = `people-a-${suffix}`;
const nsB = `people-b-${suffix}`;
const webhookConfig = `byline-pod-injector-claims-${suffix}`;
const API = '/apis/byline.dev/v1alpha1';
const SUBJECT = 'ada-0001';
const logger = () => pino({ level: process.env.BYLINE_TEST_LOG ?? 'silent' });

const dir = mkdtempSync(join(tmpdir(), 'byline-claims-'));
const eventsFile = join(dir, 'events.jsonl');
let rest: Rest;
let operator: RunningOperator;
let op: TestProvider;
let db: TestPostgres;
let watch: IdentityWatch;
let gw: RunningSidecar;

interface Condition {
  type: string;
  status: string;
  reason: string;
  message: string;
}

async function ok(method: string, path: string, body?: unknown): Promise<unknown> {
  const res = await rest(method, path, body === undefined ? {} : { body });
  if (res.status < 200 || res.status >= 300) throw new Error(`${method} ${path}: ${statusMessage(res)}`);
  return res.body;
}

const person = (namespace: string, name: string) =>
  ok('POST', `${API}/namespaces/${namespace}/agentidentities`, {
    apiVersion: 'byline.dev/v1alpha1',
    kind: 'AgentIdentity',
    metadata: { name },
    spec: { kind: 'human', oidc: [{ issuer: op.issuer, subject: SUBJECT }], routes: [{ name: 'orders-db' }] },
  });

/** A Ready DatabaseRoute "orders-db" (its Secret complete), so that only the claims decide Ready. */
async function routeIn(namespace: string): Promise<void> {
  await ok('POST', `/api/v1/namespaces/${namespace}/secrets`, {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'orders-db-app' },
    stringData: { username: 'app', password: 'secret' },
  });
  await ok('POST', `${API}/namespaces/${namespace}/databaseroutes`, {
    apiVersion: 'byline.dev/v1alpha1',
    kind: 'DatabaseRoute',
    metadata: { name: 'orders-db' },
    spec: {
      upstream: { host: 'orders.db.example.com', port: 5432, database: 'orders', sslMode: 'require' },
      credentials: { secretRef: { name: 'orders-db-app' } },
      listenPort: 15432,
    },
  });
}

async function ready(namespace: string, name: string, reason: string): Promise<Condition> {
  return eventually(async () => {
    const o = (await ok('GET', `${API}/namespaces/${namespace}/agentidentities/${name}`)) as {
      status?: { conditions?: Condition[] };
    };
    const c = o.status?.conditions?.find((x) => x.type === 'Ready');
    if (c?.reason !== reason) throw new Error(`${namespace}/${name} is ${c?.reason ?? 'unreconciled'}, not ${reason}`);
    return c;
  }, 20_000);
}

async function warnings(namespace: string, name: string): Promise<{ reason: string; note: string; type: string }[]> {
  const list = (await ok('GET', `/apis/events.k8s.io/v1/namespaces/${namespace}/events`)) as {
    items: { reason: string; note: string; type: string; regarding: { kind: string; name: string } }[];
  };
  return list.items.filter((e) => e.regarding.kind === 'AgentIdentity' && e.regarding.name === name);
}

async function signIn(): Promise<{ code?: string; message: string } | 'ok'> {
  const now = Math.floor(Date.now() / 1000);
  const token = await new SignJWT({ sub: SUBJECT, email: 'ada@example.com', email_verified: true })
    .setProtectedHeader({ alg: 'RS256', kid: op.key.kid })
    .setIssuer(op.issuer)
    .setAudience(CLI_CLIENT_ID)
    .setIssuedAt(now)
    .setExpirationTime(now + 600)
    .sign(op.key.privateKey);
  const client = new pg.Client({
    host: '127.0.0.1',
    port: gw.routes[0]!.port,
    user: 'ada',
    database: 'postgres',
    password: token,
  });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return 'ok';
  } catch (e) {
    return { code: (e as { code?: string }).code, message: (e as Error).message };
  } finally {
    await client.end().catch(() => {});
  }
}

beforeAll(async () => {
  const plane = controlPlane();
  rest = kubeRest(plane);
  await applyCrds(rest);
  for (const name of [operatorNs, nsA, nsB]) await ok('POST', '/api/v1/namespaces', { metadata: { name } });
  for (const name of [nsA, nsB]) await routeIn(name);
  const port = await freePort();
  operator = await startOperator({
    kubeconfig: plane.kubeconfigPath,
    namespace: operatorNs,
    webhookListen: `127.0.0.1:${port}`,
    webhookUrl: `https://127.0.0.1:${port}`,
    webhookConfigurationName: webhookConfig,
    webhookNamespaceLabels: { 'byline.dev/claims-test': suffix },
    metricsListen: '127.0.0.1:0',
    image: 'ghcr.io/byline-dev/byline:claims-test',
    collectorUrl: 'http://collector.byline.svc:8080',
    logger: logger(),
  });
  await operator.synced();
  await eventually(async () => {
    if (!operator.isLeader()) throw new Error('not leader yet');
  }, 30_000);

  db = await startPostgres();
  op = await startProvider({ dir });
  watch = await watchIdentities(plane.kubeconfigPath, () => {});
  const passwordFile = join(dir, 'pw');
  writeFileSync(passwordFile, `${db.password}\n`);
  const config: GatewayConfig = {
    routes: [
      {
        name: 'orders-db',
        listen: '127.0.0.1:0',
        upstream: { host: db.host, port: db.port, database: 'postgres', sslMode: 'disable' },
        credentials: { mode: 'inject', username: db.user, passwordFile },
      },
    ],
    oidc: {
      issuers: [{ issuer: op.issuer, audiences: [CLI_CLIENT_ID], caFile: op.caFile }],
      identityNamespaces: [nsA, nsB],
    },
    allowPlaintext: true,
    audit: { sinks: [{ file: eventsFile }] },
  };
  gw = await startGateway(config, { identities: () => watch.list(), logger: logger() });
}, 120_000);

afterAll(async () => {
  await gw?.close();
  watch?.stop();
  await operator?.close();
  await op?.stop();
  await db?.stop();
  await rest?.('DELETE', `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${webhookConfig}`);
  for (const name of [nsA, nsB, operatorNs]) await rest?.('DELETE', `/api/v1/namespaces/${name}`);
  rmSync(dir, { recursive: true, force: true });
});

describe('two AgentIdentities claiming one OIDC subject', () => {
  it('the operator flags both, naming the other, with a Warning Event; the gateway refuses the subject (28000, naming both) and records it', async () => {
    await person(nsA, 'ada');
    await ready(nsA, 'ada', 'Valid');
    expect(await signIn()).toBe('ok');

    // Someone in another namespace claims the same person.
    await person(nsB, 'ada-impostor');
    const a = await ready(nsA, 'ada', 'OidcClaimedTwice');
    const b = await ready(nsB, 'ada-impostor', 'OidcClaimedTwice');
    const claim = `subject "${SUBJECT}" of issuer "${op.issuer}"`;
    expect(a).toMatchObject({ status: 'False' });
    expect(a.message).toBe(
      `${claim} is also claimed by AgentIdentity "${nsB}/ada-impostor": byline gateway refuses that sign-in (28000) until one identity claims it`,
    );
    expect(b.message).toContain(`${claim} is also claimed by AgentIdentity "${nsA}/ada"`);
    for (const [ns, name] of [
      [nsA, 'ada'],
      [nsB, 'ada-impostor'],
    ] as const) {
      const events = await eventually(async () => {
        const found = (await warnings(ns, name)).filter((e) => e.reason === 'OidcClaimedTwice');
        if (found.length === 0) throw new Error(`no OidcClaimedTwice Event for ${ns}/${name} yet`);
        return found;
      }, 10_000);
      expect(events[0]).toMatchObject({ type: 'Warning' });
    }

    await eventually(async () => {
      if (watch.list().filter((i) => i.metadata?.name?.startsWith('ada')).length < 2)
        throw new Error('not watched yet');
    }, 10_000);
    const refused = await signIn();
    expect(refused).toEqual({
      code: '28000',
      message: `byline: ${claim} is claimed by subject by several AgentIdentities ("${nsA}/ada", "${nsB}/ada-impostor"); exactly one may claim it`,
    });
    await gw.flush();
    const recorded = readFileSync(eventsFile, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as AuditEvent)
      .filter((e) => e.result?.sqlstate === '28000');
    expect(recorded.map((e) => e.type)).toEqual(['session.start', 'session.end']);
    for (const e of recorded) {
      expect(e.identity).toMatchObject({
        name: 'ada@example.com',
        namespace: null,
        oidc: { subject: SUBJECT, agentIdentity: null },
      });
      expect(e.result?.error).toContain(`("${nsA}/ada", "${nsB}/ada-impostor")`);
    }

    // The impostor goes: ada is Valid again and gets in.
    await ok('DELETE', `${API}/namespaces/${nsB}/agentidentities/ada-impostor`);
    await ready(nsA, 'ada', 'Valid');
    await eventually(async () => {
      const r = await signIn();
      if (r !== 'ok') throw new Error(JSON.stringify(r));
    }, 10_000);
  });
});
