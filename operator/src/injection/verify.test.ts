import { describe, expect, it } from 'vitest';
import { difference } from './verify.js';

describe('difference (what the API server may add to our output, and nothing more)', () => {
  const expected = {
    name: 'byline-proxy',
    startupProbe: { httpGet: { path: '/readyz', port: 9187 }, periodSeconds: 1 },
    volumeMounts: [{ name: 'byline-token', mountPath: '/t', readOnly: true }],
  };

  it('accepts our output with the API server’s defaults filled in', () => {
    const stored = structuredClone(expected) as Record<string, unknown> & typeof expected;
    Object.assign(stored, { terminationMessagePath: '/dev/termination-log', imagePullPolicy: 'IfNotPresent' });
    Object.assign(stored.startupProbe, { timeoutSeconds: 1, successThreshold: 1 });
    Object.assign(stored.startupProbe.httpGet, { scheme: 'HTTP' });
    expect(difference(expected, stored, 'c')).toBeUndefined();
  });

  it.each([
    ['an added command', { ...expected, command: ['sh'] }, 'c.command'],
    [
      'a default field with another value',
      { ...expected, terminationMessagePath: '/shared/x' },
      'c.terminationMessagePath',
    ],
    [
      'an extra mount',
      { ...expected, volumeMounts: [...expected.volumeMounts, { name: 'x', mountPath: '/x' }] },
      'c.volumeMounts',
    ],
    [
      'a mount made writable',
      { ...expected, volumeMounts: [{ ...expected.volumeMounts[0], readOnly: false }] },
      'c.volumeMounts[0].readOnly',
    ],
    [
      'an HTTPS probe scheme',
      {
        ...expected,
        startupProbe: { ...expected.startupProbe, httpGet: { path: '/readyz', port: 9187, scheme: 'HTTPS' } },
      },
      'c.startupProbe.httpGet.scheme',
    ],
    ['a missing field', { name: 'byline-proxy', volumeMounts: expected.volumeMounts }, 'c.startupProbe'],
    ['a lifecycle hook', { ...expected, lifecycle: { postStart: { exec: { command: ['cp'] } } } }, 'c.lifecycle'],
  ])('points at %s', (_, actual, path) => {
    expect(difference(expected, actual, 'c')).toBe(path);
  });
});
