/**
 * The write-attempt table (write-attempts.ts) through a real sidecar with a `read` route, against a
 * real Postgres: every attempt is refused — by the sidecar (42501, never forwarded) or by Postgres
 * in the read-only session the sidecar opened (25006 and the like) — or, for the one attempt whose
 * body is out of sight (a SECURITY DEFINER function turning read-only off), the session is ended
 * when Postgres reports the change. Each is recorded with the decision and the outcome.
 */
import type { AuditEvent } from '@byline/api';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startPostgres, type TestPostgres } from '../harness/postgres.js';
import { eventually, startTestSidecar, type TestSidecar } from '../harness/sidecar.js';
import { SETUP_SQL, WRITE_ATTEMPTS } from './write-attempts.js';

let db: TestPostgres;
let reader: TestSidecar;

beforeAll(async () => {
  db = await startPostgres();
  const setup = db.client();
  await setup.connect();
  await setup.query(SETUP_SQL);
  await setup.end();
  reader = await startTestSidecar(db, { route: { access: 'read' } });
});
afterAll(async () => {
  await reader?.close();
  await db?.stop();
});

const READ_RULE = 'sidecar config routes[test-db].access=read';

async function attempt(sql: string, params?: unknown[]) {
  const client = new pg.Client({ host: reader.host, port: reader.port, user: 'postgres', database: 'postgres' });
  client.on('error', () => {});
  await client.connect();
  const port = (client as unknown as { connection: { stream: { localPort: number } } }).connection.stream.localPort;
  let error: { code?: string; message: string } | null = null;
  try {
    await (params ? client.query(sql, params) : client.query(sql));
  } catch (e) {
    error = e as { code?: string; message: string };
  }
  await client.end().catch(() => {});
  return { error, client: `127.0.0.1:${port}` };
}

async function eventsOf(client: string): Promise<AuditEvent[]> {
  return (await reader.events()).filter((e) => e.session.client === client);
}

describe('each write attempt through a read route', () => {
  for (const a of WRITE_ATTEMPTS.filter((w) => !w.control)) {
    test(a.name, async () => {
      const { error, client } = await attempt(a.sql, a.params);
      expect(error, 'every write attempt is refused').not.toBeNull();
      const events = await eventually(async () => {
        const all = await eventsOf(client);
        expect(all.some((e) => e.type === 'session.end')).toBe(true);
        return all;
      });
      const statements = events.filter((e) => e.type === 'statement');
      expect(statements.length).toBeGreaterThan(0);
      if (a.sidecar === 'refuses') {
        expect(error!.code).toBe('42501');
        const denied = statements.filter((e) => e.result!.status === 'denied');
        expect(denied).toHaveLength(1);
        expect(denied[0]!.authz!.decision).toBe('deny');
        expect(denied[0]!.authz!.rule).toBe(READ_RULE);
        expect(denied[0]!.result!.error).toBe(`byline: ${error!.message.replace(/^byline: /, '')}`);
      } else if (a.hole !== undefined) {
        // Postgres said default_transaction_read_only=off: the session is over, and says why.
        expect(error!.message).toMatch(/left read-only mode/);
        const end = events.find((e) => e.type === 'session.end')!;
        expect(end.result!.sqlstate).toBe('42501');
        expect(end.result!.error).toMatch(/left read-only mode/);
      } else {
        expect(error!.code).toBe(a.sqlstate ?? '25006');
        const failed = statements.filter((e) => e.result!.sqlstate === error!.code);
        expect(failed).toHaveLength(1);
        expect(failed[0]!.authz).toMatchObject({ decision: 'allow', rule: READ_RULE });
      }
    });
  }
});

describe('controls (reads) run', () => {
  for (const a of WRITE_ATTEMPTS.filter((w) => w.control)) {
    test(a.name, async () => {
      const { error, client } = await attempt(a.sql, a.params);
      expect(error).toBeNull();
      const statements = await eventually(async () => {
        const s = (await eventsOf(client)).filter((e) => e.type === 'statement');
        expect(s.length).toBeGreaterThan(0);
        return s;
      });
      for (const e of statements) expect(e.authz).toEqual({ approval: null, decision: 'allow', rule: READ_RULE });
    });
  }
});
