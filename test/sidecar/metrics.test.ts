/** The sidecar's metrics listener: Prometheus text for SREs, and the readiness the pod's probe asks. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SidecarConfigSchema, validate } from '@byline/api';
import { type RunningSidecar, startSidecar } from '@byline/sidecar';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { AUTH_USERS, startPostgres, TEST_PASSWORD, type TestPostgres } from '../harness/postgres.js';

let db: TestPostgres;
let sidecar: RunningSidecar;
let dir: string;

beforeAll(async () => {
  db = await startPostgres();
  dir = mkdtempSync(join(tmpdir(), 'byline-metrics-'));
  writeFileSync(join(dir, 'pw'), TEST_PASSWORD);
  const config = validate(
    SidecarConfigSchema,
    {
      identity: { static: { name: 'metrics-agent', kind: 'agent' } },
      routes: [
        {
          name: 'm',
          listen: '127.0.0.1:0',
          upstream: { host: db.host, port: db.port, database: 'postgres', sslMode: 'disable' },
          credentials: {
            mode: 'inject',
            username: AUTH_USERS.scram,
            passwordFile: join(dir, 'pw'),
            acceptAnyUser: true,
          },
        },
      ],
      audit: { spoolDir: join(dir, 'spool'), maxSpoolBytes: 1 << 20, sinks: [{ file: join(dir, 'audit.jsonl') }] },
      metrics: { listen: '127.0.0.1:0' },
    },
    'metrics test config',
  );
  sidecar = await startSidecar(config, { logger: pino({ level: 'silent' }) });
});

afterAll(async () => {
  await sidecar?.close();
  await db?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const get = (path: string) => fetch(`http://127.0.0.1:${sidecar.metricsPort}${path}`);

test('readyz and healthz answer once the routes listen', async () => {
  expect((await get('/readyz')).status).toBe(200);
  expect(await (await get('/healthz')).text()).toBe('ok\n');
  expect((await get('/nope')).status).toBe(404);
});

test('statements, their classes and results, sessions and spool bytes are counted', async () => {
  const client = new pg.Client({ host: '127.0.0.1', port: sidecar.routes[0]!.port, user: 'x', database: 'postgres' });
  await client.connect();
  await client.query('select 1');
  await client.query('create temp table t (x int)');
  await expect(client.query('select * from missing_table')).rejects.toThrow();
  const during = await (await get('/metrics')).text();
  expect(during).toMatch(/^byline_sessions_active 1$/m);
  await client.end();
  await sidecar.flush();
  const text = await (await get('/metrics')).text();
  expect(text).toMatch(/^byline_statements_total\{route="m",class="read",status="ok"\} 1$/m);
  expect(text).toMatch(/^byline_statements_total\{route="m",class="ddl",status="ok"\} 1$/m);
  expect(text).toMatch(/^byline_statements_total\{route="m",class="read",status="error"\} 1$/m);
  expect(text).toMatch(/^byline_statement_duration_seconds_count 3$/m);
  expect(text).toMatch(/^byline_sessions_active 0$/m);
  const spoolBytes = Number(/^byline_spool_bytes (\d+)$/m.exec(text)?.[1]);
  expect(spoolBytes).toBeGreaterThan(0);
  // What the chart's "spool near full" alert divides by.
  expect(text).toMatch(/^byline_spool_max_bytes 1048576$/m);
});
