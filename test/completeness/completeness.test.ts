/**
 * Completeness: with Postgres's own statement log on (`log_statement=all`), every statement Postgres
 * executed for a session that came through the sidecar has exactly one audit event, with the
 * configured identity, and the sidecar invents none. Real clients drive the workload: node-postgres,
 * postgres.js, psql and pgbench.
 *
 * The matching rule, as observed:
 * - Only log entries of role `scram_user` count: the sidecar logs in as that role, and direct setup
 *   connections use `postgres`. Postgres writes one LOG entry per message it executes:
 *   `statement: <text>` per simple Query, and `execute <name>[/<portal>]: <text>` (or `execute fetch
 *   from …` for a resumed portal) per extended-protocol Execute, `<unnamed>` for the unnamed prepared
 *   statement, with `detail: Parameters: $1 = '…', …` when it had parameters. Parse and Bind are not
 *   logged; an empty Query is (`statement: `); a Query or Parse that fails in the raw parser is
 *   not (it is only in the ERROR entry), so this workload has no syntax errors.
 * - Log entries are grouped by backend pid, events by sidecar session; each pid is paired with the
 *   session (same application_name) whose events its entries align with best
 *   (test/harness/log-match.ts implements the rule; the fuzz tests use it too).
 * - Within a pair, entries and events are aligned in order (most entries matched; among equals,
 *   events that report success, then failure, then the earliest). `statement: T` matches a run of
 *   events of that Query (protocol simple or copy, same `time`, no prepared name) whose texts tile T:
 *   T = sep e1 sep e2 … ek sep, where every sep is whitespace and semicolons and every inner sep has
 *   a semicolon. A T with no statement in it matches one event whose text is T. The events of a
 *   Query's statements after a failed one are part of its run (they carry "not executed").
 * - `execute N: T` matches one event with protocol extended, text exactly T, preparedName N (null
 *   for `<unnamed>`), and parameters that Postgres renders as the same `detail`.
 * - An event that says its statement was not executed never stands for a logged one.
 * - An event left over is "refused" when its result is an error (Postgres refused the statement
 *   before running it: an Execute whose Parse or Bind failed, or one skipped after an earlier error
 *   in its pipeline; Postgres logs those only as ERROR, if at all); "duplicated" when a matched
 *   event of the same session has the same text and time; otherwise "extra", an invented event.
 *   A log entry with no match is "missing".
 */
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import pg from 'pg';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { reconcile, waitForLog } from '../harness/log-match.js';
import { AUTH_USERS, startPostgres, type TestPostgres } from '../harness/postgres.js';
import { startTestSidecar, type TestSidecar } from '../harness/sidecar.js';

const run = promisify(execFile);
const IDENTITY = 'completeness-agent';

let db: TestPostgres;
let sidecar: TestSidecar;

beforeAll(async () => {
  db = await startPostgres({ logStatements: true });
  sidecar = await startTestSidecar(db, { params: 'full', identity: IDENTITY });
  const c = db.client();
  await c.connect();
  await c.query('create table items (id int primary key, name text, qty int)');
  await c.end();
});

afterAll(async () => {
  await sidecar?.close();
  await db?.stop();
});

function runWithInput(cmd: string, args: string[], input: string, env: Record<string, string>) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input);
  });
}

const connArgs = () => ['-h', sidecar.host, '-p', String(sidecar.port), '-U', 'agent'];

