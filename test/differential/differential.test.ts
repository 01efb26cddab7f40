/**
 * Differential protocol tests: each byte conversation is sent straight to Postgres and through the
 * sidecar (inject mode, and passthrough mode where even session_authorization must match); the
 * backend messages must be identical but for per-connection values. Each conversation also checks
 * the audit events the sidecar wrote for its session.
 */
import { createHash } from 'node:crypto';
import type { AuditEvent } from '@byline/api';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startPostgres, type TestPostgres } from '../harness/postgres.js';
import { eventually, startTestSidecar, type TestSidecar } from '../harness/sidecar.js';
import {
  type BackendMessage,
  bind,
  type ConversationResult,
  type ConverseOptions,
  close,
  commandTag,
  converse,
  copyData,
  copyDone,
  copyFail,
  dataRow,
  describe as describeMessage,
  execute,
  fields,
  flush,
  functionCall,
  int4,
  keyData,
  message,
  normalise,
  PROTOCOL_3_0,
  PROTOCOL_3_2,
  parameterStatus,
  parse,
  query,
  type Step,
  sendCancel,
  startup,
  sync,
  terminate,
  types,
} from './wire.js';

let db: TestPostgres;
let inject: TestSidecar;
let passthrough: TestSidecar;
let admin: pg.Client;

beforeAll(async () => {
  db = await startPostgres({ logStatements: true });
  inject = await startTestSidecar(db, { params: 'full' });
  passthrough = await startTestSidecar(db, { params: 'full', route: { credentials: { mode: 'passthrough' } } });
  admin = db.client();
  await admin.connect();
  await admin.query('create table deferred (a int unique deferrable initially deferred)');
});

afterAll(async () => {
  await admin?.end();
  await inject?.close();
  await passthrough?.close();
  await db?.stop();
});

/** In inject mode the sidecar logs in upstream as scram_user; direct and passthrough use postgres. */
const INJECT_VARYING = ['session_authorization'];

function start(protocol = PROTOCOL_3_0, extra: Record<string, string> = {}): Step {
  return {
    send: [startup({ user: 'postgres', database: 'postgres', application_name: 'differential', ...extra }, protocol)],
    until: 'Z',
  };
}

interface Runs {
  direct: ConversationResult;
  inject: ConversationResult;
  passthrough: ConversationResult;
}

/** Runs the conversation three ways and asserts the answers match, step by step. */
async function differential(steps: Step[], options: ConverseOptions = {}): Promise<Runs> {
  const direct = await converse(db, steps, options);
  const viaInject = await converse(inject, steps, options);
  const viaPassthrough = await converse(passthrough, steps, options);
  const norm = (r: ConversationResult, varying: string[] = []) => ({
    steps: r.steps.map((s) => normalise(s, varying)),
    leftover: normalise(r.leftover, varying),
  });
  expect(norm(viaPassthrough)).toEqual(norm(direct));
  expect(norm(viaInject, INJECT_VARYING)).toEqual(norm(direct, INJECT_VARYING));
  expect(direct.leftover).toEqual([]);
  return { direct, inject: viaInject, passthrough: viaPassthrough };
}

async function sessionEvents(sidecar: TestSidecar, run: ConversationResult): Promise<AuditEvent[]> {
  const events = await sidecar.events();
  return events.filter((e) => e.session.client === `127.0.0.1:${run.localPort}`);
}

interface Summary {
  text: string;
  protocol: string;
  status: string;
  rows: number | null;
  tag: string | null;
  sqlstate: string | null;
  error: unknown;
  params?: (string | null)[] | null;
}

function summarise(e: AuditEvent, withParams: boolean): Summary {
  const s: Summary = {
    text: e.statement!.text,
    protocol: e.statement!.protocol,
    status: e.result!.status,
    rows: e.result!.rows,
    tag: e.result!.tag,
    sqlstate: e.result!.sqlstate,
    error: e.result!.error,
  };
  if (withParams) s.params = e.statement!.params;
  return s;
}

/** Both sidecars recorded exactly these statements for their session of the conversation. */
async function expectStatements(runs: Runs, expected: Summary[]): Promise<void> {
  const withParams = expected.some((s) => 'params' in s);
  for (const [sidecar, run] of [
    [inject, runs.inject],
    [passthrough, runs.passthrough],
  ] as const) {
    const statements = (await sessionEvents(sidecar, run)).filter((e) => e.type === 'statement');
    expect(statements.map((e) => summarise(e, withParams))).toEqual(expected);
  }
}

function ok(text: string, tag: string | null, rows: number | null, protocol = 'simple'): Summary {
  return { text, protocol, status: 'ok', rows, tag, sqlstate: null, error: null };
}

