import type { PolicyApproval, PolicyDocument, PolicyRoute } from '@byline/api';
import { beforeAll, describe, expect, test } from 'vitest';
import { StatementAnalyzer } from './analyzer.js';
import { denialResponse } from './denial.js';
import { type Decision, PolicyEngine } from './engine.js';
import { tableMatches } from './glob.js';

const IDENTITY = 'AgentIdentity payments/billing-reconciler';
const ROUTE_DEFAULTS = 'DatabaseRoute payments/orders-db';
const T0 = Date.parse('2026-12-06T12:00:00Z');

let analyzer: StatementAnalyzer;
beforeAll(async () => {
  analyzer = await StatementAnalyzer.create();
});

function policy(route: Partial<PolicyRoute> = {}): PolicyEngine {
  const engine = new PolicyEngine();
  engine.setPolicy({
    version: '7',
    identity: { name: 'billing-reconciler', namespace: 'payments' },
    routes: [
      { name: 'orders-db', access: 'readWrite', accessSource: IDENTITY, guardrails: [], approvals: [], ...route },
    ],
  } satisfies PolicyDocument);
  return engine;
}

function decide(engine: PolicyEngine, sql: string, now = T0, route = 'orders-db'): Decision {
  const decisions = engine.decideAll(route, analyzer.analyze(sql), now);
  return decisions.find((d) => !d.allow) ?? decisions[decisions.length - 1]!;
}

const approval = (over: Partial<PolicyApproval> = {}): PolicyApproval => ({
  name: 'migrate-2026-12',
  scope: { classes: ['ddl'] },
  approvedBy: 'alice@example.com',
  reason: 'add the invoices index',
  ticket: 'OPS-42',
  expiresAt: new Date(T0 + 3_600_000).toISOString(),
  ...over,
});

describe('access levels', () => {
  test('an allowed statement names the access rule that allowed it', () => {
    const d = decide(policy(), 'UPDATE invoices SET paid = true WHERE id = 1');
    expect(d).toEqual({
      allow: true,
      rule: `${IDENTITY} routes[orders-db].access=readWrite`,
      approval: null,
      message: null,
      hint: null,
    });
  });

  test('read refuses writes, naming the rule and why', () => {
    const d = decide(policy({ access: 'read' }), 'WITH d AS (DELETE FROM t WHERE id = 1 RETURNING *) SELECT * FROM d');
    expect(d.allow).toBe(false);
    expect(d.rule).toBe(`${IDENTITY} routes[orders-db].access=read`);
    expect(d.message).toBe(
      `byline: SELECT is denied for billing-reconciler by ${IDENTITY} routes[orders-db].access=read (a write statement)`,
    );
  });

  test('read refuses turning read-only off, even in a harmless-looking SELECT', () => {
    const d = decide(policy({ access: 'read' }), "SELECT set_config('default_transaction_read_only', 'off', false)");
    expect(d.allow).toBe(false);
    expect(d.message).toMatch(/would end read-only mode/);
  });

  test('read allows reads, transaction control and harmless settings', () => {
    const engine = policy({ access: 'read' });
    for (const sql of ['SELECT * FROM t', 'BEGIN READ ONLY', 'COMMIT', "SET application_name = 'x'", 'SHOW work_mem'])
      expect(decide(engine, sql).allow, sql).toBe(true);
  });

  test('readWrite refuses DDL, roles and admin-only operations; admin allows them', () => {
    const rw = policy();
    const admin = policy({ access: 'admin' });
    for (const sql of [
      'CREATE TABLE x (a int)',
      'GRANT SELECT ON t TO bob',
      'DO $$ BEGIN END $$',
      "COPY t TO PROGRAM 'cat'",
    ]) {
      expect(decide(rw, sql).allow, sql).toBe(false);
      expect(decide(admin, sql).allow, sql).toBe(true);
    }
    expect(decide(rw, 'CREATE TABLE x (a int)').message).toMatch(/a ddl statement needs admin/);
  });
});

test('turning standard_conforming_strings off is refused unless admin without guardrails', () => {
  // With it off, `SELECT 'x\\''; DELETE …` reads as one SELECT to the parser and as a DELETE to the server.
  const sql = 'SET standard_conforming_strings = off';
  expect(decide(policy(), sql).message).toMatch(/would make byline misread the statements after it/);
  expect(decide(policy({ access: 'admin' }), sql).allow).toBe(true);
  const guarded = policy({
    access: 'admin',
    guardrails: [{ source: IDENTITY, guardrails: { requireWhere: ['delete'] } }],
  });
  expect(decide(guarded, sql).allow).toBe(false);
});

