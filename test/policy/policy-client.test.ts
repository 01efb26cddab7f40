/**
 * The sidecar's policy client against a collector that misbehaves on purpose (the real collector is
 * in test/kube/policy.test.ts): refusals at start, a document that does not validate, a collector
 * that goes away. A real HTTP server on a random port answers what each test scripts.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PolicyDocument } from '@byline/api';
import pino from 'pino';
import { afterEach, beforeAll, expect, test } from 'vitest';
import { StatementAnalyzer } from '../../sidecar/src/policy/analyzer.js';
import { PolicyClient } from '../../sidecar/src/policy/client.js';
import { PolicyEngine } from '../../sidecar/src/policy/engine.js';
import { makeCertificates } from '../harness/certs.js';
import { eventually } from '../harness/sidecar.js';

type Handler = (req: IncomingMessage, res: ServerResponse, after: string | null) => void;

let analyzer: StatementAnalyzer;
const servers: Server[] = [];
const clients: PolicyClient[] = [];
const logger = pino({ level: process.env.BYLINE_TEST_LOG ?? 'silent' });

beforeAll(async () => {
  analyzer = await StatementAnalyzer.create();
});
afterEach(async () => {
  for (const c of clients.splice(0)) await c.stop();
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

async function collector(
  handler: Handler,
): Promise<{ url: string; server: Server; seen: (string | null)[]; reported: (string | null)[] }> {
  const seen: (string | null)[] = [];
  const reported: (string | null)[] = [];
  const server = createServer((req, res) => {
    expect(req.headers.authorization).toBe('Bearer sidecar-token');
    const query = new URL(req.url ?? '/', 'http://x').searchParams;
    const after = query.get('after');
    seen.push(after);
    reported.push(query.get('rejected'));
    handler(req, res, after);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  servers.push(server);
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server, seen, reported };
}

const doc = (version: string, access: string): PolicyDocument => ({
  version,
  identity: { name: 'billing-reconciler', namespace: 'payments' },
  routes: [
    {
      name: 'orders-db',
      access: access as 'read',
      accessSource: 'AgentIdentity payments/billing-reconciler',
      guardrails: [],
      approvals: [],
    },
  ],
});
const send = (res: ServerResponse, status: number, body: unknown) =>
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));

function start(url: string, engine: PolicyEngine, updates: string[] = [], signal?: AbortSignal) {
  return PolicyClient.start(
    {
      url,
      token: () => 'sidecar-token',
      logger,
      engine,
      onUpdate: (r) => updates.push(r),
      backoff: { baseMs: 20, capMs: 100 },
    },
    signal,
  ).then((c) => {
    clients.push(c);
    return c;
  });
}

const writes = (engine: PolicyEngine) =>
  engine.decideAll('orders-db', analyzer.analyze('UPDATE t SET a = 1 WHERE id = 2'), Date.now())[0]!.allow;

test('fails closed until a policy arrives: start() waits through refusals', async () => {
  let calls = 0;
  const { url } = await collector((_req, res) => {
    calls++;
    if (calls < 3) send(res, 503, { error: 'the collector has no policies loaded' });
    else send(res, 200, doc('a1', 'readWrite'));
  });
  const engine = new PolicyEngine();
  expect(writes(engine)).toBe(false);
  const client = await start(url, engine);
  expect(calls).toBeGreaterThanOrEqual(3);
  expect(client.version).toBe('a1');
  expect(writes(engine)).toBe(true);
});

test('start() gives up only when stopped, and then the engine still denies', async () => {
  const { url } = await collector((_req, res) => send(res, 401, { error: 'unknown bearer token' }));
  const engine = new PolicyEngine();
  const abort = new AbortController();
  const starting = start(url, engine, [], abort.signal);
  setTimeout(() => abort.abort(), 200);
  await expect(starting).rejects.toThrow(/stopped before a policy arrived/);
  expect(writes(engine)).toBe(false);
});

test('a document that does not validate is rejected: the previous policy stays, and the next poll waits past it and reports it once', async () => {
  let release: (() => void) | undefined;
  const { url, seen, reported } = await collector((_req, res, after) => {
    if (after === null) send(res, 200, doc('a1', 'readWrite'));
    else if (after === 'a1') send(res, 200, { ...doc('b2', 'root') });
    else if (after === 'b2') release = () => send(res, 200, doc('c3', 'read'));
    else res.writeHead(304).end();
  });
  const engine = new PolicyEngine();
  const updates: string[] = [];
  const client = await start(url, engine, updates);
  await eventually(async () => {
    if (release === undefined) throw new Error('the client has not come back past the bad version yet');
  });
  expect(updates).toEqual(['applied', 'rejected']);
  expect(client.stats.rejected).toBe(1);
  expect(client.version).toBe('a1');
  expect(writes(engine)).toBe(true);
  expect(seen).toEqual([null, 'a1', 'b2']);
  // The collector counts it (byline_collector_policy_rejections_total, test/kube/policy.test.ts).
  expect(reported).toEqual([null, null, 'b2']);
  release!();
  await eventually(async () => {
    if (client.version !== 'c3') throw new Error('not applied yet');
  }, 2000);
  expect(writes(engine)).toBe(false);
  await eventually(async () => {
    if (seen.length < 4) throw new Error('no poll after c3 yet');
  }, 2000);
  expect(reported[3]).toBeNull();
});

test('garbage instead of JSON is rejected without a version and retried with backoff, not in a tight loop', async () => {
  let calls = 0;
  const { url } = await collector((_req, res, after) => {
    calls++;
    if (after === null && calls === 1) send(res, 200, doc('a1', 'read'));
    else res.writeHead(200, { 'content-type': 'application/json' }).end('{"version": "a2", "routes": [');
  });
  const engine = new PolicyEngine();
  const client = await start(url, engine);
  await new Promise((r) => setTimeout(r, 500));
  expect(client.version).toBe('a1');
  expect(client.stats.rejected).toBeGreaterThan(0);
  expect(calls).toBeLessThan(30);
});

test('the collector going away keeps the last policy; it comes back and a new version is applied within 2 s', async () => {
  let version = 'a1';
  let access = 'readWrite';
  const { url, server } = await collector((_req, res, after) => {
    if (after !== version) send(res, 200, doc(version, access));
    else setTimeout(() => res.writeHead(304).end(), 200);
  });
  const engine = new PolicyEngine();
  const client = await start(url, engine);
  const port = (server.address() as AddressInfo).port;
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  await eventually(async () => {
    if (client.stats.failures < 2) throw new Error('not noticed yet');
  });
  expect(writes(engine)).toBe(true);
  // Back on the same port with a new version.
  version = 'b2';
  access = 'read';
  const back = createServer((req, res) => {
    const after = new URL(req.url ?? '/', 'http://x').searchParams.get('after');
    if (after !== version) send(res, 200, doc(version, access));
    else setTimeout(() => res.writeHead(304).end(), 200);
  });
  await new Promise<void>((r) => back.listen(port, '127.0.0.1', r));
  servers.push(back);
  const backAt = Date.now();
  await eventually(async () => {
    if (client.version !== 'b2') throw new Error('not yet');
  }, 2000);
  expect(Date.now() - backAt).toBeLessThan(2000);
  expect(writes(engine)).toBe(false);
});

test('over HTTPS, trusting the collector through caFile; an untrusted certificate is a failure, not a policy', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'byline-policy-tls-'));
  try {
    const certs = makeCertificates(dir);
    const server = createHttpsServer(
      { cert: readFileSync(certs.certFile), key: readFileSync(certs.keyFile) },
      (_req, res) => send(res, 200, doc('a1', 'readWrite')),
    );
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    servers.push(server as unknown as Server);
    const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;

    const untrusted = new AbortController();
    const refused = PolicyClient.start(
      { url, token: () => 'sidecar-token', logger, engine: new PolicyEngine(), backoff: { baseMs: 20, capMs: 50 } },
      untrusted.signal,
    );
    setTimeout(() => untrusted.abort(), 300);
    await expect(refused).rejects.toThrow(/stopped before a policy arrived/);

    const engine = new PolicyEngine();
    const client = await PolicyClient.start({
      url,
      token: () => 'sidecar-token',
      caFile: certs.caFile,
      logger,
      engine,
    });
    clients.push(client);
    expect(client.version).toBe('a1');
    expect(writes(engine)).toBe(true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