function failed(text: string, sqlstate: string, error: string, protocol = 'simple'): Summary {
  return { text, protocol, status: 'error', rows: null, tag: null, sqlstate, error };
}

function notExecuted(text: string, protocol = 'simple'): Summary {
  return {
    text,
    protocol,
    status: 'error',
    rows: null,
    tag: null,
    sqlstate: null,
    error: expect.stringMatching(/^not executed/),
  };
}

function only(messages: BackendMessage[], type: string): BackendMessage {
  const found = messages.filter((m) => m.type === type);
  expect(found).toHaveLength(1);
  return found[0]!;
}

describe('startup and simple Query', () => {
  test('startup, a query, a notice and a ParameterStatus change', async () => {
    const runs = await differential([
      start(),
      { send: [query("select 1 as one, 'two'::text as two, null::int as three")], until: 'Z' },
      { send: [query('commit')], until: 'Z' },
      { send: [query("set application_name = 'renamed'")], until: 'Z' },
    ]);
    const [startupAnswer, select, commit, set] = runs.direct.steps;
    expect(startupAnswer![0]).toEqual({ type: 'R', body: Buffer.from([0, 0, 0, 0]) });
    expect(types(startupAnswer!).slice(-2)).toBe('KZ');
    expect(types(select!)).toBe('TDCZ');
    expect(dataRow(select![1]!)).toEqual(['1', 'two', null]);
    expect(types(commit!)).toBe('NCZ');
    expect(fields(commit![0]!)).toMatchObject({ V: 'WARNING', C: '25P01' });
    expect(types(set!)).toBe('CSZ');
    expect(parameterStatus(set![1]!)).toEqual({ name: 'application_name', value: 'renamed' });

    // Inject mode really is another role upstream; passthrough is not.
    const authorization = (r: ConversationResult) =>
      r.steps[0]!.filter((m) => m.type === 'S')
        .map(parameterStatus)
        .find((p) => p.name === 'session_authorization')?.value;
    expect(authorization(runs.direct)).toBe('postgres');
    expect(authorization(runs.passthrough)).toBe('postgres');
    expect(authorization(runs.inject)).toBe('scram_user');

    await expectStatements(runs, [
      ok("select 1 as one, 'two'::text as two, null::int as three", 'SELECT 1', 1),
      ok('commit', 'COMMIT', null),
      ok("set application_name = 'renamed'", 'SET', null),
    ]);
  });

  test('several statements in one Query, one failing in the middle', async () => {
    const runs = await differential([start(), { send: [query('select 1; select 1/0; select 2')], until: 'Z' }]);
    expect(types(runs.direct.steps[1]!)).toBe('TDCEZ');
    expect(fields(runs.direct.steps[1]![3]!)).toMatchObject({ C: '22012', M: 'division by zero' });
    await expectStatements(runs, [
      ok('select 1', 'SELECT 1', 1),
      failed('select 1/0', '22012', 'division by zero'),
      notExecuted('select 2'),
    ]);
  });

  test('empty queries get EmptyQueryResponse, simple and extended', async () => {
    const runs = await differential([
      start(),
      { send: [query('')], until: 'Z' },
      { send: [parse('', ''), bind('', ''), execute(''), sync()], until: 'Z' },
    ]);
    expect(types(runs.direct.steps[1]!)).toBe('IZ');
    expect(types(runs.direct.steps[2]!)).toBe('12IZ');
    await expectStatements(runs, [ok('', null, null), ok('', null, null, 'extended')]);
  });

  test('a syntax error', async () => {
    const runs = await differential([start(), { send: [query('selec 1')], until: 'Z' }]);
    expect(types(runs.direct.steps[1]!)).toBe('EZ');
    expect(fields(runs.direct.steps[1]![0]!)).toMatchObject({ S: 'ERROR', C: '42601', P: '1' });
    await expectStatements(runs, [failed('selec 1', '42601', 'syntax error at or near "selec"')]);
  });

  test('an error inside an explicit transaction, then ROLLBACK', async () => {
    const runs = await differential([
      start(),
      { send: [query('begin')], until: 'Z' },
      { send: [query('select 1/0')], until: 'Z' },
      { send: [query('select 1')], until: 'Z' },
      { send: [query('rollback')], until: 'Z' },
    ]);
    const status = runs.direct.steps.slice(1).map((s) => s.at(-1)!.body.toString('latin1'));
    expect(status).toEqual(['T', 'E', 'E', 'I']);
    expect(types(runs.direct.steps[3]!)).toBe('EZ');
    await expectStatements(runs, [
      ok('begin', 'BEGIN', null),
      failed('select 1/0', '22012', 'division by zero'),
      failed('select 1', '25P02', 'current transaction is aborted, commands ignored until end of transaction block'),
      ok('rollback', 'ROLLBACK', null),
    ]);
  });
});

