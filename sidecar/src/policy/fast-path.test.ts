/**
 * The fast path (facts from a statement's template) against the full path (every text parsed):
 * the same facts and the same decision on every route, for generated and adversarial statements.
 */
import type { PolicyDocument } from '@byline/api';
import fc from 'fast-check';
import { beforeAll, describe, expect, test } from 'vitest';
import { statementTemplate } from '../sql/template.js';
import { type Analysis, StatementAnalyzer } from './analyzer.js';
import { PolicyEngine } from './engine.js';

const policy: PolicyDocument = {
  version: '1',
  identity: { name: 'agent', namespace: 'ns' },
  routes: [
    { name: 'read', access: 'read', accessSource: 'AgentIdentity ns/agent', guardrails: [], approvals: [] },
    {
      name: 'guarded',
      access: 'readWrite',
      accessSource: 'AgentIdentity ns/agent',
      guardrails: [
        {
          source: 'AgentIdentity ns/agent',
          guardrails: {
            deny: { tables: ['public.payroll*'] },
            requireWhere: ['update', 'delete'],
            requireApproval: { tables: ['audit_*'] },
          },
        },
      ],
      approvals: [],
    },
    {
      name: 'admin-guarded',
      access: 'admin',
      accessSource: 'AgentIdentity ns/agent',
      guardrails: [{ source: 'DatabaseRoute ns/db', guardrails: { deny: { classes: ['ddl', 'role'] } } }],
      approvals: [],
    },
  ],
};
const routes = policy.routes.map((r) => r.name);

let fast: StatementAnalyzer;
let full: StatementAnalyzer;
const engine = new PolicyEngine();
beforeAll(async () => {
  fast = await StatementAnalyzer.create({ cacheSize: 50 });
  full = await StatementAnalyzer.create({ templates: false });
  engine.setPolicy(policy);
});

/** Facts and decisions as plain data, so two analyses compare by value. */
function outcome(analysis: Analysis) {
  return {
    facts: analysis.ok ? analysis.statements.map((s) => ({ ...s })) : analysis.error,
    decisions: routes.map((route) => engine.decideAll(route, analysis, 0).map((d) => ({ ...d }))),
  };
}

/** Fast path against full path; returns whether the fast path answered. */
function same(sql: string): boolean {
  const before = fast.stats.templated;
  const got = outcome(fast.analyze(sql));
  const templated = fast.stats.templated > before;
  expect(got, sql).toEqual(outcome(full.analyze(sql)));
  return templated;
}

