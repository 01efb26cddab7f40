import type { AuditEvent } from '@byline/api';
import { describe, expect, test } from 'vitest';
import { approvalCell } from './trail.js';

const withApproval = (approval: NonNullable<AuditEvent['authz']>['approval']) =>
  ({ authz: { decision: 'allow', rule: 'gate', approval } }) as AuditEvent;

const grant = { name: 'CHG-7', approvedBy: 'bob', reason: null, ticket: null, expiresAt: null };

describe('the APPROVAL column', () => {
  test('names who requested the approval and who approved it', () => {
    expect(approvalCell(withApproval({ ...grant, requestedBy: 'alice' }))).toBe(
      'CHG-7 (requested by alice, approved by bob)',
    );
  });

  test('an event from before requestedBy names the approver only; no approval, nothing', () => {
    expect(approvalCell(withApproval(grant))).toBe('CHG-7 (approved by bob)');
    expect(approvalCell(withApproval(null))).toBe('');
  });
});
