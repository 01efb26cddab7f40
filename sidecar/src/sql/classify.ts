/**
 * Command and class of one statement from its leading keywords, on the proxy's forward path:
 * no regex, no parse tree, no allocation beyond the result. It reads past the first words only
 * where the class depends on it (WITH lists, SELECT ... INTO, COPY's direction, EXPLAIN ANALYZE).
 */
import type { StatementClassName } from '@byline/api';
import * as tok from './tokens.js';

export interface StatementClassification {
  /** Postgres's command tag name, upper case (e.g. `SELECT`, `CREATE TABLE`); null when unknown or empty. */
  command: string | null;
  class: StatementClassName;
}

const OPEN = 40;
const CLOSE = 41;
const COMMA = 44;
const DOT = 46;
const SEMI = 59;

/** Classifies one statement, scanned under the session's `flags` (tokenizer.ts). */
export function classify(sql: string, flags = 0): StatementClassification {
  tok.open(sql, flags);
  tok.next();
  const result = statement();
  tok.close();
  return result;
}

function result(command: string | null, cls: StatementClassName): StatementClassification {
  return { command, class: cls };
}

/** Classifies the statement whose first token is current. */
function statement(): StatementClassification {
  if (tok.kind === tok.PUNCT) return tok.isPunct(OPEN) ? result('SELECT', 'read') : result(null, 'misc');
  if (tok.kind !== tok.WORD) return result(null, 'misc');
  switch (tok.firstChar() | 0x20) {
    case 0x61: // a
      if (tok.is('alter')) return ddl(ALTER);
      if (tok.is('analyze') || tok.is('analyse')) return result('ANALYZE', 'misc');
      if (tok.is('abort')) return result('ROLLBACK', 'tcl');
      break;
    case 0x62: // b
      if (tok.is('begin')) return result('BEGIN', 'tcl');
      break;
    case 0x63: // c
      if (tok.is('create')) return ddl(CREATE);
      if (tok.is('commit')) return prepared('COMMIT', 'COMMIT PREPARED');
      if (tok.is('copy')) return copy();
      if (tok.is('call')) return result('CALL', 'misc');
      if (tok.is('close')) return result(nextIs('all') ? 'CLOSE CURSOR ALL' : 'CLOSE CURSOR', 'misc');
      if (tok.is('comment')) return result('COMMENT', 'ddl');
      if (tok.is('cluster')) return result('CLUSTER', 'ddl');
      if (tok.is('checkpoint')) return result('CHECKPOINT', 'misc');
      break;
    case 0x64: // d
      if (tok.is('delete')) return result('DELETE', 'write');
      if (tok.is('drop')) return ddl(DROP);
      if (tok.is('do')) return result('DO', 'misc');
      if (tok.is('deallocate')) return deallocate();
      if (tok.is('declare')) return result('DECLARE CURSOR', 'misc');
      if (tok.is('discard')) return discard();
      break;
    case 0x65: // e
      if (tok.is('explain')) return explain();
      if (tok.is('execute')) return result('EXECUTE', 'misc');
      if (tok.is('end')) return result('COMMIT', 'tcl');
      break;
    case 0x66: // f
      if (tok.is('fetch')) return result('FETCH', 'read');
      break;
    case 0x67: // g
      if (tok.is('grant')) return result('GRANT', 'role');
      break;
    case 0x69: // i
      if (tok.is('insert')) return result('INSERT', 'write');
      if (tok.is('import')) return result('IMPORT FOREIGN SCHEMA', 'ddl');
      break;
    case 0x6c: // l
      if (tok.is('lock')) return result('LOCK TABLE', 'misc');
      if (tok.is('listen')) return result('LISTEN', 'misc');
      if (tok.is('load')) return result('LOAD', 'misc');
      break;
    case 0x6d: // m
      if (tok.is('merge')) return result('MERGE', 'write');
      if (tok.is('move')) return result('MOVE', 'misc');
      break;
    case 0x6e: // n
      if (tok.is('notify')) return result('NOTIFY', 'misc');
      break;
    case 0x70: // p
      if (tok.is('prepare'))
        return nextIs('transaction') ? result('PREPARE TRANSACTION', 'tcl') : result('PREPARE', 'misc');
      break;
    case 0x72: // r
      if (tok.is('rollback')) return prepared('ROLLBACK', 'ROLLBACK PREPARED');
      if (tok.is('release')) return result('RELEASE', 'tcl');
      if (tok.is('reset')) return reset();
      if (tok.is('revoke')) return result('REVOKE', 'role');
      if (tok.is('reindex')) return result('REINDEX', 'ddl');
      // REFRESH rewrites a materialized view's rows: data changes, the schema does not.
      if (tok.is('refresh')) return result('REFRESH MATERIALIZED VIEW', 'write');
      // Ownership of a role's objects moves wholesale: an authorization change.
      if (tok.is('reassign')) return result('REASSIGN OWNED', 'role');
      break;
    case 0x73: // s
      if (tok.is('select')) return select();
      if (tok.is('set')) return set();
      if (tok.is('show')) return result('SHOW', 'read');
      if (tok.is('savepoint')) return result('SAVEPOINT', 'tcl');
      if (tok.is('start')) return result('START TRANSACTION', 'tcl');
      if (tok.is('security')) return result('SECURITY LABEL', 'ddl');
      break;
    case 0x74: // t
      if (tok.is('table')) return result('SELECT', 'read');
      if (tok.is('truncate')) return result('TRUNCATE TABLE', 'write');
      break;
    case 0x75: // u
      if (tok.is('update')) return result('UPDATE', 'write');
      if (tok.is('unlisten')) return result('UNLISTEN', 'misc');
      break;
    case 0x76: // v
      if (tok.is('values')) return result('SELECT', 'read');
      if (tok.is('vacuum')) return result('VACUUM', 'misc');
      break;
    case 0x77: // w
      if (tok.is('with')) return withQuery();
      break;
  }
  return result(null, 'misc');
}

