/**
 * The policy enforced on the wire, against a real Postgres: a denied statement is never forwarded,
 * and the client gets its denial exactly where, and as, Postgres would put an error — the same
 * message types and transaction states as a real server error in the same position (compared
 * against a direct connection, as test/differential does), simple, extended and pipelined, inside
 * and outside transaction blocks. Every statement is recorded with the rule that decided it.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { AuditEvent } from '@byline/api';
import pg from 'pg';
import postgres from 'postgres';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import {
  type BackendMessage,
  bind,
  type ConversationResult,
  converse,
  execute,
  fields,
  functionCall,
  parse,
  query,
  type Step,
  startup,
  sync,
  types,
} from '../differential/wire.js';
import { startPostgres, type TestPostgres } from '../harness/postgres.js';
import { startTestSidecar, type TestSidecar } from '../harness/sidecar.js';

const run = promisify(execFile);

let db: TestPostgres;
/** readWrite, DDL denied, DELETE needs WHERE, payroll tables denied, ALTER … on invoices gated by approval. */
let guarded: TestSidecar;
let reader: TestSidecar;
let admin: pg.Client;

const RW_RULE = 'sidecar config routes[test-db].access=readWrite';

beforeAll(async () => {
  db = await startPostgres();
  guarded = await startTestSidecar(db, {
    route: { access: 'readWrite' },
    guardrails: {
      deny: { classes: ['ddl'], tables: ['public.payroll*'] },
      requireWhere: ['delete'],
      requireApproval: { tables: ['public.invoices'] },
    },
  });
  reader = await startTestSidecar(db, { route: { access: 'read' } });
  admin = db.client();
  await admin.connect();
  await admin.query(`
    create table t (a int);
    create table payroll_2026 (a int);
    create table invoices (a int);
    create function sneak_read_write() returns text language sql security definer
      as $$ select set_config('default_transaction_read_only', 'off', false) $$;
  `);
});

beforeEach(async () => {
  await admin.query('truncate t');
});

afterAll(async () => {
  await admin?.end();
  await guarded?.close();
  await reader?.close();
  await db?.stop();
});

const START: Step = { send: [startup({ user: 'postgres', database: 'postgres' })], until: 'Z' };

/** The ReadyForQuery transaction states of a conversation's steps, after the startup. */
function states(r: ConversationResult): string[] {
  return r.messages.filter((m) => m.type === 'Z').map((m) => String.fromCharCode(m.body[0]!));
}

function shape(r: ConversationResult): string[] {
  return r.steps.slice(1).map(types);
}

function errors(r: ConversationResult): Record<string, string>[] {
  return r.messages.filter((m: BackendMessage) => m.type === 'E').map(fields);
}

async function count(table: string): Promise<number> {
  return Number((await admin.query(`select count(*) as n from ${table}`)).rows[0].n);
}

async function sessionEvents(sidecar: TestSidecar, r: ConversationResult): Promise<AuditEvent[]> {
  const events = await sidecar.statements();
  return events.filter((e) => e.session.client === `127.0.0.1:${r.localPort}`);
}

/** A statement that fails in Postgres at execution, with no RowDescription first (simple or extended). */
const FAILS = "do $$ begin raise exception 'fails'; end $$";

/** Runs `steps(denied)` through the sidecar and `steps(failing)` straight to Postgres. */
async function versus(steps: (sql: string) => Step[], denied: string, failing: string) {
  const direct = await converse(db, [START, ...steps(failing)]);
  const via = await converse(guarded, [START, ...steps(denied)]);
  expect(shape(via)).toEqual(shape(direct));
  expect(states(via)).toEqual(states(direct));
  return { direct, via };
}

