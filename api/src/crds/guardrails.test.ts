import { describe, expect, it } from 'vitest';
import { adminAccessWarnings, routeAccess, type SidecarConfig, SidecarConfigSchema } from '../sidecar-config.js';
import { problemsOf } from '../validate.js';
import { ApprovalSpec, DURATION_REGEX } from './approval.js';
import { toStructural } from './generate.js';
import {
  effectiveGuardrails,
  Guardrails,
  guardrailConflicts,
  TABLE_PATTERN_REGEX,
  tablePatternRegExp,
} from './guardrails.js';

// biome-ignore lint/suspicious/noExplicitAny: test fixtures are edited freely
type Loose = any;

function sidecarConfig(): Loose {
  return {
    identity: { static: { name: 'agent-1', kind: 'agent' } },
    routes: [
      {
        name: 'orders-db',
        listen: '127.0.0.1:6432',
        upstream: { host: 'db.internal', port: 5432 },
        credentials: { mode: 'inject', username: 'app', passwordFile: '/secrets/password' },
      },
    ],
    audit: { sinks: [{ file: '/spool/audit.jsonl' }] },
  };
}

describe('table patterns', () => {
  it.each(['payroll', 'public.payroll*', 'audit.*', '*', '*.*', '*_secret', 'a$b', 'sch_1.t?x'])('%s is valid', (p) => {
    expect(new RegExp(TABLE_PATTERN_REGEX).test(p)).toBe(true);
  });
  it.each([
    '',
    'public.',
    '.payroll',
    'a.b.c',
    'public..payroll',
    '"Payroll"',
    'pay roll',
    'pay[ro]ll',
    '1table',
    'public.pay-roll',
  ])('%j is malformed', (p) => {
    expect(new RegExp(TABLE_PATTERN_REGEX).test(p)).toBe(false);
  });

  it('match schema.table with * and ? inside one part; no schema means any schema', () => {
    expect(tablePatternRegExp('public.payroll*').test('public.payroll_2026')).toBe(true);
    expect(tablePatternRegExp('public.payroll*').test('hr.payroll')).toBe(false);
    expect(tablePatternRegExp('payroll').test('hr.payroll')).toBe(true);
    expect(tablePatternRegExp('payroll').test('hr.payrolls')).toBe(false);
    expect(tablePatternRegExp('*').test('public.x')).toBe(true);
    // `*` never crosses the dot: "public*" is a table name, not a schema prefix.
    expect(tablePatternRegExp('public*').test('public.x')).toBe(false);
    expect(tablePatternRegExp('t?').test('s.t1')).toBe(true);
    expect(tablePatternRegExp('a$b').test('s.a$b')).toBe(true);
    expect(tablePatternRegExp('PUBLIC.Payroll').test('public.payroll')).toBe(true);
  });
});

describe('effectiveGuardrails', () => {
  it('unites the route defaults and the identity: an identity adds, never removes', () => {
    const route: Guardrails = { deny: { classes: ['role'] }, requireWhere: ['delete'] };
    const identity: Guardrails = {
      deny: { tables: ['public.payroll*'] },
      requireWhere: ['update', 'delete'],
      requireApproval: { classes: ['ddl'] },
    };
    expect(effectiveGuardrails(route, identity)).toEqual({
      deny: { classes: ['role'], tables: ['public.payroll*'] },
      requireWhere: ['delete', 'update'],
      requireApproval: { classes: ['ddl'] },
    });
    // An identity with empty lists cannot take the route's restrictions away.
    expect(effectiveGuardrails(route, { deny: { classes: [] }, requireWhere: [] })).toEqual({
      deny: { classes: ['role'] },
      requireWhere: ['delete'],
    });
    expect(effectiveGuardrails(undefined, undefined)).toEqual({});
  });
});

describe('guardrailConflicts', () => {
  it('names approval-gated classes and tables that are denied anyway or beyond the access', () => {
    const g: Guardrails = {
      deny: { classes: ['ddl'], tables: ['public.payroll*'] },
      requireApproval: { classes: ['ddl', 'role', 'write'], tables: ['public.payroll*', 'hr.*'] },
    };
    expect(guardrailConflicts(g, 'readWrite', 'routes[orders-db]')).toEqual([
      'routes[orders-db]: class "ddl" is both denied and approval-gated; deny wins, no approval can unlock it',
      'routes[orders-db]: class "role" is approval-gated but access readWrite never allows it; an approval cannot add access',
      'routes[orders-db]: table "public.payroll*" is both denied and approval-gated; deny wins, no approval can unlock it',
    ]);
    expect(guardrailConflicts({ requireApproval: { classes: ['ddl'] } }, 'admin', 'x')).toEqual([]);
  });
});

