import type { StatementClassName } from '@byline/api';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { classify } from './lexer.js';

type Case = [sql: string, command: string | null, cls: StatementClassName];

const check = (cases: Case[]) =>
  it.each(cases)('%s → %s / %s', (sql, command, cls) => {
    expect(classify(sql)).toEqual({ command, class: cls });
  });

describe('classify', () => {
  describe('read', () => {
    check([
      ['SELECT 1', 'SELECT', 'read'],
      ['select * from t where a = 1', 'SELECT', 'read'],
      ['SeLeCt 1', 'SELECT', 'read'],
      ['VALUES (1), (2)', 'SELECT', 'read'],
      ['TABLE t', 'SELECT', 'read'],
      ['(SELECT 1) UNION (SELECT 2)', 'SELECT', 'read'],
      ['((SELECT 1))', 'SELECT', 'read'],
      ['SHOW search_path', 'SHOW', 'read'],
      ['FETCH 10 FROM c', 'FETCH', 'read'],
      ['COPY t TO STDOUT', 'COPY', 'read'],
      ['COPY (SELECT * FROM t) TO STDOUT WITH (FORMAT csv)', 'COPY', 'read'],
      ['COPY t (a, b) TO STDOUT', 'COPY', 'read'],
      ['EXPLAIN SELECT 1', 'EXPLAIN', 'read'],
      ['EXPLAIN DELETE FROM t', 'EXPLAIN', 'read'],
      ['EXPLAIN VERBOSE UPDATE t SET a = 1', 'EXPLAIN', 'read'],
      ['EXPLAIN (COSTS off, ANALYZE false) DELETE FROM t', 'EXPLAIN', 'read'],
      ["EXPLAIN (ANALYZE 'off') DELETE FROM t", 'EXPLAIN', 'read'],
      ['EXPLAIN (ANALYZE 0) DELETE FROM t', 'EXPLAIN', 'read'],
      ['SELECT * FROM t FOR UPDATE', 'SELECT', 'read'],
    ]);
  });

  describe('write', () => {
    check([
      ['INSERT INTO t VALUES (1)', 'INSERT', 'write'],
      ['UPDATE t SET a = 1', 'UPDATE', 'write'],
      ['DELETE FROM t', 'DELETE', 'write'],
      ['MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE', 'MERGE', 'write'],
      ['TRUNCATE t', 'TRUNCATE TABLE', 'write'],
      ['TRUNCATE TABLE a, b CASCADE', 'TRUNCATE TABLE', 'write'],
      ['COPY t FROM STDIN', 'COPY', 'write'],
      ['COPY t (a, b) FROM STDIN WITH (FORMAT csv)', 'COPY', 'write'],
      ['COPY "to" FROM STDIN', 'COPY', 'write'],
      ['REFRESH MATERIALIZED VIEW mv', 'REFRESH MATERIALIZED VIEW', 'write'],
    ]);
  });

  describe('WITH', () => {
    check([
      ['WITH x AS (SELECT 1) SELECT * FROM x', 'SELECT', 'read'],
      ['WITH RECURSIVE x(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM x) SELECT * FROM x', 'SELECT', 'read'],
      ['WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x', 'SELECT', 'write'],
      ['WITH a AS (SELECT 1), b AS (UPDATE t SET a = 1 RETURNING *) SELECT 1', 'SELECT', 'write'],
      ['WITH x AS MATERIALIZED (INSERT INTO t VALUES (1) RETURNING *) TABLE x', 'SELECT', 'write'],
      ['WITH x AS NOT MATERIALIZED (SELECT 1) VALUES (1)', 'SELECT', 'read'],
      ['WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x', 'INSERT', 'write'],
      ['WITH x AS (SELECT 1) UPDATE t SET a = 1', 'UPDATE', 'write'],
      ['WITH x AS (SELECT 1) DELETE FROM t', 'DELETE', 'write'],
      ['WITH x AS (SELECT 1) MERGE INTO t USING x ON true WHEN MATCHED THEN DELETE', 'MERGE', 'write'],
      ['WITH x AS (SELECT 1) (SELECT * FROM x)', 'SELECT', 'read'],
      ['WITH x AS (SELECT 1) SELECT * INTO y FROM x', 'SELECT INTO', 'ddl'],
      // The CTE bodies hide the words that would mislead a naive scan.
      ['WITH x AS (SELECT \') DELETE\' AS "(") SELECT 1', 'SELECT', 'read'],
      ['WITH x AS (SELECT (SELECT 1) /* ) */ ) SELECT 1', 'SELECT', 'read'],
      ['WITH "Odd Name" (a, b) AS (SELECT 1, 2) SELECT 1', 'SELECT', 'read'],
      // INSERT is an unreserved keyword: a CTE may be called that.
      ['WITH insert AS (SELECT 1) SELECT * FROM insert', 'SELECT', 'read'],
      ['WITH x AS ((DELETE FROM t RETURNING *)) SELECT 1', 'SELECT', 'write'],
      [
        'WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t) SEARCH DEPTH FIRST BY n SET ord SELECT * FROM t',
        'SELECT',
        'read',
      ],
      [
        'WITH RECURSIVE t(n) AS (SELECT 1) CYCLE n SET is_cycle USING path, u AS (DELETE FROM d) SELECT 1',
        'SELECT',
        'write',
      ],
      ['with /* c */ x as ( -- (\n select 1) select 1', 'SELECT', 'read'],
      ['WITH', null, 'misc'],
      ['WITH x AS (SELECT 1)', null, 'misc'],
      ['WITH x (SELECT 1) SELECT 1', null, 'misc'],
    ]);
  });

  describe('EXPLAIN ANALYZE takes the class of what it runs', () => {
    check([
      ['EXPLAIN ANALYZE SELECT 1', 'EXPLAIN', 'read'],
      ['EXPLAIN ANALYZE DELETE FROM t', 'EXPLAIN', 'write'],
      ['EXPLAIN ANALYSE VERBOSE UPDATE t SET a = 1', 'EXPLAIN', 'write'],
      ['EXPLAIN (ANALYZE) INSERT INTO t VALUES (1)', 'EXPLAIN', 'write'],
      ['EXPLAIN (ANALYZE true, BUFFERS) DELETE FROM t', 'EXPLAIN', 'write'],
      ['EXPLAIN (FORMAT json, ANALYZE on) DELETE FROM t', 'EXPLAIN', 'write'],
      ['EXPLAIN (ANALYZE, SERIALIZE text) MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE', 'EXPLAIN', 'write'],
      ['EXPLAIN ANALYZE WITH x AS (DELETE FROM t) SELECT 1', 'EXPLAIN', 'write'],
      ['EXPLAIN ANALYZE CREATE TABLE t AS SELECT 1', 'EXPLAIN', 'ddl'],
      ['EXPLAIN ANALYZE SELECT 1 INTO t', 'EXPLAIN', 'ddl'],
      ['explain analyze execute p', 'EXPLAIN', 'misc'],
    ]);
  });

  describe('ddl', () => {
    check([
      ['CREATE TABLE t (a int)', 'CREATE TABLE', 'ddl'],
      ['CREATE TEMP TABLE t (a int)', 'CREATE TABLE', 'ddl'],
      ['CREATE GLOBAL TEMPORARY TABLE t (a int)', 'CREATE TABLE', 'ddl'],
      ['CREATE UNLOGGED TABLE t (a int)', 'CREATE TABLE', 'ddl'],
      ['CREATE TABLE t (a int GENERATED ALWAYS AS (1) STORED)', 'CREATE TABLE', 'ddl'],
      ['CREATE TABLE t AS SELECT 1', 'CREATE TABLE AS', 'ddl'],
      ['CREATE TABLE IF NOT EXISTS t (a, b) AS VALUES (1, 2)', 'CREATE TABLE AS', 'ddl'],
      ['SELECT 1 AS a INTO TEMP t', 'SELECT INTO', 'ddl'],
      ['SELECT a, b INTO t FROM s', 'SELECT INTO', 'ddl'],
      ['SELECT DISTINCT ON (a) a INTO t FROM s', 'SELECT INTO', 'ddl'],
      ['CREATE INDEX i ON t (a)', 'CREATE INDEX', 'ddl'],
      ['CREATE UNIQUE INDEX CONCURRENTLY i ON t (a)', 'CREATE INDEX', 'ddl'],
      ['ALTER TABLE t ADD COLUMN b int', 'ALTER TABLE', 'ddl'],
      ['DROP TABLE t', 'DROP TABLE', 'ddl'],
      ['DROP TABLE IF EXISTS a, b CASCADE', 'DROP TABLE', 'ddl'],
      ['CREATE FUNCTION f() RETURNS int AS $$ SELECT 1 $$ LANGUAGE sql', 'CREATE FUNCTION', 'ddl'],
      ['CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END', 'CREATE FUNCTION', 'ddl'],
      ['CREATE OR REPLACE PROCEDURE p() LANGUAGE sql AS $$ $$', 'CREATE PROCEDURE', 'ddl'],
      ['CREATE VIEW v AS SELECT 1', 'CREATE VIEW', 'ddl'],
      ['CREATE OR REPLACE TEMP RECURSIVE VIEW v (n) AS SELECT 1', 'CREATE VIEW', 'ddl'],
      ['CREATE MATERIALIZED VIEW mv AS SELECT 1', 'CREATE MATERIALIZED VIEW', 'ddl'],
      ['ALTER MATERIALIZED VIEW mv RENAME TO mv2', 'ALTER MATERIALIZED VIEW', 'ddl'],
      ['CREATE SCHEMA s', 'CREATE SCHEMA', 'ddl'],
      ['CREATE EXTENSION pgcrypto', 'CREATE EXTENSION', 'ddl'],
      ['CREATE SEQUENCE s', 'CREATE SEQUENCE', 'ddl'],
      ['CREATE CONSTRAINT TRIGGER tr AFTER INSERT ON t FOR EACH ROW EXECUTE FUNCTION f()', 'CREATE TRIGGER', 'ddl'],
      ['CREATE EVENT TRIGGER e ON ddl_command_start EXECUTE FUNCTION f()', 'CREATE EVENT TRIGGER', 'ddl'],
      ['CREATE FOREIGN TABLE ft (a int) SERVER s', 'CREATE FOREIGN TABLE', 'ddl'],
      ['CREATE FOREIGN DATA WRAPPER w', 'CREATE FOREIGN DATA WRAPPER', 'ddl'],
      ['CREATE TEXT SEARCH CONFIGURATION c (COPY = english)', 'CREATE TEXT SEARCH CONFIGURATION', 'ddl'],
      ['CREATE OPERATOR CLASS c FOR TYPE int USING btree AS OPERATOR 1 <', 'CREATE OPERATOR CLASS', 'ddl'],
      ['CREATE OPERATOR === (LEFTARG = int, RIGHTARG = int, FUNCTION = f)', 'CREATE OPERATOR', 'ddl'],
      ['CREATE TRUSTED PROCEDURAL LANGUAGE l', 'CREATE LANGUAGE', 'ddl'],
      ["CREATE DEFAULT CONVERSION c FOR 'LATIN1' TO 'UTF8' FROM f", 'CREATE CONVERSION', 'ddl'],
      ['CREATE USER MAPPING FOR u SERVER s', 'CREATE USER MAPPING', 'ddl'],
      ['DROP USER MAPPING FOR u SERVER s', 'DROP USER MAPPING', 'ddl'],
      ['CREATE POLICY p ON t USING (true)', 'CREATE POLICY', 'ddl'],
      ['ALTER LARGE OBJECT 1 OWNER TO u', 'ALTER LARGE OBJECT', 'ddl'],
      ['DROP ROUTINE r', 'DROP ROUTINE', 'ddl'],
      ['CREATE SOMETHING NEW', 'CREATE', 'ddl'],
      ["COMMENT ON TABLE t IS 'x'", 'COMMENT', 'ddl'],
      ["SECURITY LABEL ON TABLE t IS 'x'", 'SECURITY LABEL', 'ddl'],
      ['REINDEX TABLE t', 'REINDEX', 'ddl'],
      ['CLUSTER t USING i', 'CLUSTER', 'ddl'],
      ['IMPORT FOREIGN SCHEMA s FROM SERVER srv INTO l', 'IMPORT FOREIGN SCHEMA', 'ddl'],
    ]);
  });

  describe('role', () => {
    check([
      ['CREATE ROLE r', 'CREATE ROLE', 'role'],
      ["CREATE USER u WITH PASSWORD 'x'", 'CREATE ROLE', 'role'],
      ['CREATE GROUP g', 'CREATE ROLE', 'role'],
      ['ALTER ROLE r SUPERUSER', 'ALTER ROLE', 'role'],
      ['ALTER USER u RENAME TO v', 'ALTER ROLE', 'role'],
      ['DROP ROLE IF EXISTS r', 'DROP ROLE', 'role'],
      ['DROP USER u', 'DROP ROLE', 'role'],
      ['GRANT SELECT ON t TO r', 'GRANT', 'role'],
      ['REVOKE ALL ON t FROM r', 'REVOKE', 'role'],
      ['ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO r', 'ALTER DEFAULT PRIVILEGES', 'role'],
      ['SET ROLE admin', 'SET', 'role'],
      ['SET LOCAL ROLE admin', 'SET', 'role'],
      ['SET SESSION ROLE admin', 'SET', 'role'],
      ["set role = 'admin'", 'SET', 'role'],
      ['SET SESSION AUTHORIZATION u', 'SET', 'role'],
      ['SET LOCAL SESSION AUTHORIZATION DEFAULT', 'SET', 'role'],
      ['SET session_authorization = u', 'SET', 'role'],
      ['RESET ROLE', 'RESET', 'role'],
      ['RESET SESSION AUTHORIZATION', 'RESET', 'role'],
      ['REASSIGN OWNED BY a TO b', 'REASSIGN OWNED', 'role'],
      ['DROP OWNED BY a', 'DROP OWNED', 'role'],
    ]);
  });

  describe('tcl', () => {
    check([
      ['BEGIN', 'BEGIN', 'tcl'],
      ['begin isolation level serializable', 'BEGIN', 'tcl'],
      ['START TRANSACTION READ ONLY', 'START TRANSACTION', 'tcl'],
      ['COMMIT', 'COMMIT', 'tcl'],
      ['END', 'COMMIT', 'tcl'],
      ['ROLLBACK', 'ROLLBACK', 'tcl'],
      ['ROLLBACK TO SAVEPOINT s', 'ROLLBACK', 'tcl'],
      ['ABORT', 'ROLLBACK', 'tcl'],
      ['SAVEPOINT s', 'SAVEPOINT', 'tcl'],
      ['RELEASE SAVEPOINT s', 'RELEASE', 'tcl'],
      ["PREPARE TRANSACTION 'tx'", 'PREPARE TRANSACTION', 'tcl'],
      ["COMMIT PREPARED 'tx'", 'COMMIT PREPARED', 'tcl'],
      ["ROLLBACK PREPARED 'tx'", 'ROLLBACK PREPARED', 'tcl'],
    ]);
  });

  describe('misc', () => {
    check([
      ['SET search_path = public', 'SET', 'misc'],
      ['SET LOCAL statement_timeout = 0', 'SET', 'misc'],
      ['SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY', 'SET', 'misc'],
      ['SET TRANSACTION ISOLATION LEVEL SERIALIZABLE', 'SET', 'misc'],
      ['SET CONSTRAINTS ALL DEFERRED', 'SET CONSTRAINTS', 'misc'],
      ['RESET ALL', 'RESET', 'misc'],
      ['DISCARD ALL', 'DISCARD ALL', 'misc'],
      ['DISCARD TEMPORARY', 'DISCARD TEMP', 'misc'],
      ['LISTEN c', 'LISTEN', 'misc'],
      ['UNLISTEN *', 'UNLISTEN', 'misc'],
      ["NOTIFY c, 'x'", 'NOTIFY', 'misc'],
      ['PREPARE p AS SELECT 1', 'PREPARE', 'misc'],
      ['EXECUTE p (1)', 'EXECUTE', 'misc'],
      ['DEALLOCATE p', 'DEALLOCATE', 'misc'],
      ['DEALLOCATE PREPARE ALL', 'DEALLOCATE ALL', 'misc'],
      ['DECLARE c CURSOR FOR SELECT 1', 'DECLARE CURSOR', 'misc'],
      ['CLOSE c', 'CLOSE CURSOR', 'misc'],
      ['CLOSE ALL', 'CLOSE CURSOR ALL', 'misc'],
      ['MOVE NEXT IN c', 'MOVE', 'misc'],
      ['VACUUM ANALYZE t', 'VACUUM', 'misc'],
      ['ANALYZE t', 'ANALYZE', 'misc'],
      ['CHECKPOINT', 'CHECKPOINT', 'misc'],
      ['LOCK TABLE t IN ACCESS EXCLUSIVE MODE', 'LOCK TABLE', 'misc'],
      ['DO $$ BEGIN DELETE FROM t; END $$', 'DO', 'misc'],
      ['CALL p()', 'CALL', 'misc'],
      ["LOAD 'auto_explain'", 'LOAD', 'misc'],
      ["ALTER SYSTEM SET work_mem = '1GB'", 'ALTER SYSTEM', 'misc'],
      ['FROBNICATE everything', null, 'misc'],
      ["'just a string'", null, 'misc'],
      ['42', null, 'misc'],
      [';', null, 'misc'],
      ['', null, 'misc'],
      ['   \n ', null, 'misc'],
      ['-- only a comment', null, 'misc'],
      ['/* only /* nested */ a comment */', null, 'misc'],
      ['/* unterminated SELECT 1', null, 'misc'],
    ]);
  });

  describe('reads past comments and quirks of the leading words', () => {
    check([
      ['  /* hint */ -- line\n  UPDATE t SET a = 1', 'UPDATE', 'write'],
      ["/* traceparent='00-x' */ DELETE FROM t", 'DELETE', 'write'],
      ['SELECT 1 AS into', 'SELECT', 'read'],
      ['SELECT t.into FROM t', 'SELECT', 'read'],
      ["SELECT 'into' FROM t", 'SELECT', 'read'],
      ['SELECT "into" FROM t', 'SELECT', 'read'],
      ['SELECT (SELECT 1 FROM x) INTO y', 'SELECT INTO', 'ddl'],
      ['SELECT a FROM t WHERE b IN (SELECT c INTO d FROM e)', 'SELECT', 'read'],
      ['SELECT 1 UNION SELECT 2 INTO t', 'SELECT', 'read'],
      ['SELECT f(x) INTO STRICT v', 'SELECT INTO', 'ddl'],
      ['select/**/1', 'SELECT', 'read'],
    ]);
  });

  it('never throws and always answers with a known class', () => {
    const classes = ['read', 'write', 'ddl', 'role', 'tcl', 'misc'];
    const words = fc.constantFrom(
      'with',
      'as',
      '(',
      ')',
      'select',
      'explain',
      'analyze',
      ',',
      "'",
      '$$',
      '/*',
      'x',
      ' ',
    );
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.array(words).map((w) => w.join(' ')),
        ),
        (sql) => {
          expect(classes).toContain(classify(sql).class);
        },
      ),
    );
  });
});
