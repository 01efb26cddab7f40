import { describe, expect, test } from 'vitest';
import {
  type ApprovalObject,
  effectivePolicy,
  type IdentityObject,
  type RouteObject,
  withoutRequesters,
} from './effective-policy.js';
import { parsePolicyDocument } from './policy.js';

const NOW = Date.parse('2026-12-06T12:00:00Z');
const HOUR = 3_600_000;

const identity = (spec: IdentityObject['spec']): IdentityObject => ({
  metadata: { name: 'billing-reconciler', namespace: 'payments' },
  spec,
});
const route = (name: string, guardrails?: unknown): [string, RouteObject] => [
  name,
  { metadata: { name, namespace: 'payments' }, spec: guardrails === undefined ? {} : { guardrails } },
];
const approval = (name: string, over: Partial<ApprovalObject> = {}): ApprovalObject => ({
  metadata: { name, namespace: 'payments' },
  spec: { identity: 'billing-reconciler', route: 'orders-db', scope: ['ddl'], reason: 'index', ticket: 'OPS-1' },
  status: { phase: 'Approved', approvedBy: 'alice', expiresAt: new Date(NOW + HOUR).toISOString() },
  ...over,
});
const ALL = ['read', 'write', 'ddl', 'role', 'tcl', 'misc'];

describe('the effective policy of an AgentIdentity', () => {
  test('access per route, route defaults before the identity’s guardrails, and a valid document', () => {
    const { document, problems } = effectivePolicy(
      identity({
        routes: [{ name: 'orders-db', access: 'read' }, { name: 'ledger' }],
        guardrails: { requireWhere: ['delete'] },
      }),
      new Map([route('orders-db', { deny: { classes: ['ddl'] } }), route('ledger')]),
      [],
      NOW,
    );
    expect(problems).toEqual([]);
    expect(parsePolicyDocument(document)).toBe(document);
    expect(document.identity).toEqual({ name: 'billing-reconciler', namespace: 'payments' });
    expect(document.routes).toEqual([
      {
        name: 'orders-db',
        access: 'read',
        accessSource: 'AgentIdentity payments/billing-reconciler',
        guardrails: [
          { source: 'DatabaseRoute payments/orders-db', guardrails: { deny: { classes: ['ddl'] } } },
          { source: 'AgentIdentity payments/billing-reconciler', guardrails: { requireWhere: ['delete'] } },
        ],
        approvals: [],
      },
      {
        name: 'ledger',
        access: 'readWrite',
        accessSource: 'AgentIdentity payments/billing-reconciler',
        guardrails: [{ source: 'AgentIdentity payments/billing-reconciler', guardrails: { requireWhere: ['delete'] } }],
        approvals: [],
      },
    ]);
  });

  test('the version is a digest of the content: equal policies, equal versions; any change, another', () => {
    const make = (access: string) =>
      effectivePolicy(identity({ routes: [{ name: 'orders-db', access }] }), new Map([route('orders-db')]), [], NOW)
        .document.version;
    expect(make('read')).toBe(make('read'));
    expect(make('read')).not.toBe(make('readWrite'));
    expect(make('read')).toMatch(/^[0-9a-f]{20}$/);
  });

  test('only Approved, unexpired approvals for this identity and route, in either scope shape', () => {
    const { document } = effectivePolicy(
      identity({ routes: [{ name: 'orders-db', access: 'admin' }] }),
      new Map([route('orders-db')]),
      [
        approval('b-active', { spec: { ...approval('x').spec, scope: ['ddl', 'table:billing.*'] } }),
        approval('a-object', { spec: { ...approval('x').spec, scope: { classes: ['role'] } } }),
        approval('pending', { status: { phase: 'Pending' } }),
        approval('expired', { status: { ...approval('x').status, expiresAt: new Date(NOW).toISOString() } }),
        approval('other-route', { spec: { ...approval('x').spec, route: 'ledger' } }),
        approval('other-identity', { spec: { ...approval('x').spec, identity: 'someone-else' } }),
      ],
      NOW,
    );
    const approvals = document.routes[0]!.approvals;
    expect(approvals.map((a) => a.name)).toEqual(['a-object', 'b-active']);
    expect(approvals[1]).toEqual({
      name: 'b-active',
      scope: { classes: ['ddl'], tables: ['billing.*'] },
      approvedBy: 'alice',
      reason: 'index',
      ticket: 'OPS-1',
      expiresAt: new Date(NOW + HOUR).toISOString(),
    });
  });
});

