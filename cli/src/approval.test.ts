import type { Approval } from '@byline/api';
import { describe, expect, it } from 'vitest';
import { approvalTable, requestedApproval } from './approval.js';

const base = { identity: 'migrator', route: 'orders-db', reason: 'add a column', for: '2h' };

describe('approval request arguments', () => {
  it('build the Approval the issue describes, with a generated name', () => {
    expect(requestedApproval({ ...base, scope: ['ddl'], ticket: 'CHG-7' })).toEqual({
      apiVersion: 'byline.dev/v1alpha1',
      kind: 'Approval',
      metadata: { generateName: 'migrator-' },
      spec: {
        identity: 'migrator',
        route: 'orders-db',
        scope: { classes: ['ddl'] },
        reason: 'add a column',
        ticket: 'CHG-7',
        duration: '2h',
      },
    });
    const t = requestedApproval({
      ...base,
      for: undefined,
      until: '2026-12-06T18:00:00Z',
      scope: ['ddl,write', 'ddl'],
      table: ['public.payroll*'],
      name: 'mig-1',
    });
    expect(t.metadata).toEqual({ name: 'mig-1' });
    expect(t.spec).toMatchObject({
      scope: { classes: ['ddl', 'write'], tables: ['public.payroll*'] },
      notAfter: '2026-12-06T18:00:00Z',
    });
    expect(t.spec.duration).toBeUndefined();
  });

  it.each([
    [{ ...base, scope: ['dcl'] }, /--scope: unknown class "dcl"/],
    [{ ...base, table: ['public.'] }, /--table: "public\." is not a table pattern/],
    [{ ...base }, /give --scope CLASSES and\/or --table PATTERN/],
    [{ ...base, scope: ['ddl'], for: '2d' }, /--for: expected a duration/],
    [{ ...base, scope: ['ddl'], until: '2026-12-07T00:00:00Z' }, /exactly one/],
    [{ route: 'x', scope: ['ddl'], for: '1h' }, /--identity is required; --reason is required/],
  ])('refuse %j clearly', (values, message) => {
    expect(() => requestedApproval(values)).toThrow(message);
  });
});

describe('approval list table', () => {
  it('shows phase, who asked, who decided and until when', () => {
    const a = {
      apiVersion: 'byline.dev/v1alpha1',
      kind: 'Approval',
      metadata: { name: 'migrator-x1', namespace: 'payments' },
      spec: {
        identity: 'migrator',
        route: 'orders-db',
        scope: { classes: ['ddl'] },
        reason: 'r',
        requestedBy: 'alice',
        duration: '2h',
      },
      status: { phase: 'Approved', approvedBy: 'bob', expiresAt: '2026-12-06T14:00:00Z' },
    } as Approval;
    const lines = approvalTable([a], true).trimEnd().split('\n');
    expect(lines[0]).toMatch(
      /^NAMESPACE\s+NAME\s+IDENTITY\s+ROUTE\s+SCOPE\s+PHASE\s+REQUESTED BY\s+DECIDED BY\s+EXPIRES/,
    );
    expect(lines[1]?.split(/\s+/)).toEqual([
      'payments',
      'migrator-x1',
      'migrator',
      'orders-db',
      'ddl',
      'Approved',
      'alice',
      'bob',
      '2026-12-06T14:00:00Z',
      'r',
    ]);
  });
});