describe('workload through the sidecar', () => {
  test('node-postgres: simple, unnamed and named prepared statements, a failure, a transaction', async () => {
    const client = new pg.Client({
      host: sidecar.host,
      port: sidecar.port,
      user: 'agent',
      database: 'postgres',
      application_name: 'complete-pg',
    });
    await client.connect();
    await client.query("insert into items values (1, 'bolt', 10), (2, 'nut', 20)");
    await client.query('');
    await client.query(' ; ;');
    expect((await client.query('select name from items where id = $1', [2])).rows).toEqual([{ name: 'nut' }]);
    const named = { name: 'qty-of', text: 'select qty from items where id = $1' };
    expect((await client.query({ ...named, values: [1] })).rows).toEqual([{ qty: 10 }]);
    expect((await client.query({ ...named, values: [2] })).rows).toEqual([{ qty: 20 }]);
    await expect(client.query('select qty / 0 from items')).rejects.toThrow(/division by zero/);
    await expect(client.query('select * from missing_table where id = $1', [1])).rejects.toThrow(/does not exist/);
    await client.query('BEGIN');
    await client.query('insert into items values ($1, $2, $3)', [3, "o'ring", null]);
    await client.query("update items set qty = 7 where name = 'o''ring'");
    await client.query('COMMIT');
    const multi = (await client.query(
      'update items set qty = qty + 1 where id = 1; select qty from items where id = 1',
    )) as unknown as pg.QueryResult[];
    expect(multi[1]!.rows).toEqual([{ qty: 11 }]);
    await client.end();
  });

  test('postgres.js: pipelined (max 1), concurrent (max 4), a transaction, failures', async () => {
    const options = { host: sidecar.host, port: sidecar.port, user: 'agent', database: 'postgres', onnotice: () => {} };
    const one = postgres({ ...options, max: 1, connection: { application_name: 'complete-pjs-1' } });
    const doubled = await Promise.all([1, 2, 3, 4, 5, 6].map((i) => one`select ${i}::int * 2 as v`));
    expect(doubled.map((r) => r[0]!.v)).toEqual([2, 4, 6, 8, 10, 12]);
    await one.begin(async (tx) => {
      await tx`insert into items values (${4}, ${'washer'}, ${5})`;
      await tx`update items set qty = qty - 1 where id = ${4}`;
    });
    await expect(one`select * from missing_pjs where id = ${1}`).rejects.toThrow(/does not exist/);
    expect((await one`select qty from items where id = ${4}`)[0]!.qty).toBe(4);
    await one.end();

    const four = postgres({ ...options, max: 4, connection: { application_name: 'complete-pjs-4' } });
    const many = await Promise.all(
      Array.from({ length: 12 }, (_, i) => four`select ${i}::int as i, pg_sleep(0.02)::text as slept`),
    );
    expect(many.map((r) => r[0]!.i)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    await expect(four`select 1 / ${0}::int as boom`).rejects.toThrow(/division by zero/);
    await four.end();
  });

  test('psql: a multi-statement -c string and a script with COPY FROM STDIN on stdin', async () => {
    const env = { PGAPPNAME: 'complete-psql-c' };
    const c = await run('psql', ['-X', ...connArgs(), '-d', 'postgres', '-c', "select 1 as one; select 'a;b' as two"], {
      env: { ...process.env, ...env },
    });
    expect(c.stdout).toContain('a;b');
    const failing = await runWithInput(
      'psql',
      ['-X', ...connArgs(), '-d', 'postgres', '-c', 'select 1; select 1/0; select 2'],
      '',
      env,
    );
    expect(failing.stderr).toContain('division by zero');

    const script = [
      'create table stock (id int, note text);',
      'copy stock (id, note) from stdin;',
      '1\tfirst',
      '2\tsecond',
      '\\.',
      'select count(*) from stock;',
      'begin;',
      "update stock set note = 'x' where id = 1;",
      'commit;',
      '',
    ].join('\n');
    const s = await runWithInput(
      'psql',
      ['-X', '-q', '-t', '-v', 'ON_ERROR_STOP=1', ...connArgs(), '-d', 'postgres'],
      script,
      { PGAPPNAME: 'complete-psql-script' },
    );
    expect(s.stderr).toBe('');
    expect(s.code).toBe(0);
    expect(s.stdout.trim()).toBe('2');
  });

  test('pgbench: -i -s 1, then 4 clients × 50 transactions, prepared and simple', async () => {
    const pgbench = (app: string, args: string[]) =>
      run('/usr/bin/pgbench', [...args, ...connArgs(), 'postgres'], {
        env: { ...process.env, PGAPPNAME: app },
        maxBuffer: 16 * 1024 * 1024,
      });
    await pgbench('complete-pgbench-init', ['-i', '-s', '1', '-q']);
    for (const mode of ['prepared', 'simple']) {
      const r = await pgbench(`complete-pgbench-${mode}`, ['-c', '4', '-j', '2', '-t', '50', '-M', mode]);
      expect(r.stdout).toContain('number of transactions actually processed: 200/200');
      expect(r.stdout).toContain('number of failed transactions: 0');
    }
  });
});

// ------------------------------------------------------------------ the comparison

describe('completeness', () => {
  test('every statement Postgres executed through the sidecar has exactly one event with the identity', async () => {
    // Only sessions that came through the sidecar: it logs in as scram_user, setup uses postgres.
    const log = (await waitForLog(db)).filter((e) => e.user === AUTH_USERS.scram);
    const events = await sidecar.statements();
    const r = reconcile(log, events);

    console.log(
      `Postgres executed ${r.statements} statements in ${r.units.length} messages ` +
        `(${r.units.filter((u) => u.kind === 'statement').length} Query, ` +
        `${r.units.filter((u) => u.kind === 'execute').length} Execute); ` +
        `the sidecar recorded ${events.length} statement events: ${r.matchedEvents.size} matched, ` +
        `${r.refused.length} refused before execution, ${r.missing.length} missing, ` +
        `${r.extra.length} extra, ${r.duplicated.length} duplicated`,
    );
    expect(r.missing.map((u) => u.message)).toEqual([]);
    expect(r.extra.map((e) => e.statement?.text)).toEqual([]);
    expect(r.duplicated.map((e) => e.statement?.text)).toEqual([]);
    expect(r.matchedUnits).toBe(r.units.length);
    expect(r.matchedEvents.size).toBe(r.statements);
    expect(events.length).toBe(r.statements + r.refused.length);

    // Refused before execution (so never logged), each with the error that stopped it:
    // node-postgres's Execute after its Parse failed on a missing table, and postgres.js's Execute
    // after its Bind failed (1 / 0 is folded when the plan is made for the bound value).
    // postgres.js's own query on a missing table has no event: it describes a statement before
    // executing it, so its failed Parse is followed by no Execute.
    expect(r.refused.map((e) => [e.statement!.text, e.statement!.protocol, e.result!.sqlstate])).toEqual([
      ['select * from missing_table where id = $1', 'extended', '42P01'],
      ['select 1 / $1::int as boom', 'extended', '22012'],
    ]);
    expect(events.some((e) => e.statement!.text.includes('missing_pjs'))).toBe(false);
    const identities = new Map(
      events.map((e) => [JSON.stringify(e.identity, Object.keys(e.identity).sort()), e.identity]),
    );
    expect([...identities.values()]).toEqual([
      { name: IDENTITY, kind: 'agent', namespace: null, serviceAccount: null, pod: null, source: 'static' },
    ]);

    // The workload is what it claims to be: every client and protocol is represented.
    const apps = new Set(events.map((e) => e.session.applicationName));
    for (const app of [
      'complete-pg',
      'complete-pjs-1',
      'complete-pjs-4',
      'complete-psql-c',
      'complete-psql-script',
      'complete-pgbench-init',
      'complete-pgbench-prepared',
      'complete-pgbench-simple',
    ]) {
      expect(apps).toContain(app);
    }
    expect(new Set(events.map((e) => e.statement!.protocol))).toEqual(new Set(['simple', 'extended', 'copy']));
    // pgbench's 400 transactions of 7 statements each, and nothing of the setup connections.
    const bench = events.filter((e) => /^complete-pgbench-(prepared|simple)$/.test(e.session.applicationName ?? ''));
    expect(bench.filter((e) => /^UPDATE pgbench_accounts/.test(e.statement!.text))).toHaveLength(400);
    expect(events.some((e) => e.statement!.text.includes('log-marker'))).toBe(false);

    // The comparison itself can fail: a lost, a repeated and an invented event are each caught.
    const victim = events.findIndex((e) => e.statement!.text.startsWith('UPDATE pgbench_tellers'));
    const lost = reconcile(log, events.toSpliced(victim, 1));
    expect([lost.missing.length, lost.extra.length, lost.duplicated.length]).toEqual([1, 0, 0]);
    const repeated = reconcile(log, events.toSpliced(victim, 0, { ...events[victim]! }));
    expect([repeated.missing.length, repeated.extra.length, repeated.duplicated.length]).toEqual([0, 0, 1]);
    const invented = { ...events[victim]!, statement: { ...events[victim]!.statement!, text: 'drop table items' } };
    const made = reconcile(log, events.toSpliced(victim, 0, invented));
    expect([made.missing.length, made.extra.length, made.duplicated.length]).toEqual([0, 1, 0]);
  });
});