describe('extended protocol', () => {
  test('pipelined Parse/Bind/Describe/Execute ×3 and one Sync, the 2nd failing', async () => {
    const runs = await differential([
      start(),
      {
        send: [
          parse('', 'select $1::int as n'),
          bind('', '', ['1']),
          describeMessage('P', ''),
          execute(''),
          // A divisor from a row, so the error comes at Execute, not folded into the plan at Bind.
          parse('', 'select $1::int / g from generate_series(0, 0) g'),
          bind('', '', ['1']),
          describeMessage('P', ''),
          execute(''),
          parse('', 'select $1::text'),
          bind('', '', ['three']),
          describeMessage('P', ''),
          execute(''),
          sync(),
        ],
        until: 'Z',
      },
      // After the Sync the session works again.
      { send: [parse('', 'select 2'), bind('', ''), execute(''), sync()], until: 'Z' },
    ]);
    expect(types(runs.direct.steps[1]!)).toBe('12TDC12TEZ');
    expect(types(runs.direct.steps[2]!)).toBe('12DCZ');
    await expectStatements(runs, [
      { ...ok('select $1::int as n', 'SELECT 1', 1, 'extended'), params: ['1'] },
      {
        ...failed('select $1::int / g from generate_series(0, 0) g', '22012', 'division by zero', 'extended'),
        params: ['1'],
      },
      { ...notExecuted('select $1::text', 'extended'), params: ['three'] },
      { ...ok('select 2', 'SELECT 1', 1, 'extended'), params: null },
    ]);
  });

  test('an error before the first of two Syncs only skips to that Sync', async () => {
    const failing = 'select $1::int / g from generate_series(0, 0) g';
    const runs = await differential([
      start(),
      {
        send: [
          parse('', failing),
          bind('', '', ['1']),
          execute(''),
          parse('', 'select 10'),
          bind('', ''),
          execute(''),
          query('select 11'),
          sync(),
          parse('', 'select 20'),
          bind('', ''),
          execute(''),
          sync(),
        ],
        until: { type: 'Z', times: 2 },
      },
    ]);
    expect(types(runs.direct.steps[1]!)).toBe('12EZ12DCZ');
    await expectStatements(runs, [
      failed(failing, '22012', 'division by zero', 'extended'),
      notExecuted('select 10', 'extended'),
      notExecuted('select 11'),
      ok('select 20', 'SELECT 1', 1, 'extended'),
    ]);
  });

  // Regression: the skipped Execute used to carry the failed statement's text and params (the
  // tracker ignored the Parse/Bind sent while skipping to Sync and looked up the old portal).
  test('messages sent after the error arrived, before the Sync, are skipped by Postgres and recorded so', async () => {
    const failing = 'select $1::int / g from generate_series(0, 0) g';
    const runs = await differential([
      start(),
      { send: [parse('', failing), bind('', '', ['1']), execute(''), flush()], until: 'E' },
      { send: [parse('', 'select 30'), bind('', ''), execute(''), query('select 31'), sync()], until: 'Z' },
      { send: [parse('', 'select 40'), bind('', ''), execute(''), sync()], until: 'Z' },
    ]);
    expect(types(runs.direct.steps[1]!)).toBe('12E');
    expect(types(runs.direct.steps[2]!)).toBe('Z');
    expect(types(runs.direct.steps[3]!)).toBe('12DCZ');
    await expectStatements(runs, [
      failed(failing, '22012', 'division by zero', 'extended'),
      notExecuted('select 30', 'extended'),
      notExecuted('select 31'),
      ok('select 40', 'SELECT 1', 1, 'extended'),
    ]);
  });

  test('a deferred constraint failing at commit: at Sync, in a simple Query, and at COMMIT', async () => {
    const runs = await differential([
      start(),
      // A real table (created in beforeAll): a temp table's schema name differs per connection.
      { send: [query('truncate deferred')], until: 'Z' },
      { send: [parse('', 'insert into deferred values (1), (1)'), bind('', ''), execute(''), sync()], until: 'Z' },
      { send: [query('insert into deferred values (2), (2)')], until: 'Z' },
      { send: [query('begin')], until: 'Z' },
      { send: [query('insert into deferred values (3), (3)')], until: 'Z' },
      { send: [query('commit')], until: 'Z' },
    ]);
    const [, , atSync, simple, , inTx, commit] = runs.direct.steps;
    expect(types(atSync!)).toBe('12CEZ');
    expect(fields(atSync![3]!)).toMatchObject({ C: '23505' });
    // A simple Query commits before its CommandComplete.
    expect(types(simple!)).toBe('EZ');
    expect(types(inTx!)).toBe('CZ');
    expect(types(commit!)).toBe('EZ');
    const duplicate = 'duplicate key value violates unique constraint "deferred_a_key"';
    await expectStatements(runs, [
      ok('truncate deferred', 'TRUNCATE TABLE', null),
      {
        ...ok('insert into deferred values (1), (1)', 'INSERT 0 2', 2, 'extended'),
        status: 'error',
        sqlstate: '23505',
        error: duplicate,
      },
      failed('insert into deferred values (2), (2)', '23505', duplicate),
      ok('begin', 'BEGIN', null),
      ok('insert into deferred values (3), (3)', 'INSERT 0 2', 2),
      failed('commit', '23505', duplicate),
    ]);
  });

  // A failed Parse or Bind has no record of its own: its error is carried by the Execute that
  // needed it. node-postgres sends every parameterised query this way (P/B/D/E/S).
  test('a Parse or Bind that fails: the error is recorded on the Execute that needed it', async () => {
    const runs = await differential([
      start(),
      { send: [parse('', 'selec $1'), bind('', '', ['1']), describeMessage('P', ''), execute(''), sync()], until: 'Z' },
      // 1/$1 with $1 = 0 is folded while planning the custom plan, at Bind.
      { send: [parse('', 'select 1/$1::int'), bind('', '', ['0']), execute(''), sync()], until: 'Z' },
    ]);
    expect(types(runs.direct.steps[1]!)).toBe('EZ');
    expect(types(runs.direct.steps[2]!)).toBe('1EZ');
    await expectStatements(runs, [
      { ...failed('selec $1', '42601', 'syntax error at or near "selec"', 'extended'), params: ['1'] },
      { ...failed('select 1/$1::int', '22012', 'division by zero', 'extended'), params: ['0'] },
    ]);
  });

  test('named statements and portals inside a transaction, text and binary params, NULL', async () => {
    const sql = 'select $1::int4 + $2::int4 as total, $3::text as label';
    const runs = await differential([
      start(),
      { send: [query('begin')], until: 'Z' },
      {
        send: [
          parse('sum', sql),
          bind('p_sum', 'sum', [int4(40), '2', null], [1]),
          execute('p_sum'),
          bind('p_sum2', 'sum', ['1', '1', 'x']),
          execute('p_sum2'),
          sync(),
        ],
        until: 'Z',
      },
      { send: [query('commit')], until: 'Z' },
      // Portals end with their transaction; the prepared statement lives on.
      { send: [execute('p_sum'), sync()], until: 'Z' },
      { send: [bind('', 'sum', ['2', '3', 'y']), execute(''), sync()], until: 'Z' },
    ]);
    const [, , pipeline, , gone, again] = runs.direct.steps;
    expect(types(pipeline!)).toBe('12DC2DCZ');
    // Binary results: int4 42, then a NULL.
    expect(pipeline![2]!.body).toEqual(Buffer.from([0, 2, 0, 0, 0, 4, 0, 0, 0, 42, 0xff, 0xff, 0xff, 0xff]));
    expect(dataRow(pipeline![5]!)).toEqual(['2', 'x']);
    expect(pipeline!.at(-1)!.body.toString()).toBe('T');
    expect(fields(gone![0]!)).toMatchObject({ C: '34000', M: 'portal "p_sum" does not exist' });
    expect(dataRow(again![1]!)).toEqual(['5', 'y']);
    const execute1 = { ...ok(sql, 'SELECT 1', 1, 'extended'), params: ['\\x00000028', '2', null] };
    await expectStatements(runs, [
      { ...ok('begin', 'BEGIN', null), params: null },
      execute1,
      { ...ok(sql, 'SELECT 1', 1, 'extended'), params: ['1', '1', 'x'] },
      { ...ok('commit', 'COMMIT', null), params: null },
      { ...failed('', '34000', 'portal "p_sum" does not exist', 'extended'), params: null },
      { ...ok(sql, 'SELECT 1', 1, 'extended'), params: ['2', '3', 'y'] },
    ]);
    const named = (await sessionEvents(inject, runs.inject)).filter((e) => e.statement?.text === sql);
    expect(named.map((e) => e.statement!.preparedName)).toEqual(['sum', 'sum', 'sum']);
  });

  test('Execute with a row limit, PortalSuspended, then Execute again on the same portal', async () => {
    const sql = 'select g from generate_series(1, 5) g';
    const runs = await differential([
      start(),
      { send: [parse('', sql), bind('', ''), execute('', 2), flush()], until: { count: 5 } },
      { send: [execute('', 2), flush()], until: 's' },
      { send: [execute('', 0), sync()], until: 'Z' },
    ]);
    const [, first, second, last] = runs.direct.steps;
    expect(types(first!)).toBe('12DDs');
    expect(types(second!)).toBe('DDs');
    expect(types(last!)).toBe('DCZ');
    expect(dataRow(last![0]!)).toEqual(['5']);
    expect(commandTag(last![1]!)).toBe('SELECT 1');
    await expectStatements(runs, [
      ok(sql, null, 2, 'extended'),
      ok(sql, null, 2, 'extended'),
      ok(sql, 'SELECT 1', 1, 'extended'),
    ]);
  });

  test('Close of a portal and of a statement', async () => {
    const runs = await differential([
      start(),
      {
        send: [parse('to_close', 'select 42'), bind('pc', 'to_close'), close('P', 'pc'), execute('pc'), sync()],
        until: 'Z',
      },
      { send: [close('S', 'to_close'), close('S', 'never_existed'), sync()], until: 'Z' },
      { send: [bind('', 'to_close'), execute(''), sync()], until: 'Z' },
    ]);
    const [, portal, statement, rebind] = runs.direct.steps;
    expect(types(portal!)).toBe('123EZ');
    expect(fields(portal![3]!)).toMatchObject({ C: '34000' });
    expect(types(statement!)).toBe('33Z');
    expect(types(rebind!)).toBe('EZ');
    expect(fields(rebind![0]!)).toMatchObject({ C: '26000', M: 'prepared statement "to_close" does not exist' });
    await expectStatements(runs, [
      failed('', '34000', 'portal "pc" does not exist', 'extended'),
      // The Bind failed; its error is the Execute's, which needed it.
      failed('', '26000', 'prepared statement "to_close" does not exist', 'extended'),
    ]);
  });

  test('Describe of a statement and of a portal', async () => {
    const sql = 'select $1::int as a, $2::text as b';
    const runs = await differential([
      start(),
      {
        send: [
          parse('d1', sql),
          describeMessage('S', 'd1'),
          parse('d2', 'listen described'),
          describeMessage('S', 'd2'),
          bind('dp', 'd1', ['7', 'seven']),
          describeMessage('P', 'dp'),
          execute('dp'),
          sync(),
        ],
        until: 'Z',
      },
      { send: [describeMessage('S', 'nope'), sync()], until: 'Z' },
    ]);
    const [, described, missing] = runs.direct.steps;
    expect(types(described!)).toBe('1tT1tn2TDCZ');
    // ParameterDescription: two parameters, int4 (23) and text (25).
    expect(described![1]!.body).toEqual(Buffer.from([0, 2, 0, 0, 0, 23, 0, 0, 0, 25]));
    expect(types(missing!)).toBe('EZ');
    expect(fields(missing![0]!)).toMatchObject({ C: '26000' });
    await expectStatements(runs, [{ ...ok(sql, 'SELECT 1', 1, 'extended'), params: ['7', 'seven'] }]);
  });
});