describe('the sidecar config takes access and guardrails, with the same schema', () => {
  it('accepts the issue example', () => {
    const c = sidecarConfig();
    c.routes[0].access = 'readWrite';
    c.guardrails = {
      deny: { classes: ['ddl'], tables: ['public.payroll*'] },
      requireWhere: ['update', 'delete'],
      requireApproval: { classes: ['ddl'], tables: [] },
    };
    expect(problemsOf(SidecarConfigSchema, c)).toEqual([]);
  });

  it('refuses an unknown class, a malformed glob, an unknown access and an unknown field, naming each', () => {
    const c = sidecarConfig();
    c.routes[0].access = 'write';
    c.guardrails = {
      deny: { classes: ['dcl'], tables: ['public.'] },
      requireWhere: ['select'],
      requireApproval: { clases: ['ddl'] },
    };
    const problems = problemsOf(SidecarConfigSchema, c);
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^routes\[0\]\.access: expected one of "read", "readWrite", "admin", got "write"/),
        expect.stringMatching(/^guardrails\.deny\.classes\[0\]: expected one of "read", .*"misc", got "dcl"/),
        expect.stringMatching(/^guardrails\.deny\.tables\[0\]: expected a table pattern: .*got "public\."/),
        expect.stringMatching(/^guardrails\.requireWhere\[0\]: expected one of "update", "delete", got "select"/),
        expect.stringMatching(/^guardrails\.requireApproval\.clases: unknown field \(did you mean "classes"\?\)/),
      ]),
    );
  });

  it('a route without access is admin, and a static sidecar warns about every admin route', () => {
    const c = sidecarConfig() as SidecarConfig;
    expect(routeAccess(c.routes[0]!)).toBe('admin');
    expect(adminAccessWarnings(c)).toEqual([
      expect.stringMatching(/^routes\[0\] \(orders-db\): access is admin \(the default when none is named\)/),
    ]);
    c.routes[0]!.access = 'admin';
    expect(adminAccessWarnings(c)).toEqual([expect.not.stringMatching(/the default/)]);
    c.routes[0]!.access = 'readWrite';
    expect(adminAccessWarnings(c)).toEqual([]);
    // With a kubernetes identity the control plane's policy decides; the file's default is not in force.
    const k = sidecarConfig();
    k.identity = { kubernetes: { tokenPath: '/t', collector: { url: 'https://c' } } };
    expect(adminAccessWarnings(k)).toEqual([]);
  });
});

describe('the CRD schemas carry the same rules', () => {
  it('Guardrails translate to a structural schema with enums, the glob pattern and its CEL rule', () => {
    const s = toStructural(Guardrails, 'spec.guardrails') as Loose;
    expect(s.properties.deny.properties.classes.items.enum).toEqual(['read', 'write', 'ddl', 'role', 'tcl', 'misc']);
    const tables = s.properties.deny.properties.tables.items;
    expect(tables.pattern).toBe(TABLE_PATTERN_REGEX);
    expect(tables['x-kubernetes-validations'][0].rule).toContain(TABLE_PATTERN_REGEX);
    expect(s.properties.requireWhere.items.enum).toEqual(['update', 'delete']);
  });

  it('Approval spec: one of duration and notAfter, immutable, durations like 2h or 1h30m', () => {
    const s = toStructural(ApprovalSpec, 'spec') as Loose;
    expect(s['x-kubernetes-validations'].map((v: { rule: string }) => v.rule)).toEqual([
      'has(self.duration) != has(self.notAfter)',
      'self == oldSelf',
    ]);
    const d = new RegExp(DURATION_REGEX);
    for (const ok of ['2h', '30m', '1h30m', '45s']) expect(d.test(ok), ok).toBe(true);
    for (const bad of ['2d', 'h', '1.5h', '30m2h', '-1h']) expect(d.test(bad) && bad.length >= 2, bad).toBe(false);
  });
});
