import { beforeAll, describe, expect, test } from 'vitest';
import { StatementAnalyzer } from './analyzer.js';
import { factsOf, type StatementFacts } from './facts.js';

let analyzer: StatementAnalyzer;
beforeAll(async () => {
  analyzer = await StatementAnalyzer.create({ cacheSize: 100 });
});

function one(sql: string): StatementFacts {
  const analysis = analyzer.analyze(sql);
  if (!analysis.ok) throw new Error(analysis.error);
  expect(analysis.statements).toHaveLength(1);
  return analysis.statements[0]!;
}

describe('command and class from the parse tree', () => {
  test.each([
    ['SELECT 1', 'SELECT', 'read'],
    ['select * from t for update', 'SELECT', 'write'],
    ["select nextval('s')", 'SELECT', 'write'],
    ['WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d', 'SELECT', 'write'],
    ['EXPLAIN DELETE FROM t', 'EXPLAIN', 'read'],
    ['EXPLAIN ANALYZE DELETE FROM t', 'EXPLAIN', 'write'],
    ['EXPLAIN (ANALYZE false) DELETE FROM t', 'EXPLAIN', 'read'],
    ['EXPLAIN ANALYSE DELETE FROM t', 'EXPLAIN', 'write'],
    ['EXPLAIN (ANALYSE, BUFFERS) DELETE FROM t', 'EXPLAIN', 'write'],
    ['SELECT 1 INTO TEMP x', 'SELECT INTO', 'ddl'],
    ['CREATE INDEX i ON t (a)', 'CREATE INDEX', 'ddl'],
    ['DROP TABLE t', 'DROP', 'ddl'],
    ['CREATE SEQUENCE s', 'CREATE SEQUENCE', 'ddl'],
    ['REINDEX TABLE t', 'REINDEX', 'ddl'],
    ['ALTER TABLE t ADD COLUMN b int', 'ALTER TABLE', 'ddl'],
    ['GRANT SELECT ON t TO bob', 'GRANT', 'role'],
    ['SET ROLE admin', 'SET', 'role'],
    ['BEGIN', 'BEGIN', 'tcl'],
    ['COPY t FROM STDIN', 'COPY', 'write'],
    ['COPY t TO STDOUT', 'COPY', 'read'],
    ['TRUNCATE t', 'TRUNCATE TABLE', 'write'],
    ['SHOW search_path', 'SHOW', 'read'],
    ['SET CONSTRAINTS ALL DEFERRED', 'SET CONSTRAINTS', 'misc'],
  ])('%s → %s (%s)', (sql, command, cls) => {
    const facts = one(sql);
    expect(facts.command).toBe(command);
    expect(facts.class).toBe(cls);
  });

  test('EXPLAIN without ANALYZE runs nothing, so nothing inside it counts', () => {
    expect(one("EXPLAIN SELECT nextval('s') FROM t FOR UPDATE").writes).toEqual([]);
  });
});

describe('writes, with the reason', () => {
  test.each([
    ['SELECT pg_advisory_lock(1)', 'takes an advisory lock'],
    ['SELECT lo_import($1)', 'lo_import() creates a large object'],
    ['DO $$ BEGIN END $$', 'DO runs code the sidecar cannot see'],
    ['CALL p()', 'CALL runs a procedure'],
    ['NOTIFY ch', 'NOTIFY signals other sessions'],
    ['CREATE TEMP TABLE x (a int)', 'creates a temporary table'],
    ['LOCK TABLE t IN SHARE MODE', 'LOCK TABLE stronger than ACCESS SHARE'],
    ['SELECT * FROM t WHERE a IN (SELECT a FROM u FOR SHARE)', 'a row lock (SELECT … FOR UPDATE/SHARE)'],
    ['WITH i AS (INSERT INTO t VALUES (1) RETURNING *) SELECT 1', 'a data-modifying INSERT inside the statement'],
  ])('%s', (sql, reason) => {
    expect(one(sql).writes).toContain(reason);
  });

  test('reads and harmless locks are no writes', () => {
    for (const sql of [
      'SELECT * FROM t',
      'LOCK TABLE t IN ACCESS SHARE MODE',
      "SELECT 'nextval(1)'",
      'FETCH 10 FROM c',
    ])
      expect(one(sql).writes, sql).toEqual([]);
  });

  test('admin-only operations say why', () => {
    expect(one("COPY t TO PROGRAM 'gzip > /tmp/x'").adminOnly).toBe('COPY … PROGRAM runs a server command');
    expect(one("COPY t FROM '/etc/passwd'").adminOnly).toBe('COPY with a server file');
    expect(one("ALTER SYSTEM SET work_mem = '1GB'").adminOnly).toMatch(/ALTER SYSTEM/);
    expect(one("SELECT pg_read_file('/etc/passwd')").adminOnly).toMatch(/server file/);
    expect(one('COPY t TO STDOUT').adminOnly).toBeNull();
  });
});