describe('COPY', () => {
  test('COPY FROM STDIN via simple Query, with CopyDone and with CopyFail', async () => {
    const runs = await differential([
      start(),
      { send: [query('create temp table c (a int, b text)')], until: 'Z' },
      { send: [query('copy c from stdin')], until: 'G' },
      { send: [copyData('1\tone\n'), copyData('2\ttwo\n'), copyDone()], until: 'Z' },
      { send: [query('copy c from stdin')], until: 'G' },
      { send: [copyData('3\tthree\n'), copyFail('client gave up')], until: 'Z' },
      { send: [query('select count(*) from c')], until: 'Z' },
    ]);
    const [, , copyIn, done, , fail, count] = runs.direct.steps;
    expect(types(copyIn!)).toBe('G');
    expect(types(done!)).toBe('CZ');
    expect(commandTag(done![0]!)).toBe('COPY 2');
    expect(types(fail!)).toBe('EZ');
    expect(fields(fail![0]!)).toMatchObject({ C: '57014', M: 'COPY from stdin failed: client gave up' });
    expect(dataRow(count![1]!)).toEqual(['2']);
    await expectStatements(runs, [
      ok('create temp table c (a int, b text)', 'CREATE TABLE', null),
      ok('copy c from stdin', 'COPY 2', 2, 'copy'),
      // CopyFail is answered with 57014 (query_canceled): the client called the COPY off.
      {
        ...failed('copy c from stdin', '57014', 'COPY from stdin failed: client gave up', 'copy'),
        status: 'cancelled',
      },
      ok('select count(*) from c', 'SELECT 1', 1),
    ]);
  });

  test('COPY TO STDOUT', async () => {
    const sql = "copy (select g, 'row ' || g from generate_series(1, 3) g) to stdout";
    const runs = await differential([start(), { send: [query(sql)], until: 'Z' }]);
    const answer = runs.direct.steps[1]!;
    expect(types(answer)).toBe('HdddcCZ');
    expect(answer[1]!.body.toString()).toBe('1\trow 1\n');
    await expectStatements(runs, [ok(sql, 'COPY 3', 3, 'copy')]);
  });

  test('extended-protocol COPY FROM STDIN the way libpq sends it', async () => {
    const runs = await differential([
      start(),
      { send: [query('create temp table ec (a int)')], until: 'Z' },
      // Postgres ignores this Sync: it arrives during copy-in.
      {
        send: [parse('', 'copy ec from stdin'), bind('', ''), describeMessage('P', ''), execute(''), sync()],
        until: 'G',
      },
      { send: [copyData('1\n'), copyData('2\n'), copyDone(), sync()], until: 'Z' },
      // The same with everything sent at once.
      {
        send: [parse('', 'copy ec from stdin'), bind('', ''), execute(''), sync(), copyData('3\n'), copyDone(), sync()],
        until: 'Z',
      },
      { send: [query('select count(*) from ec')], until: 'Z' },
    ]);
    const [, , copyIn, done, atOnce, count] = runs.direct.steps;
    expect(types(copyIn!)).toBe('12nG');
    expect(types(done!)).toBe('CZ');
    expect(types(atOnce!)).toBe('12GCZ');
    expect(dataRow(count![1]!)).toEqual(['3']);
    await expectStatements(runs, [
      ok('create temp table ec (a int)', 'CREATE TABLE', null),
      ok('copy ec from stdin', 'COPY 2', 2, 'copy'),
      ok('copy ec from stdin', 'COPY 1', 1, 'copy'),
      ok('select count(*) from ec', 'SELECT 1', 1),
    ]);
  });
});

