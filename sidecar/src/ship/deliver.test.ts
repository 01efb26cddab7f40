import { describe, expect, test } from 'vitest';
import { EventRun } from '../spool/event-run.js';
import { type Answer, classifyAnswer, deliver } from './deliver.js';

/** A collector stand-in that refuses any batch holding a line in `bad`, and counts requests. */
function collector(bad: Set<string>, limit = Number.POSITIVE_INFINITY) {
  const stored = new Set<string>();
  const dead: string[] = [];
  let requests = 0;
  return {
    stored,
    dead,
    get requests() {
      return requests;
    },
    ports: {
      async send(events: EventRun): Promise<Answer> {
        const lines = events.lines;
        requests++;
        if (lines.length > limit) return { kind: 'refused', status: 413, message: 'too many', identity: false };
        if (lines.some((l) => bad.has(l))) return { kind: 'refused', status: 400, message: 'schema', identity: false };
        for (const l of lines) stored.add(l);
        return { kind: 'ok' };
      },
      async deadLetter(line: string) {
        dead.push(line);
      },
    },
  };
}

const lines = (n: number) => EventRun.fromLines(Array.from({ length: n }, (_, i) => `e${i}`));

describe('deliver', () => {
  test('one bad event among 500: only it is dead-lettered, the 499 others are stored, in few requests', async () => {
    const c = collector(new Set(['e137']));
    const all = lines(500);
    expect(await deliver(all, { maxBatchBytes: 1 << 20, maxBatchEvents: 1000 }, c.ports)).toEqual({ kind: 'ok' });
    expect(c.dead).toEqual(['e137']);
    expect(c.stored.size).toBe(499);
    expect(c.requests).toBeLessThan(25);
  });

  test('a batch over the count limit is split until it fits; nothing is dead-lettered', async () => {
    const c = collector(new Set(), 7);
    expect((await deliver(lines(100), { maxBatchBytes: 1 << 20, maxBatchEvents: 1000 }, c.ports)).kind).toBe('ok');
    expect(c.dead).toEqual([]);
    expect(c.stored.size).toBe(100);
  });

  test('chunks respect maxBatchBytes and maxBatchEvents, and an event larger than the byte limit goes alone', async () => {
    const sent: number[] = [];
    const ports = {
      async send(l: EventRun): Promise<Answer> {
        sent.push(l.count);
        return { kind: 'ok' };
      },
      async deadLetter() {},
    };
    await deliver(
      EventRun.fromLines(['a'.repeat(50), 'b'.repeat(200), 'c', 'd', 'e', 'f']),
      { maxBatchBytes: 100, maxBatchEvents: 3 },
      ports,
    );
    expect(sent).toEqual([1, 1, 3, 1]);
  });

  test('a retryable answer stops delivery and is returned; nothing is dead-lettered', async () => {
    let n = 0;
    const dead: string[] = [];
    const answer = await deliver(
      lines(10),
      { maxBatchBytes: 1 << 20, maxBatchEvents: 4 },
      {
        async send(): Promise<Answer> {
          return ++n === 2 ? { kind: 'retry', reason: 'server', message: '503' } : { kind: 'ok' };
        },
        async deadLetter(l) {
          dead.push(l);
        },
      },
    );
    expect(answer).toEqual({ kind: 'retry', reason: 'server', message: '503' });
    expect(n).toBe(2);
    expect(dead).toEqual([]);
  });
});

describe('classifyAnswer', () => {
  test.each<[number, string, Answer['kind'], boolean?]>([
    [200, '{}', 'ok'],
    [400, '{"error":"schema","problems":[{"reason":"schema"}]}', 'refused', false],
    [413, '{"error":"too large","maxBytes":1048576}', 'refused', false],
    [400, '<html>400 Bad Request</html>', 'retry'],
    [400, '{"error":"no problems listed"}', 'retry'],
    [413, '<html>413 Request Entity Too Large (nginx)</html>', 'retry'],
    [403, '{"error":"x","problems":[{"line":1,"reason":"identity","field":"kind"}]}', 'refused', true],
    [403, '{"error":"this token may only read"}', 'retry'],
    [401, '{"error":"no token"}', 'retry'],
    [503, 'busy', 'retry'],
    [404, 'not found', 'retry'],
    [415, 'content type', 'retry'],
  ])('%i %s → %s', (status, body, kind, identity) => {
    const a = classifyAnswer(status, body);
    expect(a.kind).toBe(kind);
    if (a.kind === 'refused') expect(a.identity).toBe(identity);
  });
});