describe('guardrails', () => {
  test('requireWhere: the message names the rule exactly', () => {
    const engine = policy({ guardrails: [{ source: IDENTITY, guardrails: { requireWhere: ['delete'] } }] });
    const d = decide(engine, 'DELETE FROM invoices WHERE 1 = 1');
    expect(d.message).toBe(
      `byline: DELETE without WHERE is denied for billing-reconciler by ${IDENTITY} guardrails.requireWhere`,
    );
    expect(d.rule).toBe(`${IDENTITY} guardrails.requireWhere`);
    expect(decide(engine, 'DELETE FROM invoices WHERE id = 3').allow).toBe(true);
    expect(decide(engine, 'UPDATE invoices SET paid = true').allow).toBe(true);
  });

  test('deny.tables matches globs in CTEs and subqueries, qualified or not', () => {
    const engine = policy({
      guardrails: [{ source: IDENTITY, guardrails: { deny: { tables: ['public.payroll*'] } } }],
    });
    for (const sql of [
      'SELECT * FROM payroll_2026',
      'SELECT * FROM public.payroll',
      'WITH p AS (SELECT * FROM public.payroll_q1) SELECT * FROM p',
      'SELECT * FROM users WHERE id IN (SELECT user_id FROM "public".payroll)',
    ]) {
      const d = decide(engine, sql);
      expect(d.allow, sql).toBe(false);
      expect(d.rule).toBe(`${IDENTITY} guardrails.deny.tables`);
    }
    expect(decide(engine, 'SELECT * FROM hr.payroll').allow).toBe(true);
    expect(decide(engine, 'SELECT * FROM payments').allow).toBe(true);
  });

  test("the DatabaseRoute's defaults tighten: a denial there holds whatever the identity says", () => {
    const engine = policy({
      access: 'admin',
      guardrails: [
        { source: ROUTE_DEFAULTS, guardrails: { deny: { classes: ['role'] } } },
        { source: IDENTITY, guardrails: {} },
      ],
    });
    const d = decide(engine, 'GRANT ALL ON t TO mallory');
    expect(d.allow).toBe(false);
    expect(d.rule).toBe(`${ROUTE_DEFAULTS} guardrails.deny.classes`);
  });
});

describe('approvals', () => {
  const gated = (approvals: PolicyApproval[] = []) =>
    policy({
      access: 'admin',
      guardrails: [{ source: IDENTITY, guardrails: { requireApproval: { classes: ['ddl'], tables: ['billing.*'] } } }],
      approvals,
    });

  test('without an approval the statement is refused with a hint saying how to ask', () => {
    const d = decide(gated(), 'CREATE INDEX ON public.invoices (paid)');
    expect(d.allow).toBe(false);
    expect(d.rule).toBe(`${IDENTITY} guardrails.requireApproval`);
    expect(d.message).toMatch(/needs an approval .* \(ddl\); none is active/);
    expect(d.hint).toContain(
      'byline approval request --namespace payments --identity billing-reconciler --route orders-db --scope ddl --reason',
    );
  });

  test('an active approval unlocks it, and the decision names the approval', () => {
    const d = decide(gated([approval()]), 'CREATE INDEX ON public.invoices (paid)');
    expect(d.allow).toBe(true);
    expect(d.rule).toBe(`${IDENTITY} guardrails.requireApproval`);
    expect(d.approval?.name).toBe('migrate-2026-12');
  });

  test('it stops counting at expiresAt by the caller’s clock, even with the decision cached', () => {
    const engine = gated([approval()]);
    const sql = 'CREATE INDEX ON public.invoices (paid)';
    expect(decide(engine, sql, T0).allow).toBe(true);
    expect(decide(engine, sql, T0 + 3_599_999).allow).toBe(true);
    expect(decide(engine, sql, T0 + 3_600_000).allow).toBe(false);
  });

  test('one approval must cover every gated class and table', () => {
    const engine = gated([approval({ scope: { classes: ['ddl'] } })]);
    const d = decide(engine, 'ALTER TABLE billing.invoices ADD COLUMN note text');
    expect(d.allow).toBe(false);
    expect(d.hint).toContain('--scope ddl --table billing.invoices --reason');
    const both = gated([approval({ scope: { classes: ['ddl'], tables: ['billing.inv*'] } })]);
    expect(decide(both, 'ALTER TABLE billing.invoices ADD COLUMN note text').allow).toBe(true);
  });

  test('an approval never unlocks a deny rule or more than the access level', () => {
    const denied = policy({
      access: 'admin',
      guardrails: [
        { source: IDENTITY, guardrails: { deny: { classes: ['ddl'] }, requireApproval: { classes: ['ddl'] } } },
      ],
      approvals: [approval()],
    });
    expect(decide(denied, 'DROP TABLE invoices').rule).toBe(`${IDENTITY} guardrails.deny.classes`);
    const readOnly = policy({
      access: 'read',
      guardrails: [{ source: IDENTITY, guardrails: { requireApproval: { classes: ['ddl'] } } }],
      approvals: [approval()],
    });
    expect(decide(readOnly, 'DROP TABLE invoices').rule).toBe(`${IDENTITY} routes[orders-db].access=read`);
  });
});