describe('FunctionCall, LISTEN/NOTIFY', () => {
  test('FunctionCall of pg_catalog.abs(int4), binary and text, NULL, and an unknown oid', async () => {
    const lookup = "select 'pg_catalog.abs(int4)'::regprocedure::oid";
    const oidOf = (received: BackendMessage[]) => Number(dataRow(received.find((m) => m.type === 'D')!)[0]);
    const runs = await differential([
      start(),
      { send: [query(lookup)], until: 'Z' },
      { send: ({ received }) => [functionCall(oidOf(received), [int4(-5)], 1)], until: 'Z' },
      { send: ({ received }) => [functionCall(oidOf(received), ['-7'], 0)], until: 'Z' },
      { send: ({ received }) => [functionCall(oidOf(received), [null], 0)], until: 'Z' },
      { send: [functionCall(1, [])], until: 'Z' },
    ]);
    const [, , binary, text, nul, unknown] = runs.direct.steps;
    expect(binary![0]).toEqual({ type: 'V', body: Buffer.from([0, 0, 0, 4, 0, 0, 0, 5]) });
    expect(text![0]).toEqual({ type: 'V', body: Buffer.from([0, 0, 0, 1, 0x37]) });
    expect(nul![0]).toEqual({ type: 'V', body: Buffer.from([0xff, 0xff, 0xff, 0xff]) });
    expect(types(unknown!)).toBe('EZ');
    expect(fields(unknown![0]!)).toMatchObject({ C: '42883' });
    const oid = oidOf(runs.direct.messages);
    const call = `FunctionCall(oid=${oid})`;
    await expectStatements(runs, [
      { ...ok(lookup, 'SELECT 1', 1), params: null },
      { ...ok(call, null, null, 'function'), params: ['\\xfffffffb'] },
      { ...ok(call, null, null, 'function'), params: ['-7'] },
      { ...ok(call, null, null, 'function'), params: [null] },
      { ...failed('FunctionCall(oid=1)', '42883', fields(unknown![0]!).M!, 'function'), params: null },
    ]);
  });

  test('LISTEN, then NOTIFY from another connection and from the same one', async () => {
    let notifier = 0;
    const runs = await differential([
      start(),
      { send: [query('listen diff_channel')], until: 'Z' },
      {
        meanwhile: async () => {
          await admin.query("notify diff_channel, 'hello'");
          notifier = (admin as unknown as { processID: number }).processID;
        },
        until: 'A',
      },
      { send: [query("notify diff_channel, 'self'")], until: 'Z' },
    ]);
    const [, , other, self] = runs.direct.steps;
    expect(other![0]!.body.readInt32BE(0)).toBe(notifier);
    expect(other![0]!.body.subarray(4).toString()).toBe('diff_channel\0hello\0');
    expect(types(self!)).toBe('CAZ');
    expect(self![1]!.body.subarray(4).toString()).toBe('diff_channel\0self\0');
    await expectStatements(runs, [
      ok('listen diff_channel', 'LISTEN', null),
      ok("notify diff_channel, 'self'", 'NOTIFY', null),
    ]);
  });
});