describe('tables, schema-qualified, inside CTEs and subqueries', () => {
  test('every relation, CTE names left out', () => {
    const facts = one(
      'WITH p AS (SELECT * FROM hr.payroll) SELECT * FROM p JOIN (SELECT id FROM public.users) u ON true WHERE EXISTS (SELECT 1 FROM audit)',
    );
    expect(facts.tables).toEqual(['hr.payroll', 'public.users', 'audit']);
  });
  test('targets of writes', () => {
    expect(one('UPDATE billing.invoices SET paid = true WHERE id = $1').tables).toEqual(['billing.invoices']);
  });
});

describe('UPDATE/DELETE without a WHERE that filters', () => {
  test.each([
    ['DELETE FROM t', 'delete'],
    ['UPDATE t SET a = 1', 'update'],
    ['DELETE FROM t WHERE true', 'delete'],
    ['DELETE FROM t WHERE 1 = 1', 'delete'],
    ["DELETE FROM t WHERE 'a' = 'a'", 'delete'],
    ['UPDATE t SET a = 1 WHERE id = id', 'update'],
    ['UPDATE t SET a = 1 WHERE id = 3 OR 1 = 1', 'update'],
    ['UPDATE t SET a = 1 WHERE 2 > 1', 'update'],
    ['UPDATE t SET a = 1 WHERE 1 <> 2', 'update'],
    ["DELETE FROM t WHERE 'true'::boolean", 'delete'],
    ['DELETE FROM t WHERE 1 IS NOT NULL', 'delete'],
    ['WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d', 'delete'],
    ['DELETE FROM t WHERE NOT false', 'delete'],
    ['DELETE FROM t WHERE true IS TRUE', 'delete'],
    ['DELETE FROM t WHERE (1 = 1) = true', 'delete'],
    ['DELETE FROM t WHERE NOT (1 = 2 AND id = 3)', 'delete'],
    ['DELETE FROM t WHERE NULL IS NULL', 'delete'],
  ])('%s → %s', (sql, what) => {
    expect(one(sql).unfiltered).toBe(what);
  });

  test.each([
    'DELETE FROM t WHERE id = 1',
    'DELETE FROM t WHERE 1 = 2',
    'UPDATE t SET a = 1 WHERE random() = random()',
    'UPDATE t SET a = 1 WHERE id = $1',
    'UPDATE t SET a = 1 WHERE true AND id = 4',
    'DELETE FROM t WHERE CURRENT OF c',
    'DELETE FROM t WHERE NOT (id = 3)',
    'DELETE FROM t WHERE false OR id = 3',
    'DELETE FROM t WHERE NULL',
    'DELETE FROM t WHERE id IS NOT NULL AND 1 = 1',
    'INSERT INTO t VALUES (1)',
  ])('%s filters', (sql) => {
    expect(one(sql).unfiltered).toBeNull();
  });
});

describe('attempts to leave read-only mode', () => {
  test.each([
    ['SET default_transaction_read_only = off', 'SET default_transaction_read_only'],
    ['SET default_transaction_read_only = false', 'SET default_transaction_read_only'],
    ["SET default_transaction_read_only = 'of'", 'SET default_transaction_read_only'],
    ['SET default_transaction_read_only = 0', 'SET default_transaction_read_only'],
    ['set DEFAULT_TRANSACTION_READ_ONLY to default', 'SET default_transaction_read_only'],
    ['RESET transaction_read_only', 'RESET transaction_read_only'],
    ['RESET ALL', 'RESET ALL resets default_transaction_read_only'],
    ['SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE', 'SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE'],
    ['SET TRANSACTION READ WRITE', 'SET TRANSACTION READ WRITE'],
    ['BEGIN READ WRITE', 'BEGIN … READ WRITE'],
    ['START TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ WRITE', 'BEGIN … READ WRITE'],
    [
      "SELECT set_config('default_transaction_read_only', 'off', false)",
      "set_config('default_transaction_read_only', …)",
    ],
    ["SELECT pg_catalog.set_config('TRANSACTION_READ_ONLY', 'no', true)", "set_config('TRANSACTION_READ_ONLY', …)"],
    ["SELECT set_config($1, 'off', false)", "set_config('?', …)"],
    ['SELECT set_config(name, setting, false) FROM pg_settings', "set_config('?', …)"],
    [
      "SELECT * FROM t WHERE set_config('default_transaction_read_only', $1, false) IS NOT NULL",
      "set_config('default_transaction_read_only', …)",
    ],
  ])('%s', (sql, change) => {
    expect(one(sql).readOnlyChange).toBe(change);
  });

  test.each([
    'SET default_transaction_read_only = on',
    "SET transaction_read_only = 'true'",
    'BEGIN READ ONLY',
    'BEGIN ISOLATION LEVEL REPEATABLE READ',
    'SET TRANSACTION READ ONLY',
    "SELECT set_config('application_name', 'x', false)",
    "SELECT set_config('default_transaction_read_only', 'on', false)",
  ])('%s is no attempt', (sql) => {
    expect(one(sql).readOnlyChange).toBeNull();
  });
});