describe('adversarial statements decide alike on both paths', () => {
  test.each([
    ['SELECT … INTO', 'SELECT a INTO new_t FROM t WHERE a = 1'],
    ['FOR UPDATE', 'SELECT * FROM t WHERE a = 1 FOR UPDATE'],
    ['FOR SHARE in a subquery', 'SELECT * FROM (SELECT * FROM t WHERE a = 1 FOR SHARE) s'],
    ['nextval', "SELECT nextval('s')"],
    ['setval', "SELECT setval('s', 42)"],
    ['pg_terminate_backend', 'SELECT pg_terminate_backend(1234)'],
    ['dblink_exec', "SELECT dblink_exec('dbname=x', 'DELETE FROM t')"],
    ['set_config of the read-only setting', "SELECT set_config('default_transaction_read_only', 'off', false)"],
    ['set_config of a harmless setting', "SELECT set_config('work_mem', '64MB', false)"],
    ['set_config hidden in a dollar quote', "SELECT set_config($$default_transaction_read_only$$, 'off', true)"],
    ['lo_import', "SELECT lo_import('/etc/passwd')"],
    ['lo_unlink', 'SELECT lo_unlink(16384)'],
    ['advisory lock', 'SELECT pg_advisory_lock(1)'],
    ['CTE holding a DELETE', 'WITH d AS (DELETE FROM t WHERE a = 1 RETURNING *) SELECT * FROM d'],
    ['CTE holding an unfiltered UPDATE', 'WITH u AS (UPDATE t SET a = 2 RETURNING *) SELECT 1'],
    ['keyword in a comment', "SELECT 1 /* ; DELETE FROM t */ FROM t WHERE a = 'x'"],
    ['line comment hiding the rest', 'SELECT 1 -- ; DELETE FROM t\n FROM t WHERE a = 2'],
    ['nested comment', "SELECT /* /* */ DELETE FROM t; */ 1 FROM t WHERE b = 'y'"],
    ['keyword in a dollar quote', 'SELECT $q$; DELETE FROM t; $q$ FROM t'],
    ['keyword in a string', "SELECT '; DELETE FROM payroll' FROM t"],
    ['multiple statements', "SELECT 1 FROM t WHERE a = 1; DELETE FROM t WHERE a = 'x'"],
    ['multiple statements, one unfiltered', 'SELECT 1; DELETE FROM t'],
    ['denied table', 'SELECT salary FROM public.payroll_2026 WHERE id = 7'],
    ['denied table in a subquery', "SELECT * FROM t WHERE id IN (SELECT id FROM public.payroll WHERE n = 'x')"],
    ['approval-gated table', "INSERT INTO audit_log (a) VALUES ('x')"],
    ['DELETE WHERE 1 = 1', 'DELETE FROM t WHERE 1 = 1'],
    ['DELETE WHERE 1 = 2', 'DELETE FROM t WHERE 1 = 2'],
    ["UPDATE WHERE 'on'::bool", "UPDATE t SET a = 1 WHERE 'on'::bool"],
    ['UPDATE WHERE a = a', 'UPDATE t SET a = 1 WHERE a = a'],
    ['UPDATE WHERE a = 5 OR 1 = 1', 'UPDATE t SET a = 1 WHERE a = 5 OR 1 = 1'],
    ['UPDATE WHERE a = 5 AND 1 = 1', 'UPDATE t SET a = 1 WHERE a = 5 AND 1 = 1'],
    ['SET the read-only setting off', "SET default_transaction_read_only = 'off'"],
    ['SET standard_conforming_strings', 'SET standard_conforming_strings = 0'],
    ['EXPLAIN ANALYZE with a literal option', 'EXPLAIN (ANALYZE 1) DELETE FROM t WHERE a = 1'],
    ['COPY from a server file', "COPY t FROM '/tmp/x'"],
    ['typed literal', "SELECT date '2026-01-01' FROM t"],
    ['literal with a subscript', "SELECT '{1,2}'[1] FROM t"],
    ['literal with a field', "SELECT '(1,2)'.f FROM t"],
    ['number with junk', 'SELECT 1abc FROM t'],
    ['number without exponent digits', 'SELECT 1e FROM t'],
    ['hex number', 'SELECT 0x1F FROM t'],
    ['invalid Unicode escape', "SELECT E'\\u12' FROM t"],
    ['invalid bit string', "SELECT B'102' FROM t"],
    ['string continuation', "SELECT 'a'\n'b' FROM t"],
    ['unterminated string', "SELECT 'abc FROM t"],
    ['unterminated comment', 'SELECT 1 /* FROM t'],
    ['literal glued to a dollar quote', 'SELECT 1$$x$$'],
    ['client parameter next to literals', 'SELECT $1 FROM t WHERE a = 2'],
    ['syntax error elsewhere', 'SELEC 1 FROM t WHERE a = 2'],
    ['empty', ''],
    ['only a comment', '/* nothing */'],
  ])('%s', (_, sql) => {
    same(sql);
  });

  test('the fast path answers the pgbench statements, and with the same shared decision', () => {
    const texts = [1, 2, 3].map((i) => `SELECT abalance FROM pgbench_accounts WHERE aid = ${i * 7919};`);
    expect(texts.map(same)).toEqual([true, true, true]);
    const first = fast.analyze(texts[0]!);
    expect(fast.analyze(texts[1]!)).toBe(first);
    expect(same('UPDATE pgbench_accounts SET abalance = abalance + -42 WHERE aid = 1234;')).toBe(true);
  });

  test('a template is not used where the literals decide the facts', () => {
    for (const sql of [
      'DELETE FROM t WHERE 1 = 1',
      "SELECT set_config('work_mem', '64MB', false)",
      "SET default_transaction_read_only = 'off'",
      'UPDATE t SET a = 1 WHERE a = 5 OR 1 = 1',
    ])
      expect(same(sql), sql).toBe(false);
  });

  test('templates replace literals and comments only', () => {
    expect(statementTemplate("SELECT a/**/b FROM t WHERE x = 'y' AND z = $$q$$ -- c")).toEqual({
      text: 'SELECT a b FROM t WHERE x =  $100000  AND z =  $100001   ',
      literals: 2,
    });
    expect(statementTemplate("SELECT E'x'")).toBeNull();
    expect(statementTemplate("SELECT 'a'[1]")).toBeNull();
    expect(statementTemplate('SELECT 1_000')).toBeNull();
  });
});