describe('protocol versions, cancel, Terminate', () => {
  test('protocol 3.2 startup: a long BackendKeyData key, the same length as Postgres gives', async () => {
    const runs = await differential([start(PROTOCOL_3_2), { send: [query('select 1')], until: 'Z' }]);
    const direct = keyData(only(runs.direct.steps[0]!, 'K'));
    expect(direct.key.length).toBeGreaterThan(4);
    for (const via of [runs.inject, runs.passthrough]) {
      const issued = keyData(only(via.steps[0]!, 'K'));
      expect(issued.key.length).toBe(direct.key.length);
    }
  });

  test('a newer minor version and an unknown _pq_ option are negotiated down the same way', async () => {
    const runs = await differential([
      start((3 << 16) | 9, { '_pq_.not_a_real_option': 'on' }),
      { send: [query('select 1')], until: 'Z' },
    ]);
    const negotiate = runs.direct.steps[0]![0]!;
    expect(negotiate.type).toBe('v');
    expect(negotiate.body.readInt32BE(0)).toBe(PROTOCOL_3_2);
    expect(keyData(only(runs.inject.steps[0]!, 'K')).key.length).toBe(
      keyData(only(runs.direct.steps[0]!, 'K')).key.length,
    );
  });

  for (const [name, protocol] of [
    ['3.0', PROTOCOL_3_0],
    ['3.2', PROTOCOL_3_2],
  ] as const) {
    test(`protocol ${name}: a CancelRequest with the key the client was given cancels pg_sleep`, async () => {
      const sleep = 'select pg_sleep(10)';
      const runs = await differential([
        start(protocol),
        {
          send: [query(sleep)],
          meanwhile: async ({ target, received }) => {
            await eventually(async () => {
              const r = await admin.query(
                // Sleeping, not merely started: a cancel during planning would come before RowDescription.
                "select count(*)::int as n from pg_stat_activity where query = $1 and wait_event = 'PgSleep'",
                [sleep],
              );
              expect(r.rows[0].n).toBe(1);
            });
            const { pid, key } = keyData(only(received, 'K'));
            expect(await sendCancel(target, pid, key)).toEqual([]);
          },
          until: 'Z',
        },
      ]);
      const answer = runs.direct.steps[1]!;
      expect(types(answer)).toBe('TEZ');
      expect(fields(answer[1]!)).toMatchObject({ C: '57014', M: 'canceling statement due to user request' });
      expect(keyData(only(runs.inject.steps[0]!, 'K')).key.length).toBe(protocol === PROTOCOL_3_2 ? 32 : 4);
      await expectStatements(runs, [
        {
          ...failed(sleep, '57014', 'canceling statement due to user request'),
          status: 'cancelled',
        },
      ]);
    });
  }

  test('Terminate: the server closes without a word, and the session ends cleanly', async () => {
    const runs = await differential([start(), { send: [terminate()], until: 'close' }]);
    expect(runs.direct.steps[1]).toEqual([]);
    for (const [sidecar, run] of [
      [inject, runs.inject],
      [passthrough, runs.passthrough],
    ] as const) {
      const events = await eventually(async () => {
        const e = await sessionEvents(sidecar, run);
        expect(e.map((x) => x.type)).toEqual(['session.start', 'session.end']);
        return e;
      });
      expect(events[1]!.result).toMatchObject({ status: 'ok', sqlstate: null });
    }
  });
});

