import { beforeAll, describe, expect, it } from 'vitest';
import { splitWithParser, TableExtractor, withEscapeStrings } from './tables.js';
import { SCS_OFF } from './tokenizer.js';

let extractor: TableExtractor;

beforeAll(async () => {
  extractor = await TableExtractor.create();
});

describe('TableExtractor.tables', () => {
  it.each<[string, string, string[] | null]>([
    ['plain SELECT', 'SELECT * FROM users', ['users']],
    [
      'schema-qualified',
      'SELECT * FROM public.users u JOIN billing.invoices i ON true',
      ['public.users', 'billing.invoices'],
    ],
    ['catalog-qualified', 'SELECT * FROM db.s.t', ['db.s.t']],
    ['unquoted names fold to lower case', 'SELECT * FROM Users', ['users']],
    ['quoted names keep their case', 'SELECT * FROM "Users"', ['Users']],
    ['deduplicated in order of appearance', 'SELECT * FROM b, a, b WHERE EXISTS (SELECT 1 FROM c, a)', ['b', 'a', 'c']],
    [
      'subqueries and joins',
      'SELECT * FROM a LEFT JOIN (SELECT * FROM b) x ON true WHERE y IN (SELECT z FROM c)',
      ['a', 'b', 'c'],
    ],
    ['no relations', 'SELECT 1', []],
    ['functions are not relations', 'SELECT * FROM generate_series(1, 3)', []],
    ['INSERT target and source', 'INSERT INTO t (a) SELECT a FROM s', ['t', 's']],
    ['INSERT ... ON CONFLICT', 'INSERT INTO t VALUES (1) ON CONFLICT (a) DO UPDATE SET b = 1', ['t']],
    ['UPDATE ... FROM', 'UPDATE t SET a = s.a FROM s WHERE t.id = s.id', ['t', 's']],
    ['DELETE ... USING', 'DELETE FROM t USING s WHERE t.id = s.id', ['t', 's']],
    ['MERGE', 'MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE', ['t', 's']],
    ['COPY FROM', 'COPY t (a, b) FROM STDIN', ['t']],
    ['COPY (query) TO', 'COPY (SELECT * FROM s.t) TO STDOUT', ['s.t']],
    ['TRUNCATE', 'TRUNCATE a, s.b', ['a', 's.b']],
    ['LOCK', 'LOCK TABLE a, b IN SHARE MODE', ['a', 'b']],
    ['ALTER TABLE', 'ALTER TABLE s.t ADD COLUMN c int', ['s.t']],
    ['ALTER TABLE RENAME', 'ALTER TABLE t RENAME TO u', ['t']],
    [
      'CREATE TABLE with REFERENCES and LIKE',
      'CREATE TABLE t (a int REFERENCES p (id), LIKE tmpl)',
      ['t', 'p', 'tmpl'],
    ],
    ['CREATE TABLE AS', 'CREATE TABLE t AS SELECT * FROM s', ['t', 's']],
    ['SELECT INTO', 'SELECT * INTO t FROM s', ['t', 's']],
    ['CREATE VIEW', 'CREATE VIEW v AS SELECT * FROM t', ['v', 't']],
    ['CREATE INDEX ON', 'CREATE UNIQUE INDEX CONCURRENTLY i ON s.t (a)', ['s.t']],
    ['DROP TABLE', 'DROP TABLE IF EXISTS a, s.b CASCADE', ['a', 's.b']],
    ['DROP VIEW', 'DROP VIEW v', ['v']],
    ['DROP of a non-relation', 'DROP FUNCTION f()', []],
    ['COMMENT ON TABLE', "COMMENT ON TABLE s.t IS 'x'", ['s.t']],
    ['GRANT ON a table', 'GRANT SELECT ON t TO r', ['t']],
    ['EXPLAIN', 'EXPLAIN ANALYZE SELECT * FROM t', ['t']],
    ['BEGIN ATOMIC body', 'CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT a FROM t; END', ['t']],
    ['CTE names excluded', 'WITH x AS (SELECT * FROM t) SELECT * FROM x JOIN y ON true', ['t', 'y']],
    ['a schema-qualified name is never a CTE', 'WITH x AS (SELECT 1) SELECT * FROM public.x', ['public.x']],
    ['a CTE body cannot see itself without RECURSIVE', 'WITH x AS (SELECT * FROM x) SELECT * FROM x', ['x']],
    ['a CTE body sees the earlier ones', 'WITH a AS (SELECT 1), b AS (SELECT * FROM a) SELECT * FROM b', []],
    ['a CTE body cannot see later ones', 'WITH a AS (SELECT * FROM b), b AS (SELECT 1) SELECT * FROM a', ['b']],
    ['RECURSIVE sees itself', 'WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT * FROM r', []],
    ['CTE scope ends with its statement', 'SELECT * FROM (WITH x AS (SELECT 1) SELECT * FROM x) s, x', ['x']],
    ['a DML target is never a CTE', 'WITH t AS (SELECT 1) INSERT INTO t SELECT * FROM t', ['t']],
    ['data-modifying CTEs', 'WITH d AS (DELETE FROM old RETURNING *) INSERT INTO new SELECT * FROM d', ['old', 'new']],
    ['several statements, in text order', 'SELECT * FROM a; DROP TABLE b; SELECT * FROM c', ['a', 'b', 'c']],
    ['empty text', '', []],
    ['comment only', '-- nothing', []],
    ['syntax error', 'SELEC * FROM t', null],
    ['unterminated string', "SELECT 'abc", null],
  ])('%s', (_name, sql, expected) => {
    expect(extractor.tables(sql)).toEqual(expected);
  });

  it('caches by shape: other literals skip the parser', () => {
    const ex = new TableExtractor();
    expect(ex.tables("UPDATE users SET name = 'a' WHERE id = 1")).toEqual(['users']);
    expect(ex.tables("update users set name = 'b' where id = 2")).toEqual(['users']);
    expect(ex.tables('UPDATE orders SET name = $1 WHERE id = 3')).toEqual(['orders']);
    expect(ex.stats).toEqual({ hits: 1, misses: 2 });
  });

  it('caches parse failures too', () => {
    const ex = new TableExtractor();
    expect(ex.tables('SELEC 1')).toBeNull();
    expect(ex.tables('SELEC 2')).toBeNull();
    expect(ex.stats).toEqual({ hits: 1, misses: 1 });
  });

  it('evicts the least recently used shape', () => {
    const ex = new TableExtractor({ cacheSize: 2 });
    ex.tables('SELECT * FROM a');
    ex.tables('SELECT * FROM b');
    ex.tables('SELECT * FROM a'); // a is now the most recent
    ex.tables('SELECT * FROM c'); // evicts b
    ex.tables('SELECT * FROM a');
    ex.tables('SELECT * FROM b');
    expect(ex.stats).toEqual({ hits: 2, misses: 4 });
  });

  it('returns a copy, so callers cannot corrupt the cache', () => {
    const ex = new TableExtractor();
    ex.tables('SELECT * FROM a')?.push('oops');
    expect(ex.tables('SELECT * FROM a')).toEqual(['a']);
  });

  it('rejects a cache size that is not a positive integer', () => {
    expect(() => new TableExtractor({ cacheSize: 0 })).toThrow(RangeError);
  });
});

