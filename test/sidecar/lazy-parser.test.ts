/**
 * libpg-query (~19 MiB resident) is loaded by the first connection, not at start: an idle sidecar
 * does without it, and the first client's statements are still decided by the policy and recorded
 * with their tables. Runs in its own file, so no other test has loaded the parser in this process.
 */
import { once } from 'node:events';
import { connect } from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { loadedParser } from '../../sidecar/src/sql/parser.js';
import { startPostgres, type TestPostgres } from '../harness/postgres.js';
import { startTestSidecar, type TestSidecar } from '../harness/sidecar.js';

let db: TestPostgres;
let sidecar: TestSidecar;

beforeAll(async () => {
  db = await startPostgres();
  const admin = db.client();
  await admin.connect();
  await admin.query('create table lazy_t (a int); create table payroll_lazy (a int)');
  await admin.end();
  sidecar = await startTestSidecar(db, {
    route: { access: 'readWrite' },
    guardrails: { deny: { tables: ['public.payroll*'] }, requireWhere: ['delete'] },
  });
});

afterAll(async () => {
  await sidecar?.close();
  await db?.stop();
});

test('the parser loads with the first connection; its statements are decided and name their tables', async () => {
  expect(loadedParser(), 'loaded at start').toBeUndefined();

  // A client that goes away while the parser loads (this one starts the load): no session, no crash.
  const early = connect(sidecar.port, sidecar.host);
  await once(early, 'connect');
  early.destroy();

  const connectStarted = performance.now();
  const client = new pg.Client({ host: sidecar.host, port: sidecar.port, user: 'postgres', database: 'postgres' });
  client.on('error', () => {});
  await client.connect();
  const connectMs = performance.now() - connectStarted;
  try {
    expect(loadedParser()).toBeDefined();
    const t0 = performance.now();
    await client.query('select a from lazy_t where a = 1');
    const firstMs = performance.now() - t0;
    const t1 = performance.now();
    await client.query('select a from lazy_t where a = 3 and a = 4');
    const secondMs = performance.now() - t1;
    await expect(client.query('select a from public.payroll_lazy where a = 2')).rejects.toMatchObject({
      code: '42501',
      message: expect.stringMatching(/payroll_lazy is denied .* guardrails\.deny\.tables/),
    });
    await expect(client.query('delete from lazy_t')).rejects.toMatchObject({ code: '42501' });
    // Printed for the record: what the first client pays for the lazy load (connect) and after it.
    console.log(
      `lazy parser: first connect ${connectMs.toFixed(0)} ms, first statement ${firstMs.toFixed(1)} ms, second ${secondMs.toFixed(1)} ms`,
    );
  } finally {
    await client.end();
  }

  const events = await sidecar.statements();
  const byText = (text: string) => events.find((e) => e.statement?.text === text);
  expect(byText('select a from lazy_t where a = 1')).toMatchObject({
    statement: { tables: ['lazy_t'] },
    authz: { decision: 'allow' },
  });
  expect(byText('select a from public.payroll_lazy where a = 2')).toMatchObject({
    statement: { tables: ['public.payroll_lazy'] },
    result: { status: 'denied' },
    authz: { decision: 'deny', rule: 'sidecar config guardrails.deny.tables' },
  });
  expect(byText('delete from lazy_t')).toMatchObject({ authz: { decision: 'deny' } });
});