describe('simple Query', () => {
  test('a denial on an idle session: ErrorResponse 42501 naming the rule, then ReadyForQuery I, and the session goes on', async () => {
    const { via } = await versus(
      (sql) => [
        { send: [query(sql)], until: 'Z' },
        { send: [query('select 1')], until: 'Z' },
      ],
      'drop table t',
      FAILS,
    );
    const [denial] = errors(via);
    expect(denial!.C).toBe('42501');
    expect(denial!.S).toBe('ERROR');
    expect(denial!.M).toBe(
      'byline: DROP is denied for test-agent by sidecar config routes[test-db].access=readWrite (a ddl statement needs admin)',
    );
    expect(await count('t')).toBe(0);
    const events = await sessionEvents(guarded, via);
    expect(events.map((e) => [e.statement!.text, e.result!.status, e.authz!.decision, e.authz!.rule])).toEqual([
      ['drop table t', 'denied', 'deny', RW_RULE],
      ['select 1', 'ok', 'allow', RW_RULE],
    ]);
    expect(events[0]!.result!.sqlstate).toBe('42501');
    expect(events[0]!.result!.error).toBe(denial!.M);
  });

  test('inside a transaction block the denial fails the transaction (E) and the client’s ROLLBACK works', async () => {
    const { via } = await versus(
      (sql) => [
        { send: [query('begin; insert into t values (1)')], until: 'Z' },
        { send: [query(sql)], until: 'Z' },
        { send: [query('select 1')], until: 'Z' },
        { send: [query('rollback')], until: 'Z' },
      ],
      'delete from t',
      FAILS,
    );
    expect(states(via)).toEqual(['I', 'T', 'E', 'E', 'I']);
    expect(errors(via)[0]!.M).toMatch(
      /DELETE without WHERE is denied for test-agent by sidecar config guardrails.requireWhere/,
    );
    expect(errors(via)[1]!.C).toBe('25P02'); // Postgres's own answer in the failed transaction
    expect(await count('t')).toBe(0);
  });

  test('a multi-statement Query with one denied statement is refused whole; each statement is recorded', async () => {
    const { via } = await versus(
      (sql) => [{ send: [query(sql)], until: 'Z' }],
      'insert into t values (7); select * from payroll_2026; select 2',
      // Postgres runs a Query as one implicit transaction, so the honest refusal runs none of it:
      // the client sees what a Query that does not parse gives.
      'insert into t values (7); select * from payroll_2026 where; select 2',
    );
    expect(await count('t')).toBe(0);
    const events = await sessionEvents(guarded, via);
    expect(events.map((e) => [e.statement!.text, e.result!.status, e.authz!.decision])).toEqual([
      ['insert into t values (7)', 'error', 'allow'],
      ['select * from payroll_2026', 'denied', 'deny'],
      ['select 2', 'error', 'allow'],
    ]);
    expect(events[0]!.result!.error).toBe('not executed: statement 2 of the same Query was denied by byline');
    expect(events[1]!.authz!.rule).toBe('sidecar config guardrails.deny.tables');
  });

  test('pipelined Queries: the denial comes in its place between the answers of the others', async () => {
    const { via } = await versus(
      (sql) => [
        {
          send: [query('insert into t values (1)'), query(sql), query('select count(*) from t')],
          until: { type: 'Z', times: 3 },
        },
      ],
      'create table x (a int)',
      FAILS,
    );
    expect(shape(via)[0]).toBe('CZEZTDCZ');
    expect(errors(via)).toHaveLength(1);
    // WHERE true and the like count as no WHERE.
    const r = await converse(guarded, [START, { send: [query('delete from t where true')], until: 'Z' }]);
    expect(errors(r)[0]!.M).toMatch(/DELETE without WHERE is denied/);
    expect(await count('t')).toBe(2); // one from each run
  });

  test('an approval-gated statement is refused with a HINT giving the exact request command', async () => {
    const r = await converse(guarded, [
      START,
      { send: [query('update public.invoices set a = 1 where a = 2')], until: 'Z' },
    ]);
    const [denial] = errors(r);
    expect(denial!.C).toBe('42501');
    expect(denial!.M).toBe(
      'byline: UPDATE needs an approval for test-agent by sidecar config guardrails.requireApproval (table public.invoices); none is active',
    );
    expect(denial!.H).toBe(
      'Ask for one: byline approval request --identity test-agent --route test-db --table public.invoices ' +
        '--reason "<why>" --ticket <ticket> --for 1h, and retry once someone else has approved it (byline approve NAME).',
    );
  });
});