describe('who asked for an approval (spec.requestedBy)', () => {
  const requested = (by: string | undefined) =>
    approval(`asked-${by ?? 'nobody'}`, {
      spec: { ...approval('x').spec, ...(by === undefined ? {} : { requestedBy: by }) },
    });
  const policyWith = (approvals: ApprovalObject[]) =>
    effectivePolicy(
      identity({ routes: [{ name: 'orders-db', access: 'admin' }] }),
      new Map([route('orders-db')]),
      approvals,
      NOW,
    ).document;

  test('the stamped requester rides beside the approver; an Approval stamped before the field has none', () => {
    const document = policyWith([requested('carol'), requested(undefined)]);
    expect(parsePolicyDocument(document)).toBe(document);
    const [carol, nobody] = document.routes[0]!.approvals;
    expect(carol).toMatchObject({ name: 'asked-carol', requestedBy: 'carol', approvedBy: 'alice' });
    expect(nobody).not.toHaveProperty('requestedBy');
  });

  test('for a sidecar that does not read it, the requester is left out and the version is that document’s own', () => {
    const full = policyWith([requested('carol')]);
    const older = withoutRequesters(full);
    expect(older.routes[0]!.approvals[0]).not.toHaveProperty('requestedBy');
    expect(older.version).not.toBe(full.version);
    // Exactly the document the same policy had before requesters were served.
    const { requestedBy: _, ...before } = full.routes[0]!.approvals[0]!;
    const { version, ...body } = older;
    expect(body.routes[0]!.approvals[0]).toEqual(before);
    expect(version).toBe(policyWith([approval('asked-carol')]).version);
    const none = policyWith([requested(undefined)]);
    expect(withoutRequesters(none)).toBe(none);
  });
});

describe('what cannot be read fails closed', () => {
  test('unreadable guardrails become a layer that denies every class, naming the field', () => {
    const { document, problems } = effectivePolicy(
      identity({ routes: [{ name: 'orders-db' }], guardrails: { deny: { classes: ['dcl'] } } }),
      new Map([route('orders-db')]),
      [],
      NOW,
    );
    const layer = document.routes[0]!.guardrails[0]!;
    expect(layer.source).toMatch(
      /^AgentIdentity payments\/billing-reconciler \(guardrails cannot be read: deny\.classes\[0\]/,
    );
    expect(layer.guardrails.deny?.classes).toEqual(ALL);
    expect(problems.join()).toMatch(/deny\.classes\[0\]/);
  });

  test('a missing DatabaseRoute denies everything on that route (its defaults would be lost)', () => {
    const { document, problems } = effectivePolicy(identity({ routes: [{ name: 'gone' }] }), new Map(), [], NOW);
    expect(document.routes[0]!.guardrails).toEqual([
      { source: 'DatabaseRoute payments/gone (not found)', guardrails: { deny: { classes: ALL } } },
    ]);
    expect(problems).toEqual(['DatabaseRoute payments/gone does not exist']);
  });

  test('an unknown access level is read, and denied outright', () => {
    const { document } = effectivePolicy(
      identity({ routes: [{ name: 'orders-db', access: 'root' }] }),
      new Map([route('orders-db')]),
      [],
      NOW,
    );
    expect(document.routes[0]!.access).toBe('read');
    expect(document.routes[0]!.guardrails[0]!.guardrails.deny?.classes).toEqual(ALL);
  });

  test('approvals that cannot be read are left out, with the reason', () => {
    const { document, problems } = effectivePolicy(
      identity({ routes: [{ name: 'orders-db', access: 'admin' }] }),
      new Map([route('orders-db')]),
      [
        approval('bad-class', { spec: { ...approval('x').spec, scope: ['superuser'] } }),
        approval('bad-glob', { spec: { ...approval('x').spec, scope: { tables: ['a b'] } } }),
        approval('no-approver', { status: { phase: 'Approved', expiresAt: new Date(NOW + HOUR).toISOString() } }),
        approval('no-expiry', { status: { phase: 'Approved', approvedBy: 'alice' } }),
        approval('empty', { spec: { ...approval('x').spec, scope: [] } }),
      ],
      NOW,
    );
    expect(document.routes[0]!.approvals).toEqual([]);
    expect(problems).toEqual([
      'Approval payments/bad-class: spec.scope names an unknown class "superuser"; left out',
      'Approval payments/bad-glob: spec.scope has an invalid table pattern "a b"; left out',
      'Approval payments/no-approver: Approved without status.approvedBy; left out',
      'Approval payments/no-expiry: status.expiresAt is not a date-time; left out',
      'Approval payments/empty: spec.scope unlocks nothing; left out',
    ]);
  });
});
