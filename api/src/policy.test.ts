import { describe, expect, test } from 'vitest';
import { parsePolicyDocument } from './policy.js';

const route = {
  name: 'orders-db',
  access: 'read',
  accessSource: 'AgentIdentity payments/billing-reconciler',
  guardrails: [
    {
      source: 'DatabaseRoute payments/orders-db',
      guardrails: { deny: { classes: ['ddl'], tables: ['public.payroll*'] }, requireWhere: ['delete'] },
    },
  ],
  approvals: [
    {
      name: 'migrate',
      scope: { classes: ['ddl'] },
      approvedBy: 'alice',
      reason: null,
      ticket: 'OPS-1',
      expiresAt: '2026-12-06T13:00:00.000Z',
    },
  ],
};
const doc = (routes: unknown[]) => ({
  version: 'a1b2',
  identity: { name: 'billing-reconciler', namespace: 'payments' },
  routes,
});

describe('the /v1/policy document', () => {
  test('a valid document comes back as it is', () => {
    const d = doc([route]);
    expect(parsePolicyDocument(d)).toBe(d);
  });

  test.each([
    [{ ...route, access: 'root' }, /routes\[0\]\.access/],
    [{ ...route, guardrails: [{ source: 'x', guardrails: { deny: { classes: ['dcl'] } } }] }, /deny\.classes\[0\]/],
    [{ ...route, guardrails: [{ source: 'x', guardrails: { requireWhere: ['insert'] } }] }, /requireWhere\[0\]/],
    [{ ...route, guardrails: [{ source: 'x', guardrails: { deny: { tables: ['a b'] } } }] }, /deny\.tables\[0\]/],
    [{ ...route, guardrails: [{ source: 'x', guardrails: { deny: { tables: ['a.b.c'] } } }] }, /deny\.tables\[0\]/],
    [{ ...route, guardrails: [{ source: 'x', guardrails: { allow: {} } }] }, /allow/],
    // The CRDs' own table pattern (one source of truth): what an AgentIdentity refuses, so does the document.
    [{ ...route, guardrails: [{ source: 'x', guardrails: { deny: { tables: ['pay;roll'] } } }] }, /deny\.tables\[0\]/],
    [{ ...route, approvals: [{ ...route.approvals[0], scope: { tables: ['"Payroll"'] } }] }, /scope\.tables\[0\]/],
    [
      { ...route, approvals: [{ ...route.approvals[0], expiresAt: 'sometime next tuesday morning' }] },
      /expiresAt: "sometime next tuesday morning" is not a date-time/,
    ],
    [{ ...route, approvals: [{ ...route.approvals[0], scope: {} }] }, /scope: unlocks nothing/],
  ])('refuses a bad field, naming it (%#)', (bad, problem) => {
    expect(() => parsePolicyDocument(doc([bad]))).toThrow(problem);
  });

  test('a route listed twice is refused', () => {
    expect(() => parsePolicyDocument(doc([route, route]))).toThrow(/routes\[1\]\.name: "orders-db" is listed twice/);
  });

  test('the version is lower-case hex', () => {
    expect(() => parsePolicyDocument({ ...doc([route]), version: 'v1; drop' })).toThrow(/version/);
  });
});