describe('changes to how statement text is read', () => {
  test.each([
    ['SET standard_conforming_strings = off', 'SET standard_conforming_strings'],
    ['RESET standard_conforming_strings', 'RESET standard_conforming_strings'],
    ["SET client_encoding = 'SJIS'", 'SET client_encoding'],
    ["SET NAMES 'GBK'", 'SET client_encoding'],
    ["SELECT set_config('standard_conforming_strings', 'off', false)", "set_config('standard_conforming_strings', …)"],
    ['SELECT set_config($1, $2, false)', "set_config('?', …)"],
  ])('%s', (sql, change) => {
    expect(one(sql).scannerChange).toBe(change);
  });
  test.each([
    'SET standard_conforming_strings = on',
    "SET client_encoding = 'UTF8'",
    "SET NAMES 'utf-8'",
    "SELECT set_config('application_name', 'x', false)",
  ])('%s keeps it', (sql) => {
    expect(one(sql).scannerChange).toBeNull();
  });
});

test('a statement kind the policy does not know needs admin (a newer parser must not open a hole)', () => {
  const [facts] = factsOf({ version: 180004, stmts: [{ stmt: { FrobnicateStmt: {} } as never }] });
  expect(facts?.adminOnly).toBe('FrobnicateStmt is not a statement the policy knows');
  expect(facts?.writes).toEqual(['FrobnicateStmt is not a statement the policy knows']);
});

describe('the analyzer', () => {
  test('one answer per statement of a Query', () => {
    const analysis = analyzer.analyze('SELECT 1; DELETE FROM t; BEGIN');
    expect(analysis.ok && analysis.statements.map((s) => s.command)).toEqual(['SELECT', 'DELETE', 'BEGIN']);
  });

  test('caches by exact text: a repeat is a hit and the same object', () => {
    const sql = `SELECT * FROM cached_${Date.now()}`;
    const before = { ...analyzer.stats };
    const first = analyzer.analyze(sql);
    const second = analyzer.analyze(sql);
    expect(second).toBe(first);
    expect(analyzer.stats.misses - before.misses).toBe(1);
    expect(analyzer.stats.hits - before.hits).toBe(1);
  });

  test('texts longer than maxCachedLength are not kept, so the cache stays small', async () => {
    const small = await StatementAnalyzer.create({ maxCachedLength: 40 });
    const long = `SELECT * FROM t WHERE a IN (${'1,'.repeat(50)}1)`;
    small.analyze(long);
    small.analyze(long);
    expect(small.stats).toEqual({ hits: 0, misses: 2, templated: 0 });
    small.analyze('SELECT 1');
    small.analyze('SELECT 1');
    expect(small.stats).toEqual({ hits: 1, misses: 3, templated: 2 });
  });

  test('literals are part of the key: 1=1 and 1=2 get their own answers', () => {
    expect(one('DELETE FROM t WHERE 1 = 2').unfiltered).toBeNull();
    expect(one('DELETE FROM t WHERE 1 = 1').unfiltered).toBe('delete');
  });

  test('text that does not parse, or nests too deeply, is an error, not a crash', () => {
    const bad = analyzer.analyze('DELEET FROM t');
    expect(bad.ok).toBe(false);
    expect(!bad.ok && bad.error).toMatch(/does not parse.*syntax error/);
    const deep = analyzer.analyze(`SELECT ${'('.repeat(20_000)}1${')'.repeat(20_000)}`);
    expect(deep.ok).toBe(false);
  });

  test('facts are frozen, so a caller cannot change what the cache hands the next one', () => {
    const facts = one('SELECT * FROM frozen_t');
    expect(Object.isFrozen(facts) && Object.isFrozen(facts.tables) && Object.isFrozen(facts.writes)).toBe(true);
  });
});