describe('framing under stress', () => {
  test('a pipelined conversation sent one byte at a time', async () => {
    const runs = await differential(
      [
        start(),
        {
          send: [
            parse('s', 'select $1::int + 1 as n'),
            bind('', 's', [int4(1)]),
            execute(''),
            bind('', 's', [null]),
            execute(''),
            sync(),
          ],
          until: 'Z',
        },
        { send: [query('create temp table bytes (a int); copy bytes from stdin')], until: 'G' },
        { send: [copyData('7\n'), copyData('8\n'), copyDone()], until: 'Z' },
        { send: [query('select sum(a) from bytes; select 1/0')], until: 'Z' },
      ],
      { chunkSize: 1 },
    );
    expect(types(runs.direct.steps[1]!)).toBe('12DC2DCZ');
    expect(types(runs.direct.steps[2]!)).toBe('CG');
    expect(types(runs.direct.steps[3]!)).toBe('CZ');
    expect(types(runs.direct.steps[4]!)).toBe('TDCEZ');
    await expectStatements(runs, [
      { ...ok('select $1::int + 1 as n', 'SELECT 1', 1, 'extended'), params: ['\\x00000001'] },
      { ...ok('select $1::int + 1 as n', 'SELECT 1', 1, 'extended'), params: [null] },
      { ...ok('create temp table bytes (a int)', 'CREATE TABLE', null), params: null },
      { ...ok('copy bytes from stdin', 'COPY 2', 2, 'copy'), params: null },
      { ...ok('select sum(a) from bytes', 'SELECT 1', 1), params: null },
      { ...failed('select 1/0', '22012', 'division by zero'), params: null },
    ]);
  });

  test('large rows and many rows from the server, a large CopyData and Bind from the client', async () => {
    const big = 'x'.repeat(3 * 1024 * 1024);
    const runs = await differential([
      start(),
      { send: [query("select repeat('y', 300000) as big, g from generate_series(1, 3) g")], until: 'Z' },
      { send: [query('select g from generate_series(1, 20000) g')], until: 'Z' },
      { send: [query('create temp table large (t text)')], until: 'Z' },
      { send: [query('copy large from stdin')], until: 'G' },
      { send: [copyData(`${big}\n`), copyDone()], until: 'Z' },
      { send: [parse('', 'select length($1::text)'), bind('', '', [big]), execute(''), sync()], until: 'Z' },
    ]);
    const [, wide, many, , , copied, bound] = runs.direct.steps;
    expect(types(wide!)).toBe('TDDDCZ');
    expect(wide![1]!.body.length).toBe(2 + 4 + 300000 + 4 + 1);
    expect(many!.length).toBe(20003);
    expect(commandTag(copied![0]!)).toBe('COPY 1');
    expect(dataRow(bound![2]!)).toEqual([String(big.length)]);
    const statements = (await sessionEvents(inject, runs.inject)).filter((e) => e.type === 'statement');
    expect(statements.map((e) => [e.statement!.protocol, e.result!.status, e.result!.rows])).toEqual([
      ['simple', 'ok', 3],
      ['simple', 'ok', 20000],
      ['simple', 'ok', null],
      ['copy', 'ok', 1],
      ['extended', 'ok', 1],
    ]);
    // A 3 MiB parameter would make the event too large to ship: a prefix is kept, and the
    // original's length and SHA-256 are recorded.
    const [kept] = statements[4]!.statement!.params!;
    expect(big.startsWith(kept!) && kept!.length > 200_000).toBe(true);
    expect(statements[4]!.statement!.truncated!.params).toEqual([
      { bytes: big.length, index: 0, sha256: createHash('sha256').update(big).digest('hex') },
    ]);
  });
});

