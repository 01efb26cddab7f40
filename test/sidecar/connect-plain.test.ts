/**
 * Upstream sslMode against a Postgres that does not serve TLS (answers SSLRequest with N):
 * `prefer` falls back to plaintext, `require` and `verify-full` refuse with a clear error.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startPostgres, type TestPostgres } from '../harness/postgres.js';
import { startTestSidecar, type TestSidecar } from '../harness/sidecar.js';

let db: TestPostgres;

beforeAll(async () => {
  db = await startPostgres();
});

afterAll(async () => {
  await db?.stop();
});

async function withSslMode<T>(
  sslMode: 'disable' | 'prefer' | 'require' | 'verify-full',
  fn: (s: TestSidecar) => Promise<T>,
): Promise<T> {
  const s = await startTestSidecar(db, {
    route: { upstream: { host: db.host, port: db.port, database: 'postgres', sslMode } },
  });
  try {
    return await fn(s);
  } finally {
    await s.close();
  }
}

function client(s: TestSidecar): pg.Client {
  const c = new pg.Client({ host: s.host, port: s.port, user: 'agent', database: 'postgres' });
  c.on('error', () => {});
  return c;
}

describe('upstream sslMode against a Postgres without TLS', () => {
  test.each(['disable', 'prefer'] as const)('%s connects in plaintext', async (sslMode) => {
    await withSslMode(sslMode, async (s) => {
      const c = client(s);
      await c.connect();
      const r = await c.query('select ssl from pg_stat_ssl where pid = pg_backend_pid()');
      await c.end();
      expect(r.rows).toEqual([{ ssl: false }]);
    });
  });

  test.each(['require', 'verify-full'] as const)('%s is refused with FATAL 08006 saying why', async (sslMode) => {
    await withSslMode(sslMode, async (s) => {
      const c = client(s);
      const e = (await c.connect().then(
        () => new Error('connected'),
        (x: unknown) => x,
      )) as pg.DatabaseError;
      expect(e.code).toBe('08006');
      expect(e.severity).toBe('FATAL');
      expect(e.message).toBe(`byline: the database server at ${db.host}:${db.port} refused TLS (sslMode ${sslMode})`);
      const events = await s.events();
      expect(events.map((x) => x.type)).toEqual(['session.start', 'session.end']);
      expect(events[0]!.result).toMatchObject({ status: 'error', sqlstate: '08006' });
    });
  });
});