/** Advances one token and tells whether it is the keyword. */
function nextIs(lower: string): boolean {
  tok.next();
  return tok.is(lower);
}

function prepared(plain: string, twoPhase: string): StatementClassification {
  return result(nextIs('prepared') ? twoPhase : plain, 'tcl');
}

function deallocate(): StatementClassification {
  if (nextIs('prepare')) tok.next();
  return result(tok.is('all') ? 'DEALLOCATE ALL' : 'DEALLOCATE', 'misc');
}

function discard(): StatementClassification {
  tok.next();
  if (tok.is('all')) return result('DISCARD ALL', 'misc');
  if (tok.is('plans')) return result('DISCARD PLANS', 'misc');
  if (tok.is('sequences')) return result('DISCARD SEQUENCES', 'misc');
  if (tok.is('temp') || tok.is('temporary')) return result('DISCARD TEMP', 'misc');
  return result('DISCARD', 'misc');
}

/** SET ROLE and SET SESSION AUTHORIZATION change who the session acts as. */
function set(): StatementClassification {
  tok.next();
  if (tok.is('local') || tok.is('session')) {
    const at = tok.mark();
    if (tok.is('session') && nextIs('authorization')) return result('SET', 'role');
    tok.rewind(at);
    tok.next();
  }
  if (tok.is('role') || tok.is('session_authorization')) return result('SET', 'role');
  if (tok.is('session') && nextIs('authorization')) return result('SET', 'role');
  if (tok.is('constraints')) return result('SET CONSTRAINTS', 'misc');
  return result('SET', 'misc');
}

function reset(): StatementClassification {
  tok.next();
  if (tok.is('role') || tok.is('session_authorization')) return result('RESET', 'role');
  if (tok.is('session') && nextIs('authorization')) return result('RESET', 'role');
  return result('RESET', 'misc');
}

/** SELECT, or SELECT ... INTO, which creates a table. The SELECT keyword is current. */
function select(): StatementClassification {
  return selectCreatesTable() ? result('SELECT INTO', 'ddl') : result('SELECT', 'read');
}

/** Words that end a SELECT's target list, after which INTO can no longer appear. */
const AFTER_TARGETS = [
  'from',
  'where',
  'group',
  'having',
  'window',
  'order',
  'limit',
  'offset',
  'fetch',
  'for',
  'union',
  'intersect',
  'except',
];

/** Looks for INTO at paren depth 0 in the target list (after `AS` or `.` it is a column name). */
function selectCreatesTable(): boolean {
  let label = false;
  for (;;) {
    const k = tok.next();
    if (k === tok.EOF) return false;
    if (k === tok.PUNCT) {
      const c = tok.firstChar();
      if (c === OPEN) tok.skipParens();
      else if (c === SEMI) return false;
      label = c === DOT;
      continue;
    }
    if (k === tok.WORD && !label) {
      if (tok.is('into')) return true;
      for (const word of AFTER_TARGETS) if (tok.is(word)) return false;
    }
    label = tok.is('as');
  }
}

