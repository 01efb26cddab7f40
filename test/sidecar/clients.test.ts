/**
 * Real clients through the sidecar: node-postgres, postgres.js and psql. Each must work exactly
 * as against Postgres, and every statement it ran must have its event.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import pg from 'pg';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startPostgres, type TestPostgres } from '../harness/postgres.js';
import { startTestSidecar, type TestSidecar } from '../harness/sidecar.js';

const run = promisify(execFile);

let db: TestPostgres;
let sidecar: TestSidecar;

beforeAll(async () => {
  db = await startPostgres();
  sidecar = await startTestSidecar(db, { params: 'full' });
  const c = db.client();
  await c.connect();
  await c.query('create table customers (id int primary key, name text, email text)');
  await c.end();
});

afterAll(async () => {
  await sidecar?.close();
  await db?.stop();
});

function byText(events: Awaited<ReturnType<TestSidecar['statements']>>, text: string) {
  return events.filter((e) => e.statement?.text === text);
}

describe('node-postgres', () => {
  test('simple and extended queries work and are each recorded with identity, result and params', async () => {
    const client = new pg.Client({
      host: sidecar.host,
      port: sidecar.port,
      user: 'whoever',
      database: 'postgres',
      application_name: 'billing-run',
    });
    await client.connect();
    await client.query("insert into customers values (1, 'Ada', 'ada@example.com'), (2, 'Grace', 'grace@example.com')");
    const r = await client.query('select name from customers where id = $1', [2]);
    expect(r.rows).toEqual([{ name: 'Grace' }]);
    await expect(client.query('select * from no_such_table')).rejects.toThrow(/does not exist/);
    const update = await client.query({
      name: 'rename',
      text: 'update customers set name = $1 where id = $2',
      values: ['Ada L.', 1],
    });
    expect(update.rowCount).toBe(1);
    await client.end();

    const events = await sidecar.statements();
    const insert = byText(
      events,
      "insert into customers values (1, 'Ada', 'ada@example.com'), (2, 'Grace', 'grace@example.com')",
    );
    expect(insert).toHaveLength(1);
    expect(insert[0]!.identity).toMatchObject({ name: 'test-agent', kind: 'agent', source: 'static' });
    expect(insert[0]!.statement).toMatchObject({
      protocol: 'simple',
      command: 'INSERT',
      class: 'write',
      tables: ['customers'],
    });
    expect(insert[0]!.result).toMatchObject({ status: 'ok', tag: 'INSERT 0 2', rows: 2 });
    expect(insert[0]!.session.applicationName).toBe('billing-run');
    expect(insert[0]!.session.dbUser).toBe('scram_user');
    expect(insert[0]!.target).toMatchObject({ route: 'test-db', database: 'postgres' });

    const select = byText(events, 'select name from customers where id = $1');
    expect(select).toHaveLength(1);
    expect(select[0]!.statement).toMatchObject({
      protocol: 'extended',
      params: ['2'],
      paramsMode: 'full',
      class: 'read',
    });
    expect(select[0]!.result).toMatchObject({ status: 'ok', rows: 1, tag: 'SELECT 1' });

    const failed = byText(events, 'select * from no_such_table');
    expect(failed).toHaveLength(1);
    expect(failed[0]!.result).toMatchObject({ status: 'error', sqlstate: '42P01' });

    const named = byText(events, 'update customers set name = $1 where id = $2');
    expect(named[0]!.statement).toMatchObject({ preparedName: 'rename', params: ['Ada L.', '1'], command: 'UPDATE' });
    expect(named[0]!.result).toMatchObject({ status: 'ok', rows: 1 });
  });
});

describe('postgres.js', () => {
  test('pipelined prepared statements and a transaction are recorded in session order', async () => {
    const sql = postgres({
      host: sidecar.host,
      port: sidecar.port,
      user: 'agent',
      database: 'postgres',
      max: 1,
      onnotice: () => {},
    });
    const [a, b] = await Promise.all([sql`select ${10}::int + 1 as v`, sql`select ${'x'}::text || 'y' as v`]);
    expect(a[0]!.v).toBe(11);
    expect(b[0]!.v).toBe('xy');
    await sql.begin(async (tx) => {
      await tx`insert into customers values (${3}, ${'Linus'}, ${'l@example.com'})`;
      await tx`update customers set email = ${'linus@example.com'} where id = ${3}`;
    });
    await sql.end();
    const events = await sidecar.statements();
    const mine = events.filter(
      (e) => e.session.id === events.find((x) => x.statement?.text.includes("::text || 'y'"))!.session.id,
    );
    const texts = mine.map((e) => e.statement!.text);
    expect(texts).toContain('select $1::int + 1 as v');
    expect(texts.indexOf('begin')).toBeLessThan(texts.findIndex((t) => t.startsWith('insert into customers')));
    expect(texts.at(-1)).toBe('commit');
    const seqs = mine.map((e) => e.session.seq);
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
  });
});

describe('psql', () => {
  test('several statements in one Query are recorded one by one, up to the one that failed', async () => {
    const script = "select 1 as one; select 'two;' as two; select 1/0; create table audit_me (x int)";
    const result = await run('psql', [
      '-X',
      '-h',
      sidecar.host,
      '-p',
      String(sidecar.port),
      '-U',
      'agent',
      '-d',
      'postgres',
      '-c',
      script,
    ]).catch((e) => e as { stderr: string });
    expect(result.stderr).toContain('division by zero');
    const events = await sidecar.statements();
    const session = byText(events, 'select 1 as one').at(-1)!.session.id;
    const mine = events.filter((e) => e.session.id === session);
    expect(mine.map((e) => e.statement!.text)).toEqual([
      'select 1 as one',
      "select 'two;' as two",
      'select 1/0',
      'create table audit_me (x int)',
    ]);
    expect(mine.map((e) => e.result!.status)).toEqual(['ok', 'ok', 'error', 'error']);
    expect(mine[2]!.result!.sqlstate).toBe('22012');
    expect(mine[3]!.result!.error).toMatch(/not executed/);
  });

  test('psql reads a file statement by statement, and COPY FROM STDIN rows arrive', async () => {
    const { stdout } = await run('bash', [
      '-c',
      `printf 'copy customers (id, name) from stdin;\\n10\\tx\\n11\\ty\\n\\\\.\\nselect count(*) from customers where id >= 10;\\n' | psql -X -q -t -h ${sidecar.host} -p ${sidecar.port} -U agent -d postgres`,
    ]);
    expect(stdout.trim()).toBe('2');
    const events = await sidecar.statements();
    const copy = byText(events, 'copy customers (id, name) from stdin');
    expect(copy).toHaveLength(1);
    expect(copy[0]!.statement).toMatchObject({ protocol: 'copy', command: 'COPY', class: 'write' });
    expect(copy[0]!.result).toMatchObject({ status: 'ok', rows: 2 });
  });
});