describe('extended protocol', () => {
  test('a denied Execute errors where Postgres would, everything until Sync is skipped, and the pipeline rolls back', async () => {
    const { via } = await versus(
      (sql) => [
        {
          send: [
            parse('', 'insert into t values (1)'),
            bind('', ''),
            execute(''),
            parse('', sql),
            bind('', ''),
            execute(''),
            parse('', 'insert into t values (2)'),
            bind('', ''),
            execute(''),
            sync(),
          ],
          until: 'Z',
        },
        { send: [parse('', 'select 1'), bind('', ''), execute(''), sync()], until: 'Z' },
      ],
      'delete from t',
      FAILS,
    );
    expect(shape(via)).toEqual(['12C12EZ', '12DCZ']);
    expect(await count('t')).toBe(0);
    const events = await sessionEvents(guarded, via);
    expect(events.map((e) => [e.statement!.text, e.statement!.protocol, e.result!.status])).toEqual([
      ['insert into t values (1)', 'extended', 'ok'],
      ['delete from t', 'extended', 'denied'],
      ['insert into t values (2)', 'extended', 'error'],
      ['select 1', 'extended', 'ok'],
    ]);
  });

  test('a prepared statement is decided again at every Execute', async () => {
    const r = await converse(guarded, [
      START,
      { send: [parse('wipe', 'delete from t'), sync()], until: 'Z' },
      { send: [bind('', 'wipe'), execute(''), sync()], until: 'Z' },
      { send: [bind('', 'wipe'), execute(''), sync()], until: 'Z' },
    ]);
    expect(shape(r)).toEqual(['1Z', '2EZ', '2EZ']);
    expect(errors(r).map((e) => e.C)).toEqual(['42501', '42501']);
  });

  test('SQL PREPARE of a denied statement is refused; Bind and Execute of it then fail in Postgres', async () => {
    const r = await converse(guarded, [
      START,
      { send: [query('prepare p as delete from t')], until: 'Z' },
      { send: [bind('', 'p'), execute(''), sync()], until: 'Z' },
    ]);
    expect(errors(r).map((e) => e.C)).toEqual(['42501', '26000']);
    expect(errors(r)[0]!.M).toMatch(/DELETE without WHERE is denied/);
  });

  test('a FunctionCall is refused for read: it names a function by OID and cannot be analysed', async () => {
    const direct = await converse(db, [START, { send: [functionCall(0, [])], until: 'Z' }]);
    const via = await converse(reader, [START, { send: [functionCall(1299 /* now() */, [])], until: 'Z' }]);
    expect(shape(via)).toEqual(shape(direct));
    expect(errors(via)[0]!.C).toBe('42501');
    expect(errors(via)[0]!.M).toMatch(
      /FunctionCall is denied for test-agent by sidecar config routes\[test-db\]\.access=read/,
    );
    const events = await sessionEvents(reader, via);
    expect(events.map((e) => [e.statement!.protocol, e.result!.status])).toEqual([['function', 'denied']]);
  });
});

describe('read, enforced by Postgres too', () => {
  test('the upstream session is read-only whatever the client asks in its startup', async () => {
    const client = new pg.Client({
      host: reader.host,
      port: reader.port,
      user: 'postgres',
      database: 'postgres',
      options: '-c default_transaction_read_only=off -c search_path=public',
    });
    await client.connect();
    const r = await client.query('show default_transaction_read_only');
    expect(r.rows[0].default_transaction_read_only).toBe('on');
    // The client's other options still apply, byte for byte.
    expect((await client.query('show search_path')).rows[0].search_path).toBe('public');
    await expect(client.query('set default_transaction_read_only = off')).rejects.toMatchObject({ code: '42501' });
    await client.end();
  });

  test('with standard_conforming_strings off (here from the client’s startup) nothing is authorized: the parser would misread it', async () => {
    const client = new pg.Client({
      host: guarded.host,
      port: guarded.port,
      user: 'postgres',
      database: 'postgres',
      options: '-c standard_conforming_strings=off',
    });
    await client.connect();
    // To the parser one string; to Postgres with the setting off, a DELETE without WHERE.
    await expect(client.query("SELECT 'x\\''; DELETE FROM t; --'")).rejects.toMatchObject({
      code: '42501',
      message: expect.stringMatching(/standard_conforming_strings is off/),
    });
    await client.end();
  });

  test('a function that turns read-only mode off ends the session with a FATAL, and it is recorded', async () => {
    const client = new pg.Client({ host: reader.host, port: reader.port, user: 'postgres', database: 'postgres' });
    client.on('error', () => {});
    await client.connect();
    await expect(client.query('select sneak_read_write()')).rejects.toThrow(/left read-only mode/);
    await client.end().catch(() => {});
    const ends = (await reader.events()).filter(
      (e) => e.type === 'session.end' && /left read-only mode/.test(e.result?.error ?? ''),
    );
    expect(ends).toHaveLength(1);
    expect(ends[0]!.result!.sqlstate).toBe('42501');
  });
});