// Pieces that make statements of every kind the policy tells apart, with literals of every kind.
const literal = fc.constantFrom(
  '1',
  '0',
  '42',
  '1.5',
  '.5',
  '1e3',
  '1e',
  '1abc',
  '0x1F',
  '1_000',
  "'on'",
  "'off'",
  "'x'",
  "'it''s'",
  "'default_transaction_read_only'",
  "'standard_conforming_strings'",
  "'UTF8'",
  "'t'",
  "E'\\x41'",
  "E'\\u12'",
  "B'101'",
  "B'102'",
  "X'1F'",
  "N'x'",
  "U&'\\0041'",
  '$$x$$',
  '$t$off$t$',
  "'a'\n'b'",
  "'{1}'",
  '$1',
  'true',
  'NULL',
);
const column = fc.constantFrom('a', 'b', 'aid', 'A', '"a"');
const table = fc.constantFrom('t', 'public.payroll', 'payroll_x', 'public.payroll_2026', 'audit_log', 's.t', '"T"');
const comment = fc.constantFrom(' ', ' ', ' ', '/* c */', '/* ; DELETE FROM t */', '-- x\n', '/* /* n */ */', '\n');
const operand = fc.oneof(literal, column);
const op = fc.constantFrom('=', '<>', '<', '>=', '+', '::int =');
const comparison = fc.tuple(operand, op, operand).map(([l, o, r]) => `${l} ${o} ${r}`);
const condition = fc.oneof(
  comparison,
  fc.tuple(comparison, fc.constantFrom('AND', 'OR'), comparison).map((p) => p.join(' ')),
  fc.constantFrom('true', 'NOT false', 'a = a', "'on'::bool", '1 IS NOT NULL'),
  operand.map((o) => `${o}::bool`),
);
const where = fc.option(
  condition.map((c) => ` WHERE ${c}`),
  { nil: '' },
);
const fn = fc.constantFrom(
  'nextval',
  'setval',
  'lower',
  'count',
  'set_config',
  'pg_terminate_backend',
  'dblink_exec',
  'lo_import',
  'lo_unlink',
  'pg_advisory_lock',
  'pg_read_file',
  'coalesce',
);
const call = fc
  .tuple(fn, fc.array(operand, { minLength: 1, maxLength: 3 }))
  .map(([f, args]) => `${f}(${args.join(', ')})`);
const target = fc.oneof(column, literal, call, fc.constant('*'));
const select = fc
  .tuple(
    fc.array(target, { minLength: 1, maxLength: 3 }),
    fc.option(table, { nil: null }),
    where,
    fc.constantFrom('', '', ' FOR UPDATE', ' FOR SHARE', ' LIMIT 5', ' ORDER BY 1', ' INTO TEMP x'),
  )
  .map(([ts, t, w, tail]) => `SELECT ${ts.join(', ')}${t === null ? '' : ` FROM ${t}${w}`}${tail}`);
const dml = fc.oneof(
  fc.tuple(table, operand, where).map(([t, v, w]) => `UPDATE ${t} SET a = ${v}${w}`),
  fc.tuple(table, where).map(([t, w]) => `DELETE FROM ${t}${w}`),
  fc
    .tuple(table, fc.array(operand, { minLength: 1, maxLength: 2 }))
    .map(([t, vs]) => `INSERT INTO ${t} VALUES (${vs.join(', ')})`),
);
const other = fc.oneof(
  fc.tuple(dml).map(([d]) => `WITH w AS (${d} RETURNING *) SELECT * FROM w`),
  fc
    .tuple(fc.constantFrom('default_transaction_read_only', 'work_mem', 'standard_conforming_strings'), literal)
    .map(([n, v]) => `SET ${n} = ${v}`),
  fc.tuple(literal, dml).map(([v, d]) => `EXPLAIN (ANALYZE ${v}) ${d}`),
  literal.map((v) => `COPY t FROM ${v}`),
  fc.constantFrom('BEGIN READ WRITE', 'COMMIT', 'SHOW work_mem', 'DROP TABLE t'),
);
const statement = fc.oneof(select, select, dml, other);

/** Comments and whitespace between tokens, where a client (or sqlcommenter) may put them. */
const withComments = fc
  .tuple(statement, fc.array(comment, { minLength: 8, maxLength: 8 }))
  .map(([sql, gaps]) => sql.split(' ').reduce((out, word, i) => (i === 0 ? word : `${out}${gaps[i % 8]}${word}`), ''));

const script = fc
  .array(withComments, { minLength: 1, maxLength: 3 })
  .chain((stmts) => fc.constantFrom(';', ';\n', '; ').map((sep) => stmts.join(sep)));

test('generated statements: the fast path decides as the full path does', () => {
  let templated = 0;
  let runs = 0;
  fc.assert(
    fc.property(script, (sql) => {
      runs++;
      if (same(sql)) templated++;
    }),
    { numRuns: 3000 },
  );
  // The comparison means something only if the fast path answered a good share of them.
  expect(templated / runs).toBeGreaterThan(0.2);
});
