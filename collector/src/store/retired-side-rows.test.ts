import { describe, expect, test } from 'vitest';
import { sideRowKeys, sliced } from './retired-side-rows.js';

describe('sideRowKeys', () => {
  test('one key per distinct table an event names, as ingest wrote them', () => {
    const keys = sideRowKeys([
      { id: 'a', seq: 1, timeUs: 10, tables: ['orders', 'customers', 'orders'] },
      { id: 'b', seq: 2, timeUs: 10, tables: null },
      { id: 'c', seq: 3, timeUs: 12, tables: ['invoices'] },
    ]);
    expect(keys).toEqual({
      names: ['orders', 'customers', 'invoices'],
      timeUs: [10, 10, 12],
      seqs: [1, 1, 3],
      ids: ['a', 'a', 'c'],
    });
  });

  test('what ingest never wrote (not an array, not a string) gives no key', () => {
    const keys = sideRowKeys([
      { id: 'a', seq: 1, timeUs: 1, tables: 'orders' },
      { id: 'b', seq: 2, timeUs: 2, tables: { 0: 'orders' } },
      { id: 'c', seq: 3, timeUs: 3, tables: [7, null, 'ok'] },
    ]);
    expect(keys.names).toEqual(['ok']);
    expect(keys.ids).toEqual(['c']);
  });
});

describe('sliced', () => {
  test('every key exactly once, in order, at most `size` per slice', () => {
    const events = Array.from({ length: 7 }, (_, i) => ({ id: `e${i}`, seq: i, timeUs: i, tables: ['t'] }));
    const slices = [...sliced(sideRowKeys(events), 3)];
    expect(slices.map((s) => s.ids)).toEqual([['e0', 'e1', 'e2'], ['e3', 'e4', 'e5'], ['e6']]);
    expect(slices.flatMap((s) => s.seqs)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect([...sliced(sideRowKeys([]), 3)]).toEqual([]);
  });
});