/**
 * WITH [RECURSIVE] name [(cols)] AS [[NOT] MATERIALIZED] (body) [SEARCH ...] [CYCLE ...], ... main:
 * classified by the main statement, and a write if any CTE body is data-modifying.
 */
function withQuery(): StatementClassification {
  tok.next();
  if (tok.is('recursive')) tok.next();
  let writes = false;
  for (;;) {
    if (tok.kind !== tok.WORD && tok.kind !== tok.OTHER) return result(null, 'misc');
    tok.next();
    if (tok.isPunct(OPEN)) {
      tok.skipParens();
      tok.next();
    }
    if (!tok.is('as')) return result(null, 'misc');
    tok.next();
    if (tok.is('not')) tok.next();
    if (tok.is('materialized')) tok.next();
    if (!tok.isPunct(OPEN)) return result(null, 'misc');
    const at = tok.mark();
    do {
      tok.next();
    } while (tok.isPunct(OPEN));
    if (tok.is('insert') || tok.is('update') || tok.is('delete') || tok.is('merge')) writes = true;
    tok.rewind(at);
    tok.skipParens();
    tok.next();
    if (tok.is('search')) skipPast('set');
    if (tok.is('cycle')) skipPast('using');
    if (!tok.isPunct(COMMA)) break;
    tok.next();
  }
  const main = mainStatement();
  return writes && main.class === 'read' ? result(main.command, 'write') : main;
}

/** Skips to the keyword, then past it and the column name that follows it. */
function skipPast(lower: string): void {
  while (tok.kind !== tok.EOF && !tok.is(lower)) tok.next();
  tok.next();
  tok.next();
}

/** The statement after a WITH list: only these can follow one. */
function mainStatement(): StatementClassification {
  if (tok.is('select')) return select();
  if (tok.is('insert')) return result('INSERT', 'write');
  if (tok.is('update')) return result('UPDATE', 'write');
  if (tok.is('delete')) return result('DELETE', 'write');
  if (tok.is('merge')) return result('MERGE', 'write');
  if (tok.is('values') || tok.is('table') || tok.isPunct(OPEN)) return result('SELECT', 'read');
  return result(null, 'misc');
}

/** COPY ... FROM loads rows (write); COPY ... TO exports them (read). */
function copy(): StatementClassification {
  for (;;) {
    const k = tok.next();
    if (k === tok.EOF || tok.isPunct(SEMI)) return result('COPY', 'misc');
    if (tok.isPunct(OPEN)) tok.skipParens();
    else if (tok.is('from')) return result('COPY', 'write');
    else if (tok.is('to')) return result('COPY', 'read');
  }
}

/**
 * EXPLAIN only plans, so it reads; EXPLAIN ANALYZE runs the statement, so it has that statement's
 * class. Options come either as `(ANALYZE [value], ...)` or as the older `ANALYZE VERBOSE` words.
 */
function explain(): StatementClassification {
  let analyze = false;
  tok.next();
  if (tok.isPunct(OPEN)) {
    tok.next();
    while (tok.kind !== tok.EOF && !tok.isPunct(CLOSE)) {
      const isAnalyze = tok.is('analyze') || tok.is('analyse');
      tok.next();
      // The option's value, if any: tokens up to the next `,` or `)`.
      let values = 0;
      let falseValue = false;
      while (tok.kind !== tok.EOF && !tok.isPunct(COMMA) && !tok.isPunct(CLOSE)) {
        values++;
        falseValue = tok.isFalseValue();
        if (tok.isPunct(OPEN)) tok.skipParens();
        tok.next();
      }
      if (isAnalyze) analyze = !(values === 1 && falseValue);
      if (tok.isPunct(COMMA)) tok.next();
    }
    tok.next();
  } else {
    while (tok.is('analyze') || tok.is('analyse') || tok.is('verbose')) {
      if (!tok.is('verbose')) analyze = true;
      tok.next();
    }
  }
  if (!analyze) return result('EXPLAIN', 'read');
  return result('EXPLAIN', statement().class);
}

