import { describe, expect, test } from 'vitest';
import { claimFor, type ListedIdentity } from './identity-claims.js';

const identity = (name: string, serviceAccounts: unknown, extra: Partial<ListedIdentity> = {}): ListedIdentity => ({
  metadata: { name, namespace: 'payments', ...extra.metadata },
  spec: { kind: 'agent', serviceAccounts, ...extra.spec },
});

describe('claimFor', () => {
  test('the one AgentIdentity listing the service account gives the writer identity', () => {
    const listed = [identity('billing-reconciler', ['billing', 'billing-canary']), identity('other', ['other'])];
    expect(claimFor(listed, 'payments', 'billing-canary', 'agent-0')).toEqual({
      ok: true,
      identity: {
        name: 'billing-reconciler',
        kind: 'agent',
        namespace: 'payments',
        serviceAccount: 'billing-canary',
        pod: 'agent-0',
        source: 'kubernetes',
      },
    });
    const human = identity('oncall', ['oncall'], { spec: { kind: 'human' } });
    expect(claimFor([human], 'payments', 'oncall', null)).toMatchObject({
      ok: true,
      identity: { kind: 'human', pod: null },
    });
  });

  test('a service account nobody claims acts as nobody, and the message says how to fix it', () => {
    const claim = claimFor([identity('a', ['x'])], 'payments', 'billing', null);
    expect(claim).toEqual({
      ok: false,
      reason: 'unclaimed',
      message:
        'service account "billing" in namespace "payments" is claimed by no AgentIdentity (list it in the spec.serviceAccounts of one)',
    });
    expect(claimFor([], 'payments', 'billing', null)).toMatchObject({ ok: false, reason: 'unclaimed' });
  });

  test('a claim from another namespace, a prefix, or an identity being deleted does not count', () => {
    const elsewhere = identity('a', ['billing'], { metadata: { name: 'a', namespace: 'orders' } });
    const prefix = identity('b', ['billing-x']);
    const deleting = identity('c', ['billing'], {
      metadata: { name: 'c', namespace: 'payments', deletionTimestamp: 'now' },
    });
    expect(claimFor([elsewhere, prefix, deleting], 'payments', 'billing', null)).toMatchObject({ reason: 'unclaimed' });
  });

  test('several claimants: nobody, naming them all', () => {
    const claim = claimFor(
      [identity('zeta', ['billing']), identity('alpha', ['billing'])],
      'payments',
      'billing',
      null,
    );
    expect(claim).toEqual({
      ok: false,
      reason: 'claimed-twice',
      message:
        'service account "billing" in namespace "payments" is claimed by several AgentIdentities ("alpha", "zeta"); exactly one may claim it',
    });
  });

  test.each<[string, ListedIdentity]>([
    ['an unknown kind', identity('a', ['billing'], { spec: { kind: 'robot' } })],
    ['no kind', { metadata: { name: 'a', namespace: 'payments' }, spec: { serviceAccounts: ['billing'] } }],
    ['no name', { metadata: { namespace: 'payments' }, spec: { kind: 'agent', serviceAccounts: ['billing'] } }],
  ])('a claimant with %s is refused rather than guessed at', (_name, listed) => {
    expect(claimFor([listed], 'payments', 'billing', null)).toMatchObject({ ok: false, reason: 'invalid-identity' });
  });

  test('serviceAccounts that is not a list claims nothing', () => {
    expect(claimFor([identity('a', 'billing')], 'payments', 'billing', null)).toMatchObject({ reason: 'unclaimed' });
  });
});