describe('real clients', () => {
  test('node-postgres: a denial is an ordinary DatabaseError, and the transaction rolls back as usual', async () => {
    const client = new pg.Client({ host: guarded.host, port: guarded.port, user: 'postgres', database: 'postgres' });
    await client.connect();
    await client.query('begin');
    await client.query('insert into t values ($1)', [5]);
    await expect(client.query('alter table t add column b int')).rejects.toMatchObject({ code: '42501' });
    await client.query('rollback');
    expect((await client.query('select count(*)::int as n from t')).rows[0].n).toBe(0);
    await client.end();
  });

  test('postgres.js, pipelined: the denied query rejects, the others resolve', async () => {
    const sql = postgres({ host: guarded.host, port: guarded.port, user: 'postgres', database: 'postgres', max: 1 });
    try {
      const [a, b, c] = await Promise.allSettled([sql`select 1 as one`, sql`delete from t`, sql`select 2 as two`]);
      expect(a.status).toBe('fulfilled');
      expect(b.status === 'rejected' && (b.reason as { code?: string }).code).toBe('42501');
      expect(c.status).toBe('fulfilled');
    } finally {
      await sql.end();
    }
  });

  test('pgbench, simple, extended and prepared: select-only runs through a read route; TPC-B’s UPDATE is denied', async () => {
    await run('pgbench', ['-i', '-q', '-s', '1', '-h', db.host, '-p', String(db.port), '-U', 'postgres', 'postgres']);
    for (const mode of ['simple', 'extended', 'prepared']) {
      const args = ['-n', '-h', reader.host, '-p', String(reader.port), '-U', 'postgres', '-M', mode, '-t', '20'];
      const reads = await run('pgbench', [...args, '-S', 'postgres']);
      expect(reads.stdout).toMatch(/number of transactions actually processed: 20\/20/);
      const writes = await run('pgbench', [...args, 'postgres']).catch((e: { stderr: string; code: number }) => e);
      expect((writes as { code: number }).code).not.toBe(0);
      expect((writes as { stderr: string }).stderr).toMatch(
        /ERROR: {2}byline: UPDATE is denied for test-agent by sidecar config routes\[test-db\]\.access=read/,
      );
    }
    const balances = await admin.query('select sum(abalance)::int as s from pgbench_accounts');
    expect(balances.rows[0].s).toBe(0);
  });

  test('psql prints the denial and its HINT like any server error', async () => {
    const result = await run(
      'psql',
      [
        '-X',
        '-h',
        guarded.host,
        '-p',
        String(guarded.port),
        '-U',
        'postgres',
        '-d',
        'postgres',
        '-c',
        'delete from invoices where a = 1',
      ],
      { env: { ...process.env, PGCONNECT_TIMEOUT: '10' } },
    ).catch((e: { stderr: string; code: number }) => e);
    expect((result as { code: number }).code).toBe(1);
    expect((result as { stderr: string }).stderr).toMatch(/ERROR: {2}byline: DELETE needs an approval/);
    expect((result as { stderr: string }).stderr).toMatch(/HINT: {2}Ask for one: byline approval request/);
  });
});

test('decisions are counted per route and decision (byline_policy_decisions_total)', async () => {
  const before = await guarded.running.metrics.registry.getSingleMetricAsString('byline_policy_decisions_total');
  const denied = (text: string) => Number(/decision="deny"[^}]*} (\d+)/.exec(text)?.[1] ?? 0);
  const allowed = (text: string) => Number(/decision="allow"[^}]*} (\d+)/.exec(text)?.[1] ?? 0);
  await converse(guarded, [
    START,
    { send: [query('select 1; select 2')], until: 'Z' },
    { send: [query('drop table t')], until: 'Z' },
  ]);
  const after = await guarded.running.metrics.registry.getSingleMetricAsString('byline_policy_decisions_total');
  expect(after).toMatch(/byline_policy_decisions_total\{route="test-db",decision="deny"\} \d+/);
  expect(denied(after) - denied(before)).toBe(1);
  expect(allowed(after) - allowed(before)).toBe(2);
});
