import { afterAll, beforeAll, expect, test } from 'vitest';
import { startPostgres, type TestPostgres } from './postgres.js';

let pg: TestPostgres;
beforeAll(async () => {
  pg = await startPostgres({ logStatements: true, ssl: true });
});
afterAll(async () => pg?.stop());

test('the harness starts a real Postgres whose statement log can be read back', async () => {
  const c = pg.client();
  await c.connect();
  const r = await c.query("select 'harness-check' as v");
  await c.end();
  expect(r.rows[0].v).toBe('harness-check');
  await new Promise((r) => setTimeout(r, 300));
  expect(pg.statementLog().some((e) => e.message.includes("select 'harness-check'"))).toBe(true);
});
