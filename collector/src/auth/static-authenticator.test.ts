import { describe, expect, test } from 'vitest';
import { StaticAuthenticator } from './static-authenticator.js';

describe('StaticAuthenticator', () => {
  const auth = new StaticAuthenticator([
    { token: 'writer-token-0123456789', identity: 'billing-agent' },
    { token: 'reader-token-0123456789', reader: true },
    { token: 'placed-token-0123456789', identity: 'migrator', kind: 'service', namespace: 'payments', pod: 'm-1' },
  ]);

  test('a writer token stands for its identity, a reader token for a reader', async () => {
    expect(await auth.authenticate('writer-token-0123456789')).toEqual({
      kind: 'writer',
      identity: {
        name: 'billing-agent',
        kind: 'agent',
        namespace: null,
        serviceAccount: null,
        pod: null,
        source: 'static',
      },
    });
    expect(await auth.authenticate('reader-token-0123456789')).toEqual({ kind: 'reader', subject: 'static:1' });
  });

  test('a writer stands for its whole configured identity: kind agent and null fields unless configured', async () => {
    expect(await auth.authenticate('placed-token-0123456789')).toEqual({
      kind: 'writer',
      identity: {
        name: 'migrator',
        kind: 'service',
        namespace: 'payments',
        serviceAccount: null,
        pod: 'm-1',
        source: 'static',
      },
    });
  });

  test('anything else, prefixes and near misses included, is nobody', async () => {
    for (const t of [
      '',
      'writer-token',
      'writer-token-01234567890',
      'WRITER-TOKEN-0123456789',
      ' writer-token-0123456789',
    ]) {
      expect(await auth.authenticate(t)).toBeNull();
    }
  });
});
