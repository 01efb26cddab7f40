import { describe, expect, test } from 'vitest';
import type { UnchainedEvent } from './audit-event.js';
import { ChainWriter } from './chain.js';
import { uuidv7 } from './uuid.js';
import { describeProblem, type StoredPosition, verifyTrail } from './verify-trail.js';

function event(text: string): UnchainedEvent {
  return {
    v: 1,
    id: uuidv7(),
    type: 'statement',
    time: '2026-11-27T10:00:00.000Z',
    identity: { name: 'a', kind: 'agent', namespace: null, serviceAccount: null, pod: null, source: 'static' },
    session: { id: 's1', seq: 1, client: null, applicationName: null, dbUser: 'u' },
    target: { route: 'r', host: 'h', port: 5432, database: 'd' },
    statement: null,
    result: null,
    authz: null,
    context: { task: null, traceparent: null, tags: { t: text } },
  };
}

function trail(n: number, stream = 'st'): StoredPosition[] {
  const w = new ChainWriter(stream);
  return Array.from({ length: n }, (_, i) => {
    const c = w.append(event(`e${i + 1}`));
    return { stream, seq: c.event.chain.seq, json: c.json };
  });
}

describe('verifyTrail', () => {
  test('an intact trail of several streams has no problems', () => {
    const report = verifyTrail([...trail(5, 'a'), ...trail(3, 'b')].reverse());
    expect(report).toEqual({ streams: 2, events: 8, problems: [] });
  });

  test('an edited event is named', () => {
    const t = trail(4);
    t[1] = { ...t[1]!, json: t[1]!.json.replace('"e2"', '"E2"') };
    const { problems } = verifyTrail(t);
    expect(problems).toEqual([{ kind: 'edited', stream: 'st', seq: 2, id: JSON.parse(t[1]!.json).id }]);
    expect(describeProblem(problems[0]!)).toMatch(/^stream st seq 2: event .* was edited/);
  });

  test('a removed event, and several, are named by their positions', () => {
    const t = trail(6);
    expect(verifyTrail([t[0]!, t[2]!, t[3]!, t[4]!, t[5]!]).problems).toEqual([
      { kind: 'removed', stream: 'st', from: 2, to: 2 },
    ]);
    expect(describeProblem(verifyTrail([t[0]!, t[4]!, t[5]!]).problems[0]!)).toBe(
      'stream st seq 2–4: 3 events were removed',
    );
  });

  test('two events swapped in the store are both named as moved', () => {
    const t = trail(4);
    const swapped = [t[0]!, { ...t[1]!, json: t[2]!.json }, { ...t[2]!, json: t[1]!.json }, t[3]!];
    const { problems } = verifyTrail(swapped);
    expect(problems.map((p) => [p.kind, 'seq' in p ? p.seq : null])).toEqual([
      ['moved', 2],
      ['moved', 3],
    ]);
  });

  test('an event replaced by a re-hashed forgery breaks the link to the next one', () => {
    const t = trail(3);
    const forger = new ChainWriter('st', 1, JSON.parse(t[0]!.json).chain.hash);
    const forged = forger.append(event('forged'));
    const { problems } = verifyTrail([t[0]!, { stream: 'st', seq: 2, json: forged.json }, t[2]!]);
    expect(problems).toEqual([{ kind: 'unlinked', stream: 'st', seq: 3, id: JSON.parse(t[2]!.json).id }]);
  });
});
