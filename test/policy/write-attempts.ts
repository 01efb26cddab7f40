/**
 * Write attempts by a `read` identity, and what each layer does with them: `sidecar` is the policy
 * engine's decision (refuse before forwarding, or forward), `postgres` what a real Postgres session
 * opened with `default_transaction_read_only=on` does with the same text:
 *   refuses — an error (`sqlstate`), nothing written;
 *   allows  — it runs (harmless in a read-only session, or not a write at all);
 *   unlocks — it runs and leaves the session able to write (`SHOW transaction_read_only` = off).
 * RESET and SET … TO DEFAULT go back to the startup value (on), so Postgres allows them harmlessly;
 * the sidecar refuses them all the same, as attempts.
 * Every write attempt must be refused by at least one layer, and every `unlocks` by the sidecar,
 * except the rows marked `hole`, which say why and what covers them.
 */

export interface WriteAttempt {
  name: string;
  sql: string;
  /** Send through the extended protocol (Parse/Bind/Execute) with these parameters. */
  params?: unknown[];
  sidecar: 'refuses' | 'allows';
  postgres: 'refuses' | 'allows' | 'unlocks';
  /** The SQLSTATE Postgres answers with when it refuses (default 25006 read_only_sql_transaction). */
  sqlstate?: string;
  /** A read the engine must not refuse (a control row, not a write attempt). */
  control?: true;
  /** Neither layer refuses it: why, and what covers it. */
  hole?: string;
}

/** Objects the attempts use, created by a read-write session first. */
export const SETUP_SQL = `
  create table accounts (id int primary key, balance int not null);
  insert into accounts select g, 100 from generate_series(1, 20) g;
  create table audit_log (id serial primary key, note text);
  create sequence seq;
  create view accounts_view as select * from accounts;
  create materialized view account_count as select count(*) as n from accounts;
  create function write_fn() returns int language sql volatile
    as $$ insert into audit_log (note) values ('x') returning id $$;
  create function definer_write() returns void language plpgsql security definer
    as $$ begin delete from accounts where id = 20; end $$;
  create function flip_read_only() returns text language sql security definer
    as $$ select set_config('default_transaction_read_only', 'off', false) $$;
  create procedure proc_write() language sql as $$ update accounts set balance = balance + 1 where id = 1 $$;
`;

