/**
 * What the operator does to an Approval over its life, and when (pure):
 *
 *   no status yet                                  → write phase Pending and requestedBy (from spec)
 *   Approved and expiresAt has passed              → write phase Expired
 *   Pending with spec.notAfter and it has passed   → write phase Expired
 *   otherwise                                      → nothing; look again at expiresAt / notAfter
 *
 * The webhook checks each of these writes like any other (an early Expired is refused), so the
 * operator holds no power a client does not have. Sidecars stop honouring an approval at expiresAt
 * by their own clock; the phase is for people and for the trail.
 */
import type { Approval, ApprovalStatus } from '@byline/api';

export type LifecycleAction =
  | { action: 'write'; status: ApprovalStatus; why: 'initialize' | 'expire' }
  | { action: 'none' /** epoch ms at which to look again */; nextAt?: number };

export function approvalAction(approval: Approval, now: number): LifecycleAction {
  const status = approval.status ?? {};
  if (status.phase === undefined) {
    return {
      action: 'write',
      why: 'initialize',
      status: { phase: 'Pending', ...(approval.spec.requestedBy ? { requestedBy: approval.spec.requestedBy } : {}) },
    };
  }
  const end =
    status.phase === 'Approved' ? status.expiresAt : status.phase === 'Pending' ? approval.spec.notAfter : undefined;
  if (end === undefined) return { action: 'none' };
  const at = Date.parse(end);
  if (Number.isNaN(at)) return { action: 'none' };
  if (at <= now) return { action: 'write', why: 'expire', status: { ...status, phase: 'Expired' } };
  return { action: 'none', nextAt: at };
}