describe('malformed frontend messages', () => {
  test('a Bind whose parameter count says 3 but carries 1: FATAL 08P01, closed, nothing reaches Postgres', async () => {
    // parameter count 3, one parameter ('1'), then zero result formats
    const badBind = message('B', Buffer.from('\0\0'), Buffer.from([0, 0, 0, 3, 0, 0, 0, 1, 0x31, 0, 0]));
    const run = await converse(inject, [
      start(),
      { send: [query('select pg_backend_pid()')], until: 'Z' },
      {
        send: [parse('', "select 'malformed-marker'"), badBind, execute(''), sync(), query("select 'after-marker'")],
        until: 'close',
      },
    ]);
    const backendPid = Number(dataRow(run.steps[1]!.find((m) => m.type === 'D')!)[0]);
    const answer = run.steps[2]!;
    expect(types(answer)).toBe('E');
    expect(fields(answer[0]!)).toMatchObject({ S: 'FATAL', V: 'FATAL', C: '08P01' });

    const events = await sessionEvents(inject, run);
    expect(events.map((e) => e.type)).toEqual(['session.start', 'statement', 'session.end']);
    expect(events[2]!.result).toMatchObject({ status: 'error', sqlstate: '08P01' });

    // Wait for the upstream backend to be gone, then for a later statement to be logged: by then
    // anything the malformed conversation made Postgres run would be in the log too.
    await eventually(async () => {
      const r = await admin.query('select count(*)::int as n from pg_stat_activity where pid = $1', [backendPid]);
      expect(r.rows[0].n).toBe(0);
    });
    await converse(inject, [start(), { send: [query("select 'control-marker'")], until: 'Z' }]);
    await eventually(async () =>
      expect(db.statementLog().map((e) => e.message)).toContain("statement: select 'control-marker'"),
    );
    const log = db.statementLog();
    expect(log.filter((e) => e.pid === backendPid).map((e) => e.message)).toEqual([
      'statement: select pg_backend_pid()',
    ]);
    expect(log.filter((e) => e.message.includes('marker') && !e.message.includes('control-marker'))).toEqual([]);
  });
});
