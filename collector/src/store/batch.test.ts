import { describe, expect, test } from 'vitest';
import { dropRetired, total } from './batch.js';
import type { IngestEvent } from './types.js';

const event = (stream: string, seq: number) => ({ id: `${stream}-${seq}`, stream, seq }) as IngestEvent;
const seqs = (fresh: Map<string, IngestEvent[]>) =>
  Object.fromEntries([...fresh].map(([stream, list]) => [stream, list.map((e) => e.seq)]));

describe('dropRetired', () => {
  test('takes out the events at or below each stream’s checkpoint, and counts them per stream', () => {
    const fresh = new Map([
      ['a', [1, 2, 3, 4, 5].map((s) => event('a', s))],
      ['b', [1, 2].map((s) => event('b', s))],
      ['c', [7].map((s) => event('c', s))],
    ]);
    const dropped = dropRetired(
      fresh,
      new Map([
        ['a', 3],
        ['b', 9],
        ['c', 2],
        ['elsewhere', 5],
      ]),
    );
    expect(seqs(fresh)).toEqual({ a: [4, 5], c: [7] });
    expect(Object.fromEntries(dropped)).toEqual({ a: 3, b: 2 });
    expect(total(dropped)).toBe(5);
  });

  test('no checkpoint, nothing dropped', () => {
    const fresh = new Map([['a', [1, 2].map((s) => event('a', s))]]);
    expect(total(dropRetired(fresh, new Map()))).toBe(0);
    expect(seqs(fresh)).toEqual({ a: [1, 2] });
  });
});
