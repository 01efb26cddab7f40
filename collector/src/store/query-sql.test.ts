import { describe, expect, test } from 'vitest';
import { buildEventQuery } from './query-sql.js';

const q = (sinceUs: number | undefined, afterUs: number | undefined) =>
  buildEventQuery(
    { identity: 'a', ...(sinceUs !== undefined ? { sinceUs } : {}), untilUs: 9_000 },
    100,
    afterUs !== undefined ? { timeUs: afterUs, stream: 's', seq: 4, id: 'x' } : undefined,
    'sqlite',
  );

/** The value bound to `e.time_us >= ?`, the bound an index seeks to. */
function lowerBound(built: ReturnType<typeof buildEventQuery>): unknown {
  const conditions = built.sql.slice(built.sql.indexOf(' WHERE ') + 7, built.sql.indexOf(' ORDER BY ')).split(' AND ');
  const at = conditions.findIndex((c) => c.startsWith('e.time_us >= '));
  return at === -1 ? undefined : built.values[at];
}

describe('buildEventQuery', () => {
  test("a later page's lower time bound is the cursor's time, so the index seeks to the page", () => {
    expect(lowerBound(q(1_000, 5_000))).toBe(5_000);
    expect(lowerBound(q(undefined, 5_000))).toBe(5_000);
  });

  test('since stays the bound when it is later than the cursor, and on a first page', () => {
    expect(lowerBound(q(7_000, 5_000))).toBe(7_000);
    expect(lowerBound(q(1_000, undefined))).toBe(1_000);
    expect(lowerBound(q(undefined, undefined))).toBeUndefined();
  });

  test('the cursor still decides on ties of one timestamp', () => {
    const built = q(1_000, 5_000);
    expect(built.sql).toContain('(e.time_us, e.stream, e.chain_seq, e.id) > (?, ?, ?, ?)');
    expect(built.values).toEqual(expect.arrayContaining([5_000, 's', 4, 'x']));
  });
});
