import { canonicalJson } from '@byline/api';
import { describe, expect, test } from 'vitest';
import { parseWhoami } from './whoami.js';

const identity = {
  name: 'billing-reconciler',
  kind: 'agent',
  namespace: 'payments',
  serviceAccount: 'billing',
  pod: 'billing-0',
  source: 'kubernetes',
};

describe('parseWhoami', () => {
  test('a 200 with a complete identity, its keys put in canonical order (events are chained with JSON.stringify)', () => {
    const answer = parseWhoami(200, JSON.stringify({ identity }));
    expect(answer).toEqual({ ok: true, identity });
    expect(answer.ok && JSON.stringify(answer.identity)).toBe(canonicalJson(identity));
  });

  test('a refusal carries the collector’s reason', () => {
    const body = JSON.stringify({ error: 'service account "x" in namespace "y" is claimed by no AgentIdentity' });
    expect(parseWhoami(403, body)).toEqual({
      ok: false,
      status: 403,
      error: 'the collector answered 403: service account "x" in namespace "y" is claimed by no AgentIdentity',
    });
    expect(parseWhoami(502, '<html>bad gateway</html>')).toMatchObject({
      ok: false,
      error: expect.stringContaining('no JSON'),
    });
  });

  test.each([
    ['no identity', {}],
    ['a static writer’s partial identity', { identity: { name: 'billing-agent', source: 'static' } }],
    ['an unknown field', { identity: { ...identity, extra: 1 } }],
    ['a bad kind', { identity: { ...identity, kind: 'robot' } }],
  ])('%s is not an identity events can carry', (_name, body) => {
    expect(parseWhoami(200, JSON.stringify(body))).toMatchObject({
      ok: false,
      error: expect.stringContaining('not one events can carry'),
    });
  });
});