describe('splitWithParser', () => {
  it.each<[string, string, { text: string; offset: number }[] | null]>([
    ['one statement', 'SELECT 1', [{ text: 'SELECT 1', offset: 0 }]],
    [
      'leading comments belong to the statement, empty statements vanish',
      'SELECT 1; /* a */ ; -- b\n /* c */ SELECT 2 /* d */ ;  ',
      [
        { text: 'SELECT 1', offset: 0 },
        { text: '-- b\n /* c */ SELECT 2 /* d */', offset: 20 },
      ],
    ],
    [
      'byte offsets become string offsets',
      "SELECT 'é'; SELECT '😀' ; SELECT 3",
      [
        { text: "SELECT 'é'", offset: 0 },
        { text: "SELECT '😀'", offset: 12 },
        { text: 'SELECT 3', offset: 26 },
      ],
    ],
    [
      'BEGIN ATOMIC body',
      'CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END; SELECT 2',
      [
        { text: 'CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END', offset: 0 },
        { text: 'SELECT 2', offset: 73 },
      ],
    ],
    ['empty text', '', []],
    ['comments only', '/* x */ ; -- y', []],
    ['syntax error anywhere', 'SELECT 1; SELEC 2', null],
  ])('%s', (_name, sql, expected) => {
    expect(splitWithParser(sql)).toEqual(expected);
  });
});

describe('standard_conforming_strings = off', () => {
  it('the parser reads backslash escapes as the session does', () => {
    const sql = "select 'x\\' from t --', 1 from u";
    expect(extractor.tables(sql, SCS_OFF)).toEqual(['u']);
    expect(extractor.tables(sql)).toEqual(['t']);
    expect(withEscapeStrings("select N'\\'', '\\\\' from v")).toBe("select E'\\'', E'\\\\' from v");
  });
});
