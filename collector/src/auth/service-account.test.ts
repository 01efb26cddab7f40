import { describe, expect, test } from 'vitest';
import { POD_NAME_EXTRA, parseServiceAccountUser, podNameOf } from './service-account.js';

describe('parseServiceAccountUser', () => {
  test('a service account user names its namespace and account', () => {
    expect(parseServiceAccountUser('system:serviceaccount:payments:billing-reconciler')).toEqual({
      namespace: 'payments',
      serviceAccount: 'billing-reconciler',
    });
    expect(parseServiceAccountUser('system:serviceaccount:a:b.c')).toEqual({ namespace: 'a', serviceAccount: 'b.c' });
  });

  test.each([
    undefined,
    '',
    'alice@example.com',
    'system:node:worker-1',
    'system:serviceaccounts:payments',
    'system:serviceaccount:payments',
    'system:serviceaccount:payments:billing:extra',
    'system:serviceaccount::billing',
    'system:serviceaccount:payments:',
    'system:serviceaccount:Payments:billing',
    'system:serviceaccount:pay.ments:billing',
    `system:serviceaccount:${'n'.repeat(64)}:billing`,
    'System:serviceaccount:payments:billing',
  ])('%s is no service account', (username) => {
    expect(parseServiceAccountUser(username)).toBeNull();
  });
});

describe('podNameOf', () => {
  test('the pod a token is bound to', () => {
    expect(podNameOf({ [POD_NAME_EXTRA]: ['agent-7f9c'], 'authentication.kubernetes.io/pod-uid': ['u'] })).toBe(
      'agent-7f9c',
    );
  });

  test.each([
    ['no extra', undefined],
    ['no pod key', { 'authentication.kubernetes.io/node-name': ['n'] }],
    ['an empty list', { [POD_NAME_EXTRA]: [] }],
    ['two pods', { [POD_NAME_EXTRA]: ['a', 'b'] }],
    ['an empty name', { [POD_NAME_EXTRA]: [''] }],
    ['a malformed name', { [POD_NAME_EXTRA]: ['Agent/x'] }],
  ])('%s: no pod', (_name, extra) => {
    expect(podNameOf(extra)).toBeNull();
  });
});