describe('failing closed', () => {
  test('no policy yet: everything is refused', () => {
    const d = decide(new PolicyEngine(), 'SELECT 1');
    expect(d.allow).toBe(false);
    expect(d.message).toMatch(/no policy yet/);
  });

  test('a route the policy does not list is refused', () => {
    const d = decide(policy(), 'SELECT 1', T0, 'other-db');
    expect(d.allow).toBe(false);
    expect(d.message).toMatch(/route "other-db" is not among the routes of billing-reconciler/);
  });

  test('text the parser cannot read passes only for admin without guardrails', () => {
    expect(decide(policy({ access: 'admin' }), 'FROBNICATE everything').allow).toBe(true);
    expect(decide(policy(), 'FROBNICATE everything').message).toMatch(/does not parse.*cannot authorize/);
    const guarded = policy({
      access: 'admin',
      guardrails: [{ source: IDENTITY, guardrails: { requireWhere: ['delete'] } }],
    });
    expect(decide(guarded, 'FROBNICATE everything').allow).toBe(false);
  });

  test('one denied statement in a Query is reported among its decisions', () => {
    const decisions = policy({ access: 'read' }).decideAll(
      'orders-db',
      analyzer.analyze('SELECT 1; DELETE FROM t'),
      T0,
    );
    expect(decisions.map((d) => d.allow)).toEqual([true, false]);
  });
});

describe('caching', () => {
  test('the same statement gets the same decision object; a new policy decides afresh', () => {
    const engine = policy();
    const facts = analyzer.analyze('CREATE TABLE cache_probe (a int)');
    if (!facts.ok) throw new Error(facts.error);
    const first = engine.decide('orders-db', facts.statements[0]!, T0);
    expect(engine.decide('orders-db', facts.statements[0]!, T0)).toBe(first);
    expect(first.allow).toBe(false);
    engine.setPolicy({ ...engine.document!, routes: [{ ...engine.document!.routes[0]!, access: 'admin' }] });
    expect(engine.decide('orders-db', facts.statements[0]!, T0).allow).toBe(true);
  });
});

describe('the denial on the wire', () => {
  test('an ErrorResponse with severity ERROR, SQLSTATE 42501, the message and the hint', () => {
    const d = decide(policy({ access: 'read' }), 'DELETE FROM t WHERE id = 1');
    const bytes = denialResponse({ ...d, hint: 'ask\0someone' });
    expect(String.fromCharCode(bytes[0]!)).toBe('E');
    expect(bytes.readInt32BE(1)).toBe(bytes.length - 1);
    const fields = bytes
      .subarray(5, bytes.length - 2)
      .toString('utf8')
      .split('\0');
    expect(fields).toEqual(['SERROR', 'VERROR', 'C42501', `M${d.message}`, 'Hask someone']);
  });
});

describe('table patterns', () => {
  test.each([
    ['public.payroll*', 'public.payroll_2026', true],
    ['public.payroll*', 'payroll', true],
    ['public.payroll*', 'hr.payroll', false],
    ['payroll', 'hr.payroll', true],
    ['*.secrets', 'vault.secrets', true],
    ['audit_?', 'audit_1', true],
    ['audit_?', 'audit_12', false],
    ['public.Payroll', 'public.payroll', true],
    ['public.pay.roll', 'public.payXroll', false],
    ['public.payroll', 'db.public.payroll', true],
  ])('%s ~ %s → %s', (pattern, table, expected) => {
    expect(tableMatches(pattern, table)).toBe(expected);
  });
});
