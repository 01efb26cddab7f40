import { describe, expect, test } from 'vitest';
import { RecentEvents } from './recent-events.js';

/** Appends events records of `size` bytes each (one line apiece) and writes them in one write. */
function writeRecords(tail: RecentEvents, segment: number, base: number, names: string[], size = 100): number {
  let at = 0;
  for (const name of names) {
    tail.append(at, at + size, [name], 1000);
    at += size;
  }
  tail.written(segment, base, at, true);
  return base + at;
}

describe('recent events (shipping from memory)', () => {
  test('serves what was written from the covered position on, with positions as in the file', () => {
    const tail = new RecentEvents(1 << 20);
    tail.coverFrom({ segment: 3, offset: 0 });
    const end = writeRecords(tail, 3, 40, ['a', 'b', 'c']);
    expect(tail.read({ segment: 3, offset: 0 }, 1 << 20)).toEqual({
      lines: ['a', 'b', 'c'],
      next: { segment: 3, offset: end },
      oldestWrittenAt: 1000,
    });
    // Whole records up to the byte limit, at least one, and the next batch from where it stopped.
    expect(tail.read({ segment: 3, offset: 0 }, 150)).toMatchObject({ lines: ['a', 'b'], next: { offset: 240 } });
    expect(tail.read({ segment: 3, offset: 240 }, 1)).toMatchObject({ lines: ['c'], next: { offset: 340 } });
    // Nothing more: the position moves to the end of what was written (past begin records).
    expect(tail.read({ segment: 3, offset: 340 }, 1)).toEqual({
      lines: [],
      next: { segment: 3, offset: 340 },
      oldestWrittenAt: null,
    });
  });

  test('a position before the covered one is for the disk to answer', () => {
    const tail = new RecentEvents(1 << 20);
    expect(tail.read({ segment: 1, offset: 0 }, 1)).toBeNull();
    tail.coverFrom({ segment: 5, offset: 0 });
    writeRecords(tail, 5, 0, ['a']);
    expect(tail.read({ segment: 4, offset: 900 }, 1)).toBeNull();
    expect(tail.read({ segment: 5, offset: 0 }, 1)?.lines).toEqual(['a']);
  });

  test('records appended but not yet written are not served; a roll-over keeps file order', () => {
    const tail = new RecentEvents(1 << 20);
    tail.coverFrom({ segment: 1, offset: 0 });
    tail.append(0, 100, ['a'], 1);
    expect(tail.read({ segment: 1, offset: 0 }, 1 << 20)?.lines).toEqual([]);
    tail.written(1, 0, 100, true);
    writeRecords(tail, 2, 30, ['b']);
    expect(tail.read({ segment: 1, offset: 0 }, 1 << 20)?.lines).toEqual(['a', 'b']);
    expect(tail.read({ segment: 1, offset: 100 }, 1 << 20)).toMatchObject({ lines: ['b'], next: { segment: 2 } });
  });

  test('acknowledged records are let go', () => {
    const tail = new RecentEvents(1 << 20);
    tail.coverFrom({ segment: 1, offset: 0 });
    writeRecords(tail, 1, 0, ['a', 'b', 'c']);
    expect(tail.bytes).toBe(300);
    tail.acknowledged({ segment: 1, offset: 200 });
    expect(tail.bytes).toBe(100);
    expect(tail.read({ segment: 1, offset: 200 }, 1 << 20)?.lines).toEqual(['c']);
  });

  test('past the bound the oldest go, and the disk answers for them: nothing is served twice or skipped', () => {
    const tail = new RecentEvents(250);
    tail.coverFrom({ segment: 1, offset: 0 });
    writeRecords(tail, 1, 0, ['a', 'b', 'c', 'd']);
    expect(tail.bytes).toBeLessThanOrEqual(250);
    // a and b were dropped: from before c, the disk.
    expect(tail.read({ segment: 1, offset: 0 }, 1 << 20)).toBeNull();
    expect(tail.read({ segment: 1, offset: 100 }, 1 << 20)).toBeNull();
    expect(tail.read({ segment: 1, offset: 200 }, 1 << 20)?.lines).toEqual(['c', 'd']);
  });

  test('a failed or partial write stops it until a write leaves nothing behind', () => {
    const tail = new RecentEvents(1 << 20);
    tail.coverFrom({ segment: 1, offset: 0 });
    writeRecords(tail, 1, 0, ['a']);
    tail.append(0, 100, ['b'], 1);
    tail.written(1, 100, 40, false);
    expect(tail.read({ segment: 1, offset: 100 }, 1 << 20)).toBeNull();
    // b is in the file only after the retry, so the disk answers for everything before that write's end.
    tail.append(60, 160, ['c'], 1);
    tail.written(1, 140, 120, true);
    expect(tail.read({ segment: 1, offset: 100 }, 1 << 20)).toBeNull();
    expect(tail.read({ segment: 1, offset: 260 }, 1 << 20)?.lines).toEqual([]);
    writeRecords(tail, 1, 260, ['d']);
    expect(tail.read({ segment: 1, offset: 260 }, 1 << 20)?.lines).toEqual(['d']);
  });
});