export const WRITE_ATTEMPTS: WriteAttempt[] = [
  // Data-modifying statements and CTEs
  { name: 'UPDATE', sql: 'UPDATE accounts SET balance = 0 WHERE id = 1', sidecar: 'refuses', postgres: 'refuses' },
  { name: 'DELETE', sql: 'DELETE FROM accounts WHERE id = 1', sidecar: 'refuses', postgres: 'refuses' },
  { name: 'INSERT', sql: "INSERT INTO audit_log (note) VALUES ('x')", sidecar: 'refuses', postgres: 'refuses' },
  {
    name: 'INSERT … SELECT',
    sql: 'INSERT INTO audit_log (note) SELECT balance::text FROM accounts',
    sidecar: 'refuses',
    postgres: 'refuses',
  },
  {
    name: 'MERGE',
    sql: 'MERGE INTO accounts a USING (SELECT 1 AS id) s ON a.id = s.id WHEN MATCHED THEN UPDATE SET balance = 0',
    sidecar: 'refuses',
    postgres: 'refuses',
  },
  { name: 'TRUNCATE', sql: 'TRUNCATE audit_log', sidecar: 'refuses', postgres: 'refuses' },
  {
    name: 'UPDATE through a view',
    sql: 'UPDATE accounts_view SET balance = 1 WHERE id = 1',
    sidecar: 'refuses',
    postgres: 'refuses',
  },
  {
    name: 'REFRESH MATERIALIZED VIEW',
    sql: 'REFRESH MATERIALIZED VIEW account_count',
    sidecar: 'refuses',
    postgres: 'refuses',
  },
  {
    name: 'CTE with DELETE',
    sql: 'WITH d AS (DELETE FROM accounts WHERE id = 1 RETURNING *) SELECT * FROM d',
    sidecar: 'refuses',
    postgres: 'refuses',
  },
  {
    name: 'CTE with INSERT',
    sql: "WITH i AS (INSERT INTO audit_log (note) VALUES ('x') RETURNING id) SELECT id FROM i",
    sidecar: 'refuses',
    postgres: 'refuses',
  },
  {
    name: 'CTE with UPDATE under a read-looking SELECT',
    sql: 'WITH u AS (UPDATE accounts SET balance = 0 WHERE id = 2 RETURNING id) SELECT count(*) FROM accounts',
    sidecar: 'refuses',
    postgres: 'refuses',
  },
  {
    name: 'leading comment hides the verb from a naive scan',
    sql: '/* just reading */ DELETE FROM accounts WHERE id = 7',
    sidecar: 'refuses',
    postgres: 'refuses',
  },
  {
    name: 'COPY (DELETE … RETURNING) TO STDOUT',
    sql: 'COPY (DELETE FROM accounts WHERE id = 6 RETURNING *) TO STDOUT',
    sidecar: 'refuses',
    postgres: 'refuses',
  },
  // Row and table locks
  {
    name: 'SELECT … FOR UPDATE',
    sql: 'SELECT * FROM accounts WHERE id = 1 FOR UPDATE',
    sidecar: 'refuses',
    postgres: 'refuses',
  },
  {
    name: 'SELECT … FOR SHARE',
    sql: 'SELECT * FROM accounts WHERE id = 1 FOR SHARE',
    sidecar: 'refuses',
    postgres: 'refuses',
  },
  {
    name: 'SELECT … FOR NO KEY UPDATE',
    sql: 'SELECT * FROM accounts FOR NO KEY UPDATE SKIP LOCKED',
    sidecar: 'refuses',
    postgres: 'refuses',
  },
  {
    name: 'row lock in a subquery',
    sql: 'SELECT * FROM accounts WHERE id IN (SELECT id FROM accounts WHERE id < 3 FOR KEY SHARE)',
    sidecar: 'refuses',
    postgres: 'refuses',
  },
  {
    name: 'cursor FOR UPDATE',
    sql: 'BEGIN; DECLARE c CURSOR FOR SELECT * FROM accounts FOR UPDATE',
    sidecar: 'refuses',
    postgres: 'refuses',
  },
  {
    name: 'LOCK TABLE … EXCLUSIVE',
    sql: 'BEGIN; LOCK TABLE accounts IN EXCLUSIVE MODE',
    sidecar: 'refuses',
    postgres: 'allows',
  },
  // Sequences, large objects, advisory locks, notifications
  { name: 'SELECT nextval', sql: "SELECT nextval('seq')", sidecar: 'refuses', postgres: 'refuses' },
  { name: 'nextval in FROM', sql: "SELECT * FROM nextval('seq')", sidecar: 'refuses', postgres: 'refuses' },
  { name: 'setval', sql: "SELECT setval('seq', 42)", sidecar: 'refuses', postgres: 'refuses' },
  {
    name: 'EXPLAIN ANALYZE of nextval',
    sql: "EXPLAIN ANALYZE SELECT nextval('seq')",
    sidecar: 'refuses',
    postgres: 'refuses',
  },
  { name: 'lo_import', sql: "SELECT lo_import('/etc/hostname')", sidecar: 'refuses', postgres: 'refuses' },
  { name: 'lo_create', sql: 'SELECT lo_create(0)', sidecar: 'refuses', postgres: 'refuses' },
  { name: 'lo_from_bytea', sql: "SELECT lo_from_bytea(0, 'x')", sidecar: 'refuses', postgres: 'refuses' },
  {
    name: 'pg_advisory_lock',
    sql: 'SELECT pg_advisory_lock(1)',
    sidecar: 'refuses',
    postgres: 'allows',
  },
  {
    name: 'pg_try_advisory_xact_lock',
    sql: 'SELECT pg_try_advisory_xact_lock(2)',
    sidecar: 'refuses',
    postgres: 'allows',
  },
  { name: 'NOTIFY', sql: 'NOTIFY jobs', sidecar: 'refuses', postgres: 'allows' },
  { name: 'pg_notify', sql: "SELECT pg_notify('jobs', 'go')", sidecar: 'refuses', postgres: 'allows' },
  // DDL, temp tables, maintenance
  { name: 'CREATE TEMP TABLE', sql: 'CREATE TEMP TABLE scratch (a int)', sidecar: 'refuses', postgres: 'refuses' },
  { name: 'SELECT … INTO TEMP', sql: 'SELECT 1 AS a INTO TEMP scratch2', sidecar: 'refuses', postgres: 'refuses' },
  {
    name: 'CREATE TABLE AS',
    sql: 'CREATE TABLE copy_of AS SELECT * FROM accounts',
    sidecar: 'refuses',
    postgres: 'refuses',
  },
  { name: 'DROP TABLE', sql: 'DROP TABLE audit_log', sidecar: 'refuses', postgres: 'refuses' },
  { name: 'VACUUM', sql: 'VACUUM accounts', sidecar: 'refuses', postgres: 'allows' },
  // Code the parser cannot see into
  {
    name: 'DO block that writes',
    sql: 'DO $$ BEGIN DELETE FROM accounts WHERE id = 3; END $$',
    sidecar: 'refuses',
    postgres: 'refuses',
  },
  { name: 'DO block that only reads', sql: 'DO $$ BEGIN PERFORM 1; END $$', sidecar: 'refuses', postgres: 'allows' },
  { name: 'CALL of a writing procedure', sql: 'CALL proc_write()', sidecar: 'refuses', postgres: 'refuses' },
  { name: 'volatile function that writes', sql: 'SELECT write_fn()', sidecar: 'allows', postgres: 'refuses' },
  {
    name: 'SECURITY DEFINER function that writes',
    sql: 'SELECT definer_write()',
    sidecar: 'allows',
    postgres: 'refuses',
  },
  {
    name: 'SECURITY DEFINER function that calls set_config',
    sql: 'SELECT flip_read_only()',
    sidecar: 'allows',
    postgres: 'unlocks',
    hole:
      'the function body is not on the wire; Postgres (14+) reports the change as ParameterStatus ' +
      'default_transaction_read_only=off, which the sidecar must treat as fatal for a read session',
  },
  // Prepared statements, several statements, the extended protocol
  {
    name: 'PREPARE/EXECUTE of a write',
    sql: 'PREPARE w AS DELETE FROM accounts WHERE id = 4; EXECUTE w',
    sidecar: 'refuses',
    postgres: 'refuses',
  },
  {
    name: 'several statements, the last one writes',
    sql: 'SELECT 1; DELETE FROM accounts WHERE id = 5',
    sidecar: 'refuses',
    postgres: 'refuses',
  },
  {
    name: 'extended protocol UPDATE',
    sql: 'UPDATE accounts SET balance = $1 WHERE id = 1',
    params: [5],
    sidecar: 'refuses',
    postgres: 'refuses',
  },
  {
    name: 'extended protocol nextval',
    sql: 'SELECT nextval($1)',
    params: ['seq'],
    sidecar: 'refuses',
    postgres: 'refuses',
  },
  // Turning read-only off
  {
    name: 'SET default_transaction_read_only = off',
    sql: 'SET default_transaction_read_only = off',
    sidecar: 'refuses',
    postgres: 'unlocks',
  },
  {
    name: 'SET default_transaction_read_only TO DEFAULT',
    sql: 'SET default_transaction_read_only TO DEFAULT',
    sidecar: 'refuses',
    postgres: 'allows',
  },
  {
    name: "SET … = 'no'",
    sql: "SET SESSION default_transaction_read_only = 'no'",
    sidecar: 'refuses',
    postgres: 'unlocks',
  },
  {
    name: 'SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE',
    sql: 'SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE',
    sidecar: 'refuses',
    postgres: 'unlocks',
  },
  { name: 'BEGIN READ WRITE', sql: 'BEGIN READ WRITE', sidecar: 'refuses', postgres: 'unlocks' },
  {
    name: 'START TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ WRITE',
    sql: 'START TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ WRITE',
    sidecar: 'refuses',
    postgres: 'unlocks',
  },
  {
    name: 'BEGIN; SET transaction_read_only = off',
    sql: 'BEGIN; SET transaction_read_only = off',
    sidecar: 'refuses',
    postgres: 'unlocks',
  },
  {
    name: 'BEGIN; SET LOCAL transaction_read_only TO off',
    sql: 'BEGIN; SET LOCAL transaction_read_only TO off',
    sidecar: 'refuses',
    postgres: 'unlocks',
  },
  {
    name: 'BEGIN; SET TRANSACTION READ WRITE',
    sql: 'BEGIN; SET TRANSACTION READ WRITE',
    sidecar: 'refuses',
    postgres: 'unlocks',
  },
  {
    name: 'set_config(default_transaction_read_only)',
    sql: "SELECT set_config('default_transaction_read_only', 'off', false)",
    sidecar: 'refuses',
    postgres: 'unlocks',
  },
  {
    name: 'set_config with a computed setting name',
    sql: "SELECT pg_catalog.set_config(lower('DEFAULT_TRANSACTION_READ_ONLY'), 'off', false)",
    sidecar: 'refuses',
    postgres: 'unlocks',
  },
  {
    name: 'set_config(transaction_read_only) after a query',
    sql: "BEGIN; SELECT set_config('transaction_read_only', 'off', true)",
    sidecar: 'refuses',
    postgres: 'refuses',
    sqlstate: '25001',
  },
  {
    name: 'RESET default_transaction_read_only',
    sql: 'RESET default_transaction_read_only',
    sidecar: 'refuses',
    postgres: 'allows',
  },
  { name: 'RESET ALL', sql: 'RESET ALL', sidecar: 'refuses', postgres: 'allows' },
  {
    name: 'SET standard_conforming_strings = off (later text would read differently to the parser)',
    sql: 'SET standard_conforming_strings = off',
    sidecar: 'refuses',
    postgres: 'allows',
  },
  // Controls: reads the engine must let through
  {
    name: 'plain SELECT',
    sql: 'SELECT * FROM accounts WHERE id = 1',
    sidecar: 'allows',
    postgres: 'allows',
    control: true,
  },
  { name: 'SHOW', sql: 'SHOW transaction_read_only', sidecar: 'allows', postgres: 'allows', control: true },
  {
    name: 'EXPLAIN (no ANALYZE) of a DELETE',
    sql: 'EXPLAIN DELETE FROM accounts',
    sidecar: 'allows',
    postgres: 'allows',
    control: true,
  },
  {
    name: 'a write inside a string',
    sql: 'SELECT $$; DELETE FROM accounts$$ AS text',
    sidecar: 'allows',
    postgres: 'allows',
    control: true,
  },
  { name: 'BEGIN READ ONLY', sql: 'BEGIN READ ONLY', sidecar: 'allows', postgres: 'allows', control: true },
  {
    name: 'SET default_transaction_read_only = on',
    sql: 'SET default_transaction_read_only = on',
    sidecar: 'allows',
    postgres: 'allows',
    control: true,
  },
  {
    name: 'SET application_name',
    sql: "SET application_name = 'report'",
    sidecar: 'allows',
    postgres: 'allows',
    control: true,
  },
  {
    name: 'set_config of another setting',
    sql: "SELECT set_config('application_name', 'report', false)",
    sidecar: 'allows',
    postgres: 'allows',
    control: true,
  },
  {
    name: 'advisory lock status (a read)',
    sql: 'SELECT count(*) FROM pg_locks',
    sidecar: 'allows',
    postgres: 'allows',
    control: true,
  },
];
