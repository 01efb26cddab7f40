/**
 * The facts the policy decides one statement from, read off libpg-query's parse tree (pure: no
 * parser here, only its JSON AST). What counts as a write is written down in WRITE_FUNCTIONS and
 * in `topLevel` below, and in the README's policy section:
 *
 * - DML anywhere (also inside WITH, PREPARE, EXPLAIN ANALYZE, DECLARE), COPY FROM, TRUNCATE,
 *   REFRESH MATERIALIZED VIEW, row locks (SELECT … FOR UPDATE/SHARE), table locks stronger than
 *   ACCESS SHARE, sequence changes (nextval/setval), large objects, advisory locks, NOTIFY,
 *   VACUUM/ANALYZE, CALL, and DO (code the sidecar cannot see).
 * - Not visible here: what a function called by name does (a volatile or SECURITY DEFINER function
 *   that writes looks like a read; for `read` access Postgres's read-only session refuses it).
 */
import type { StatementClassName } from '@byline/api';
import type { ParseResult } from 'libpg-query';
import { relationsOf } from '../sql/relations.js';

export interface StatementFacts {
  /** Postgres's command tag, e.g. `SELECT`, `UPDATE`, `CREATE TABLE`. */
  readonly command: string;
  readonly class: StatementClassName;
  /** Why it may change data or state other sessions see; empty when, as far as the tree shows, it does not. */
  readonly writes: readonly string[];
  /** Relations it names (`schema.name` when qualified), CTE names excluded. */
  readonly tables: readonly string[];
  /** An UPDATE or DELETE (anywhere in the statement) without WHERE, or with one that is always true. */
  readonly unfiltered: 'update' | 'delete' | null;
  /** An attempt to turn off read-only mode (`SET default_transaction_read_only = off`, `BEGIN READ WRITE`, …). */
  readonly readOnlyChange: string | null;
  /**
   * A change to how statement text is read (`standard_conforming_strings` off, a client_encoding
   * other than UTF-8): the parser would then misread later statements, so guardrails could not hold.
   */
  readonly scannerChange: string | null;
  /** Needs `admin` whatever its class: DO blocks, COPY … PROGRAM, server files, ALTER SYSTEM, … */
  readonly adminOnly: string | null;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null;

/** Built-in functions that change state, by (lower-case) name, and why. Matched in any schema. */
const WRITE_FUNCTIONS: ReadonlyMap<string, string> = new Map([
  ['nextval', 'nextval() advances a sequence'],
  ['setval', 'setval() sets a sequence'],
  ['lo_import', 'lo_import() creates a large object'],
  ['lo_create', 'lo_create() creates a large object'],
  ['lo_creat', 'lo_creat() creates a large object'],
  ['lo_from_bytea', 'lo_from_bytea() creates a large object'],
  ['lo_put', 'lo_put() writes a large object'],
  ['lo_unlink', 'lo_unlink() deletes a large object'],
  ['lo_truncate', 'lo_truncate() truncates a large object'],
  ['lo_open', 'lo_open() opens a large object (possibly for writing)'],
  ['lowrite', 'lowrite() writes a large object'],
  ['lo_export', 'lo_export() writes a server file'],
  ['pg_advisory_lock', 'takes an advisory lock'],
  ['pg_advisory_lock_shared', 'takes an advisory lock'],
  ['pg_advisory_xact_lock', 'takes an advisory lock'],
  ['pg_advisory_xact_lock_shared', 'takes an advisory lock'],
  ['pg_try_advisory_lock', 'takes an advisory lock'],
  ['pg_try_advisory_lock_shared', 'takes an advisory lock'],
  ['pg_try_advisory_xact_lock', 'takes an advisory lock'],
  ['pg_try_advisory_xact_lock_shared', 'takes an advisory lock'],
  ['pg_notify', 'pg_notify() signals other sessions'],
  ['dblink_exec', 'dblink_exec() runs a statement on another connection'],
  ['dblink', 'dblink() runs a statement on another connection'],
  ['pg_terminate_backend', 'terminates another session'],
  ['pg_cancel_backend', 'cancels another session'],
]);

/** Functions that reach outside the database or the session: admin only. */
const ADMIN_FUNCTIONS: ReadonlyMap<string, string> = new Map([
  ['lo_import', 'lo_import() reads a server file'],
  ['lo_export', 'lo_export() writes a server file'],
  ['pg_read_file', 'pg_read_file() reads a server file'],
  ['pg_read_binary_file', 'pg_read_binary_file() reads a server file'],
  ['pg_ls_dir', 'pg_ls_dir() lists a server directory'],
  ['pg_stat_file', 'pg_stat_file() inspects a server file'],
  ['pg_terminate_backend', 'pg_terminate_backend() ends another session'],
  ['pg_cancel_backend', 'pg_cancel_backend() cancels another session'],
  ['pg_reload_conf', 'pg_reload_conf() reloads the server configuration'],
  ['dblink_exec', 'dblink_exec() runs a statement on another connection'],
  ['dblink', 'dblink() runs a statement on another connection'],
]);

/** The settings that keep a `read` session read-only. */
const READ_ONLY_SETTINGS = new Set(['default_transaction_read_only', 'transaction_read_only']);
/** Settings that change how the server reads statement text, and the values that keep it as the parser reads it. */
const SCANNER_SETTINGS: ReadonlyMap<string, (value: unknown) => boolean> = new Map([
  ['standard_conforming_strings', (v: unknown) => truthy(v) === true],
  ['client_encoding', (v: unknown) => ['utf8', 'utf-8', 'unicode'].includes((constantText(v) ?? '').toLowerCase())],
]);

/** Values Postgres's parse_bool reads as true (whole words; anything else may turn it off). */
const TRUE_WORDS = new Set(['on', 'true', 'yes', '1', 't', 'y', 'tr', 'tru', 'ye']);

/** Collects what a walk finds. One per statement. */
class Findings {
  writes: string[] = [];
  unfiltered: 'update' | 'delete' | null = null;
  readOnlyChange: string | null = null;
  scannerChange: string | null = null;
  adminOnly: string | null = null;
  write(reason: string): void {
    if (!this.writes.includes(reason)) this.writes.push(reason);
  }
  admin(reason: string): void {
    this.adminOnly ??= reason;
  }
}

/** Facts for each statement of a parsed text, in order. Throws RangeError on a tree too deep to walk. */
export function factsOf(tree: ParseResult): StatementFacts[] {
  const out: StatementFacts[] = [];
  for (const raw of tree.stmts ?? []) {
    const stmt = raw.stmt as unknown;
    const found = new Findings();
    const [command, cls, runs] = topLevel(stmt, found);
    // EXPLAIN without ANALYZE plans its statement but runs nothing of it.
    if (runs) walk(stmt, found, true);
    out.push(
      Object.freeze({
        command,
        class: found.writes.length > 0 && cls === 'read' ? 'write' : cls,
        writes: Object.freeze(found.writes),
        tables: Object.freeze(relationsOf({ version: tree.version, stmts: [raw] })),
        unfiltered: found.unfiltered,
        readOnlyChange: found.readOnlyChange,
        scannerChange: found.scannerChange,
        adminOnly: found.adminOnly,
      }),
    );
  }
  return out;
}

/** Statements whose facts read no literal, except in the places `literalFree` checks. */
const TEMPLATE_STATEMENTS = new Set(['SelectStmt', 'InsertStmt', 'UpdateStmt', 'DeleteStmt']);

/**
 * Whether `factsOf(tree)` holds for every text this tree is the template of: the tree parsed from
 * a statement whose literals were made parameters (sql/template.ts). The facts read literals only
 * in SET, transaction and EXPLAIN options, COPY's file, set_config's arguments, and the WHERE of an
 * UPDATE or DELETE (is it always true?). So: only SELECT/INSERT/UPDATE/DELETE, no set_config, and
 * every UPDATE/DELETE either without WHERE or with one that depends on a row whatever the literals.
 */
export function factsHoldForAnyLiterals(tree: ParseResult): boolean {
  for (const raw of tree.stmts ?? []) {
    const stmt = raw.stmt as unknown;
    if (!isObj(stmt)) return false;
    const type = Object.keys(stmt)[0] ?? '';
    if (!TEMPLATE_STATEMENTS.has(type) || !literalFree(stmt)) return false;
  }
  return true;
}

function literalFree(node: unknown): boolean {
  if (Array.isArray(node)) return node.every(literalFree);
  if (!isObj(node)) return true;
  for (const key in node) {
    const value = node[key];
    if ((key === 'UpdateStmt' || key === 'DeleteStmt') && isObj(value)) {
      if (value.whereClause !== undefined && !neverTrue(value.whereClause)) return false;
    } else if (key === 'FuncCall' && isObj(value)) {
      if (functionName(value) === 'set_config') return false;
    }
    if (!literalFree(value)) return false;
  }
  return true;
}

/**
 * A condition `evaluate` can never find true, whatever its literals: a comparison of a column with
 * anything but a column (evaluate has no value for a column), or an AND holding one, or an OR of such.
 */
function neverTrue(node: unknown): boolean {
  if (!isObj(node)) return false;
  if (isObj(node.A_Expr)) {
    const e = node.A_Expr;
    if (e.kind !== 'AEXPR_OP') return false;
    const l = isObj(e.lexpr) && isObj(e.lexpr.ColumnRef);
    const r = isObj(e.rexpr) && isObj(e.rexpr.ColumnRef);
    return l !== r;
  }
  if (isObj(node.BoolExpr)) {
    const args = Array.isArray(node.BoolExpr.args) ? node.BoolExpr.args : [];
    if (node.BoolExpr.boolop === 'AND_EXPR') return args.some(neverTrue);
    if (node.BoolExpr.boolop === 'OR_EXPR') return args.length > 0 && args.every(neverTrue);
  }
  return false;
}

/** Command tag and class of the statement node, what only the top level can say, and whether its insides run. */
function topLevel(stmt: unknown, f: Findings): [string, StatementClassName, boolean] {
  if (!isObj(stmt)) return ['UNKNOWN', 'misc', true];
  const type = Object.keys(stmt)[0] ?? '';
  const node = stmt[type];
  const n: Obj = isObj(node) ? node : {};
  if (type === 'ExplainStmt') {
    const analyze = optionOn(n.options, 'analyze');
    const inner = innerClass(n.query);
    return ['EXPLAIN', analyze && (inner === 'write' || inner === 'ddl') ? inner : 'read', analyze];
  }
  return [...kindOf(type, n, f), true];
}

function kindOf(type: string, n: Obj, f: Findings): [string, StatementClassName] {
  switch (type) {
    case 'SelectStmt':
      return n.intoClause ? ['SELECT INTO', 'ddl'] : ['SELECT', 'read'];
    case 'InsertStmt':
      return ['INSERT', 'write'];
    case 'UpdateStmt':
      return ['UPDATE', 'write'];
    case 'DeleteStmt':
      return ['DELETE', 'write'];
    case 'MergeStmt':
      return ['MERGE', 'write'];
    case 'CopyStmt':
      return copy(n, f);
    case 'ConstraintsSetStmt':
      return ['SET CONSTRAINTS', 'misc'];
    case 'TransactionStmt':
      return transaction(n, f);
    case 'VariableSetStmt':
      return variableSet(n, f);
    case 'VariableShowStmt':
      return ['SHOW', 'read'];
    case 'PrepareStmt':
      return ['PREPARE', innerClass(n.query)];
    case 'DeclareCursorStmt':
      return ['DECLARE CURSOR', innerClass(n.query)];
    case 'ExecuteStmt':
      // The PREPARE (SQL or protocol) was decided when it was made; EXECUTE only runs it.
      return ['EXECUTE', 'misc'];
    case 'FetchStmt':
      return [n.ismove ? 'MOVE' : 'FETCH', 'read'];
    case 'ClosePortalStmt':
      return ['CLOSE CURSOR', 'misc'];
    case 'DeallocateStmt':
      return ['DEALLOCATE', 'misc'];
    case 'DiscardStmt':
      return ['DISCARD', 'misc'];
    case 'ListenStmt':
      return ['LISTEN', 'misc'];
    case 'UnlistenStmt':
      return ['UNLISTEN', 'misc'];
    case 'NotifyStmt':
      f.write('NOTIFY signals other sessions');
      return ['NOTIFY', 'misc'];
    case 'LockStmt':
      // Modes above ACCESS SHARE (1) block writers or take row-exclusive locks.
      if (typeof n.mode === 'number' && n.mode > 1) f.write('LOCK TABLE stronger than ACCESS SHARE');
      return ['LOCK TABLE', 'misc'];
    case 'DoStmt':
      f.write('DO runs code the sidecar cannot see');
      f.admin('DO runs code the sidecar cannot see');
      return ['DO', 'misc'];
    case 'CallStmt':
      f.write('CALL runs a procedure');
      return ['CALL', 'misc'];
    case 'VacuumStmt':
      f.write('VACUUM/ANALYZE maintains tables');
      return [n.is_vacuumcmd ? 'VACUUM' : 'ANALYZE', 'misc'];
    case 'TruncateStmt':
      return ['TRUNCATE TABLE', 'write'];
    case 'RefreshMatViewStmt':
      return ['REFRESH MATERIALIZED VIEW', 'write'];
    case 'CheckPointStmt':
      f.write('CHECKPOINT');
      f.admin('CHECKPOINT');
      return ['CHECKPOINT', 'misc'];
    case 'LoadStmt':
      f.write('LOAD loads a server library');
      f.admin('LOAD loads a server library');
      return ['LOAD', 'misc'];
    case 'AlterSystemStmt':
      f.admin('ALTER SYSTEM changes the server configuration');
      return ['ALTER SYSTEM', 'ddl'];
    case 'GrantStmt':
      return [n.is_grant ? 'GRANT' : 'REVOKE', 'role'];
    case 'GrantRoleStmt':
      return [n.is_grant ? 'GRANT ROLE' : 'REVOKE ROLE', 'role'];
    case 'CreateRoleStmt':
      return ['CREATE ROLE', 'role'];
    case 'AlterRoleStmt':
    case 'AlterRoleSetStmt':
      return ['ALTER ROLE', 'role'];
    case 'DropRoleStmt':
      return ['DROP ROLE', 'role'];
    case 'AlterDefaultPrivilegesStmt':
      return ['ALTER DEFAULT PRIVILEGES', 'role'];
    case 'ReassignOwnedStmt':
      return ['REASSIGN OWNED', 'role'];
    case 'DropOwnedStmt':
      return ['DROP OWNED', 'role'];
    case 'CreateStmt':
      if (isObj(n.relation) && n.relation.relpersistence === 't') f.write('creates a temporary table');
      return ['CREATE TABLE', 'ddl'];
    case 'CreateTableAsStmt':
      return ['CREATE TABLE AS', 'ddl'];
    case 'CreateFunctionStmt':
      return [n.is_procedure ? 'CREATE PROCEDURE' : 'CREATE FUNCTION', 'ddl'];
    case 'CreatedbStmt':
    case 'DropdbStmt':
    case 'AlterDatabaseStmt':
    case 'AlterDatabaseSetStmt':
    case 'CreateTableSpaceStmt':
    case 'DropTableSpaceStmt':
      f.admin('changes a database or tablespace');
      return [ddlTag(type), 'ddl'];
    case 'CreateExtensionStmt':
    case 'AlterExtensionStmt':
    case 'AlterExtensionContentsStmt':
      return [ddlTag(type), 'ddl'];
  }
  // Every other statement that creates, alters, drops or documents an object is DDL.
  if (
    /^(Create|Alter|Drop|Rename|Comment|SecLabel|Reindex|Cluster|Import|Define|Index|Rule|View|CompositeType)/.test(
      type,
    )
  )
    return [ddlTag(type), 'ddl'];
  // Fail closed: a statement kind not named above needs admin until someone decides otherwise.
  const unknown = `${type || 'an unknown statement'} is not a statement the policy knows`;
  f.write(unknown);
  f.admin(unknown);
  return [ddlTag(type), 'misc'];
}

/** Tags for node types whose name does not spell them; the rest are spelled from the name (`AlterTableStmt` → `ALTER TABLE`). */
const DDL_TAGS: Record<string, string> = {
  IndexStmt: 'CREATE INDEX',
  ViewStmt: 'CREATE VIEW',
  RuleStmt: 'CREATE RULE',
  CreateSeqStmt: 'CREATE SEQUENCE',
  AlterSeqStmt: 'ALTER SEQUENCE',
  CreateTrigStmt: 'CREATE TRIGGER',
  CompositeTypeStmt: 'CREATE TYPE',
  CreateSchemaStmt: 'CREATE SCHEMA',
  CreatedbStmt: 'CREATE DATABASE',
  DropdbStmt: 'DROP DATABASE',
  DropStmt: 'DROP',
  RenameStmt: 'ALTER',
  CommentStmt: 'COMMENT',
};

function ddlTag(type: string): string {
  const known = DDL_TAGS[type];
  if (known !== undefined) return known;
  return type
    .replace(/Stmt$/, '')
    .replace(/([a-z])([A-Z])/g, '$1 $2')
    .toUpperCase();
}

function innerClass(query: unknown): StatementClassName {
  if (!isObj(query)) return 'misc';
  const type = Object.keys(query)[0];
  if (type === 'SelectStmt') return isObj(query.SelectStmt) && query.SelectStmt.intoClause ? 'ddl' : 'read';
  if (type === 'InsertStmt' || type === 'UpdateStmt' || type === 'DeleteStmt' || type === 'MergeStmt') return 'write';
  return 'misc';
}

function copy(n: Obj, f: Findings): [string, StatementClassName] {
  if (n.is_program) f.admin('COPY … PROGRAM runs a server command');
  else if (typeof n.filename === 'string') f.admin('COPY with a server file');
  if (n.is_from) {
    f.write('COPY FROM loads rows');
    return ['COPY', 'write'];
  }
  if (n.is_program) f.write('COPY TO PROGRAM runs a server command');
  else if (typeof n.filename === 'string') f.write('COPY TO writes a server file');
  return ['COPY', n.query ? innerClass(n.query) : 'read'];
}

/** A DefElem option list: is `name` given and not explicitly false? */
function optionOn(options: unknown, name: string): boolean {
  if (!Array.isArray(options)) return false;
  for (const o of options) {
    const d = isObj(o) && isObj(o.DefElem) ? o.DefElem : undefined;
    if (d?.defname !== name) continue;
    return d.arg === undefined || truthy(d.arg) !== false;
  }
  return false;
}

const TRANSACTION_TAGS: Record<string, string> = {
  TRANS_STMT_BEGIN: 'BEGIN',
  TRANS_STMT_START: 'START TRANSACTION',
  TRANS_STMT_COMMIT: 'COMMIT',
  TRANS_STMT_ROLLBACK: 'ROLLBACK',
  TRANS_STMT_SAVEPOINT: 'SAVEPOINT',
  TRANS_STMT_RELEASE: 'RELEASE',
  TRANS_STMT_ROLLBACK_TO: 'ROLLBACK',
  TRANS_STMT_PREPARE: 'PREPARE TRANSACTION',
  TRANS_STMT_COMMIT_PREPARED: 'COMMIT PREPARED',
  TRANS_STMT_ROLLBACK_PREPARED: 'ROLLBACK PREPARED',
};

function transaction(n: Obj, f: Findings): [string, StatementClassName] {
  const kind = String(n.kind);
  if (kind === 'TRANS_STMT_BEGIN' || kind === 'TRANS_STMT_START') readWriteOption(n.options, f, 'BEGIN … READ WRITE');
  return [TRANSACTION_TAGS[kind] ?? 'BEGIN', 'tcl'];
}

/** `transaction_read_only` among transaction options, set to false, is an attempt. */
function readWriteOption(options: unknown, f: Findings, what: string): void {
  if (!Array.isArray(options)) return;
  for (const o of options) {
    const d = isObj(o) && isObj(o.DefElem) ? o.DefElem : undefined;
    if (d?.defname === 'transaction_read_only' && truthy(d.arg) !== true) f.readOnlyChange ??= what;
  }
}

function variableSet(n: Obj, f: Findings): [string, StatementClassName] {
  const kind = String(n.kind);
  const name = typeof n.name === 'string' ? n.name.toLowerCase() : '';
  const reset = kind === 'VAR_RESET' || kind === 'VAR_RESET_ALL';
  const tag = reset ? 'RESET' : 'SET';
  if (kind === 'VAR_RESET_ALL') f.readOnlyChange ??= 'RESET ALL resets default_transaction_read_only';
  else if (name === 'session characteristics')
    readWriteOption(n.args, f, 'SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE');
  else if (name === 'transaction') readWriteOption(n.args, f, 'SET TRANSACTION READ WRITE');
  else if (READ_ONLY_SETTINGS.has(name)) {
    const value = Array.isArray(n.args) && n.args.length === 1 ? truthy(n.args[0]) : undefined;
    if (kind !== 'VAR_SET_VALUE' || value !== true) f.readOnlyChange ??= `${tag} ${name}`;
  }
  const keeps = SCANNER_SETTINGS.get(name);
  if (keeps && !(kind === 'VAR_SET_VALUE' && Array.isArray(n.args) && n.args.length === 1 && keeps(n.args[0])))
    f.scannerChange ??= `${tag} ${name}`;
  if (name === 'role' || name === 'session_authorization') return [tag, 'role'];
  return [tag, 'misc'];
}

/** A constant's truth as Postgres's parse_bool reads it; undefined when not a constant. */
function truthy(node: unknown): boolean | undefined {
  let c = isObj(node) && isObj(node.A_Const) ? node.A_Const : undefined;
  if (!c && isObj(node) && isObj(node.String)) c = { sval: node.String };
  if (!c && isObj(node) && isObj(node.Integer)) c = { ival: node.Integer };
  if (!c && isObj(node) && isObj(node.Boolean)) c = { boolval: node.Boolean };
  if (!c) return undefined;
  if (isObj(c.boolval)) return c.boolval.boolval === true;
  if (isObj(c.ival)) return (c.ival.ival ?? 0) !== 0;
  if (isObj(c.sval) && typeof c.sval.sval === 'string') {
    const word = c.sval.sval.trim().toLowerCase();
    if (TRUE_WORDS.has(word)) return true;
    return false;
  }
  return undefined;
}

/** Walks the whole tree for DML, row locks, functions and WHERE clauses, wherever they sit. */
function walk(node: unknown, f: Findings, top: boolean): void {
  if (Array.isArray(node)) {
    for (const item of node) walk(item, f, false);
    return;
  }
  if (!isObj(node)) return;
  for (const key in node) {
    const value = node[key];
    switch (key) {
      case 'InsertStmt':
      case 'MergeStmt':
        if (!top) f.write(`a data-modifying ${key === 'InsertStmt' ? 'INSERT' : 'MERGE'} inside the statement`);
        break;
      case 'UpdateStmt':
      case 'DeleteStmt': {
        const what = key === 'UpdateStmt' ? 'update' : 'delete';
        if (!top) f.write(`a data-modifying ${what.toUpperCase()} inside the statement`);
        if (isObj(value) && (value.whereClause === undefined || alwaysTrue(value.whereClause))) f.unfiltered ??= what;
        break;
      }
      case 'SelectStmt':
        if (isObj(value) && Array.isArray(value.lockingClause) && value.lockingClause.length > 0)
          f.write('a row lock (SELECT … FOR UPDATE/SHARE)');
        break;
      case 'FuncCall':
        if (isObj(value)) funcCall(value, f);
        break;
    }
    walk(value, f, false);
  }
}

function functionName(call: Obj): string {
  const names = Array.isArray(call.funcname) ? call.funcname : [];
  const last = names.at(-1);
  return isObj(last) && isObj(last.String) && typeof last.String.sval === 'string' ? last.String.sval : '';
}

function funcCall(call: Obj, f: Findings): void {
  const name = functionName(call);
  const write = WRITE_FUNCTIONS.get(name);
  if (write) f.write(write);
  const admin = ADMIN_FUNCTIONS.get(name);
  if (admin) f.admin(admin);
  if (name === 'set_config') {
    const args = Array.isArray(call.args) ? call.args : [];
    const setting = constantText(args[0]);
    // A setting name or value the tree does not show (a parameter, an expression) may be the one.
    if (setting === undefined || READ_ONLY_SETTINGS.has(setting.toLowerCase())) {
      if (setting === undefined || truthy(args[1]) !== true) f.readOnlyChange ??= `set_config('${setting ?? '?'}', …)`;
    }
    const keeps = setting === undefined ? undefined : SCANNER_SETTINGS.get(setting.toLowerCase());
    if (setting === undefined || (keeps !== undefined && !keeps(args[1])))
      f.scannerChange ??= `set_config('${setting ?? '?'}', …)`;
  }
}

function constantText(node: unknown): string | undefined {
  let n = node;
  if (isObj(n) && isObj(n.TypeCast)) n = n.TypeCast.arg;
  const c = isObj(n) && isObj(n.A_Const) ? n.A_Const : undefined;
  return c && isObj(c.sval) && typeof c.sval.sval === 'string' ? c.sval.sval : undefined;
}

/** WHERE clauses that hold for every row, as far as the tree shows: `true`, `1=1`, `x = x`, `NOT false`, `a OR true`. */
function alwaysTrue(node: unknown): boolean {
  return evaluate(node) === true;
}

/**
 * The value of a condition made of constants (and `x = x`), or undefined when it depends on the
 * row. Only definite answers: anything it cannot work out counts as filtering.
 */
function evaluate(node: unknown): boolean | undefined {
  if (!isObj(node)) return undefined;
  if (isObj(node.A_Const)) return node.A_Const.isnull === true ? undefined : truthy(node);
  if (isObj(node.TypeCast)) {
    const arg = node.TypeCast.arg;
    return isObj(arg) && isObj(arg.A_Const) ? truthy(arg) : evaluate(arg);
  }
  if (isObj(node.BoolExpr)) {
    const values = (Array.isArray(node.BoolExpr.args) ? node.BoolExpr.args : []).map(evaluate);
    switch (node.BoolExpr.boolop) {
      case 'NOT_EXPR':
        return values[0] === undefined ? undefined : !values[0];
      case 'OR_EXPR':
        return values.includes(true) ? true : values.length > 0 && values.every((v) => v === false) ? false : undefined;
      case 'AND_EXPR':
        return values.includes(false) ? false : values.length > 0 && values.every((v) => v === true) ? true : undefined;
    }
    return undefined;
  }
  if (isObj(node.BooleanTest)) {
    const v = evaluate(node.BooleanTest.arg);
    if (v === undefined) return undefined;
    const test = node.BooleanTest.booltesttype;
    return test === 'IS_TRUE' || test === 'IS_NOT_FALSE'
      ? v
      : test === 'IS_FALSE' || test === 'IS_NOT_TRUE'
        ? !v
        : undefined;
  }
  if (isObj(node.NullTest)) {
    // `1 IS NOT NULL`: a constant that is not NULL.
    const arg = node.NullTest.arg;
    if (!(isObj(arg) && isObj(arg.A_Const))) return undefined;
    const isNull = arg.A_Const.isnull === true;
    return node.NullTest.nulltesttype === 'IS_NOT_NULL' ? !isNull : isNull;
  }
  if (isObj(node.A_Expr)) return comparison(node.A_Expr);
  return undefined;
}

function comparison(e: Obj): boolean | undefined {
  if (e.kind !== 'AEXPR_OP') return undefined;
  const op = Array.isArray(e.name) && isObj(e.name[0]) && isObj(e.name[0].String) ? e.name[0].String.sval : '';
  if ((op === '=' || op === '<=' || op === '>=') && sameExpression(e.lexpr, e.rexpr)) return true;
  const l = numberOf(e.lexpr);
  const r = numberOf(e.rexpr);
  if (l !== undefined && r !== undefined) {
    if (op === '=') return l === r;
    if (op === '<>' || op === '!=') return l !== r;
    if (op === '<') return l < r;
    if (op === '>') return l > r;
    if (op === '<=') return l <= r;
    if (op === '>=') return l >= r;
    return undefined;
  }
  // Booleans compared: `(1 = 1) = true`.
  const a = evaluate(e.lexpr);
  const b = evaluate(e.rexpr);
  if (a === undefined || b === undefined) return undefined;
  if (op === '=') return a === b;
  if (op === '<>' || op === '!=') return a !== b;
  return undefined;
}

function numberOf(node: unknown): number | undefined {
  const c = isObj(node) && isObj(node.A_Const) ? node.A_Const : undefined;
  if (!c) return undefined;
  if (isObj(c.ival)) return Number(c.ival.ival ?? 0);
  if (isObj(c.fval) && typeof c.fval.fval === 'string') return Number(c.fval.fval);
  return undefined;
}

/** Structural equality ignoring token positions; volatile calls (random()) are never the same twice. */
function sameExpression(a: unknown, b: unknown): boolean {
  if (a === undefined || b === undefined) return false;
  const strip = (k: string, v: unknown) => (k === 'location' ? undefined : v);
  const text = JSON.stringify(a, strip);
  return !text.includes('FuncCall') && text === JSON.stringify(b, strip);
}