// CREATE / ALTER / DROP: the object words that follow the verb give the tag (`CREATE INDEX`).
const CREATE = 0;
const ALTER = 1;
const DROP = 2;

interface ObjectKind {
  /** Lower-case words to match, longest phrases before their prefixes. */
  words: string[];
  /** Tag names per verb, indexed by CREATE/ALTER/DROP. */
  tags: [string, string, string];
  class: StatementClassName;
}

function kindOf(phrase: string, cls: StatementClassName = 'ddl', tag = phrase.toUpperCase()): ObjectKind {
  return {
    words: phrase.split(' '),
    tags: [`CREATE ${tag}`, `ALTER ${tag}`, `DROP ${tag}`],
    class: cls,
  };
}

const OBJECT_KINDS: ObjectKind[] = [
  kindOf('table'),
  kindOf('index'),
  kindOf('view'),
  kindOf('materialized view'),
  kindOf('sequence'),
  kindOf('function'),
  kindOf('procedure'),
  kindOf('routine'),
  kindOf('trigger'),
  kindOf('event trigger'),
  kindOf('schema'),
  kindOf('database'),
  kindOf('extension'),
  kindOf('type'),
  kindOf('domain'),
  kindOf('role', 'role'),
  kindOf('user mapping'),
  // Postgres tags CREATE USER and CREATE GROUP as CREATE ROLE.
  kindOf('user', 'role', 'ROLE'),
  kindOf('group', 'role', 'ROLE'),
  kindOf('policy'),
  kindOf('rule'),
  kindOf('aggregate'),
  kindOf('operator class'),
  kindOf('operator family'),
  kindOf('operator'),
  kindOf('collation'),
  kindOf('conversion'),
  kindOf('cast'),
  kindOf('language'),
  kindOf('publication'),
  kindOf('subscription'),
  kindOf('statistics'),
  kindOf('tablespace'),
  kindOf('transform'),
  kindOf('server'),
  kindOf('foreign table'),
  kindOf('foreign data wrapper'),
  kindOf('text search parser'),
  kindOf('text search dictionary'),
  kindOf('text search template'),
  kindOf('text search configuration'),
  kindOf('access method'),
  kindOf('default privileges', 'role'),
  kindOf('large object'),
  // DROP OWNED BY role: drops a role's objects and revokes its grants, an authorization change.
  kindOf('owned', 'role'),
  // ALTER SYSTEM edits server configuration, like SET does for the session.
  kindOf('system', 'misc'),
];

/** Words between CREATE and the object kind that do not change the tag. */
const CREATE_MODIFIERS = [
  'or',
  'replace',
  'temp',
  'temporary',
  'local',
  'global',
  'unlogged',
  'unique',
  'recursive',
  'trusted',
  'procedural',
  'constraint',
];
const VERBS = ['CREATE', 'ALTER', 'DROP'];

function ddl(verb: number): StatementClassification {
  tok.next();
  if (verb === CREATE) {
    while (isCreateModifier()) tok.next();
  }
  const object = objectKind();
  if (object === undefined) return result(VERBS[verb] ?? null, 'ddl');
  if (verb === CREATE && object.words[0] === 'table' && tableAs()) return result('CREATE TABLE AS', 'ddl');
  return result(object.tags[verb] ?? null, object.class);
}

function isCreateModifier(): boolean {
  if (tok.is('default')) {
    // DEFAULT before CONVERSION is a modifier; ALTER DEFAULT PRIVILEGES is never reached here.
    const at = tok.mark();
    const conversion = nextIs('conversion');
    tok.rewind(at);
    return conversion;
  }
  for (const word of CREATE_MODIFIERS) if (tok.is(word)) return true;
  return false;
}

function objectKind(): ObjectKind | undefined {
  const at = tok.mark();
  for (const object of OBJECT_KINDS) {
    if (!tok.is(object.words[0] ?? '')) continue;
    let matched = true;
    for (let k = 1; k < object.words.length && matched; k++) matched = nextIs(object.words[k] ?? '');
    if (matched) return object;
    tok.rewind(at);
  }
  return undefined;
}

/** CREATE TABLE ... AS (CREATE TABLE AS): an `AS` outside the column list. */
function tableAs(): boolean {
  for (;;) {
    const k = tok.next();
    if (k === tok.EOF || tok.isPunct(SEMI)) return false;
    if (tok.isPunct(OPEN)) tok.skipParens();
    else if (tok.is('as')) return true;
  }
}
