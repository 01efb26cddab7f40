import { describe, expect, test } from 'vitest';
import { EventRun } from './event-run.js';
import { RecentEvents } from './recent-events.js';

/** The one line of a 100-byte stand-in record for `name`. */
const line = (name: string) => name.padEnd(90, '.');
const linesOf = (...names: string[]) => names.map(line);

/**
 * Appends one 100-byte events record per name (a 10-byte stand-in for the frame and header, then
 * its line) to a stand-in append buffer, and writes them all in one write at `base`.
 */
function writeRecords(tail: RecentEvents, segment: number, base: number, names: string[]): number {
  const buf = Buffer.alloc(names.length * 100, 0x20);
  let at = 0;
  for (const name of names) {
    buf.write(line(name), at + 10);
    tail.append(at, at + 10, at + 100, 1000);
    at += 100;
  }
  tail.written(segment, base, at, true, buf);
  return base + at;
}

describe('recent events (shipping from memory)', () => {
  test('serves what was written from the covered position on, with positions as in the file', () => {
    const tail = new RecentEvents(1 << 20);
    tail.coverFrom({ segment: 3, offset: 0 });
    const end = writeRecords(tail, 3, 40, ['a', 'b', 'c']);
    const all = tail.read({ segment: 3, offset: 0 }, 1 << 20)!;
    expect(all.events.lines).toEqual(linesOf('a', 'b', 'c'));
    expect(all.events.body.toString()).toBe(`${linesOf('a', 'b', 'c').join('\n')}\n`);
    expect(all).toMatchObject({ next: { segment: 3, offset: end }, oldestWrittenAt: 1000 });
    // Whole records up to the byte limit, at least one, and the next batch from where it stopped.
    const first = tail.read({ segment: 3, offset: 0 }, 150)!;
    expect([first.events.lines, first.next.offset]).toEqual([linesOf('a', 'b'), 240]);
    const second = tail.read({ segment: 3, offset: 240 }, 1)!;
    expect([second.events.lines, second.next.offset]).toEqual([linesOf('c'), 340]);
    // Nothing more: the position moves to the end of what was written (past begin records).
    const none = tail.read({ segment: 3, offset: 340 }, 1)!;
    expect([none.events.count, none.next, none.oldestWrittenAt]).toEqual([0, { segment: 3, offset: 340 }, null]);
  });

  test('holds a copy: the append buffer may be reused once written', () => {
    const tail = new RecentEvents(1 << 20);
    tail.coverFrom({ segment: 1, offset: 0 });
    const buf = Buffer.from('..........{"x":1}\n{"x":2}');
    tail.append(0, 10, buf.length, 1);
    tail.written(1, 0, buf.length, true, buf);
    buf.fill(0);
    expect(tail.read({ segment: 1, offset: 0 }, 1 << 20)?.events.lines).toEqual(['{"x":1}', '{"x":2}']);
  });

  test('a position before the covered one is for the disk to answer', () => {
    const tail = new RecentEvents(1 << 20);
    expect(tail.read({ segment: 1, offset: 0 }, 1)).toBeNull();
    tail.coverFrom({ segment: 5, offset: 0 });
    writeRecords(tail, 5, 0, ['a']);
    expect(tail.read({ segment: 4, offset: 900 }, 1)).toBeNull();
    expect(tail.read({ segment: 5, offset: 0 }, 1)?.events.lines).toEqual(linesOf('a'));
  });

  test('records appended but not yet written are not served; a roll-over keeps file order', () => {
    const tail = new RecentEvents(1 << 20);
    tail.coverFrom({ segment: 1, offset: 0 });
    const buf = Buffer.alloc(100, 0x20);
    buf.write('a', 10);
    tail.append(0, 10, 11, 1);
    expect(tail.read({ segment: 1, offset: 0 }, 1 << 20)?.events.lines).toEqual([]);
    tail.written(1, 0, 100, true, buf);
    writeRecords(tail, 2, 30, ['b']);
    expect(tail.read({ segment: 1, offset: 0 }, 1 << 20)?.events.lines).toEqual(['a', line('b')]);
    expect(tail.read({ segment: 1, offset: 100 }, 1 << 20)).toMatchObject({ next: { segment: 2 } });
    expect(tail.read({ segment: 1, offset: 100 }, 1 << 20)?.events.lines).toEqual(linesOf('b'));
  });

  test('acknowledged records are let go', () => {
    const tail = new RecentEvents(1 << 20);
    tail.coverFrom({ segment: 1, offset: 0 });
    writeRecords(tail, 1, 0, ['a', 'b', 'c']);
    expect(tail.bytes).toBe(300);
    tail.acknowledged({ segment: 1, offset: 200 });
    expect(tail.bytes).toBe(100);
    expect(tail.read({ segment: 1, offset: 200 }, 1 << 20)?.events.lines).toEqual(linesOf('c'));
  });

  test('past the bound it lets everything go and holds nothing until covering again: the disk answers', () => {
    const tail = new RecentEvents(250);
    tail.coverFrom({ segment: 1, offset: 0 });
    const end = writeRecords(tail, 1, 0, ['a', 'b', 'c', 'd']);
    expect([tail.bytes, tail.suspended]).toEqual([0, true]);
    expect(tail.read({ segment: 1, offset: 0 }, 1 << 20)).toBeNull();
    expect(tail.read({ segment: 1, offset: 300 }, 1 << 20)).toBeNull();
    // Written meanwhile: not held (the shipper is reading the disk).
    const later = writeRecords(tail, 1, end, ['e']);
    expect([tail.bytes, tail.read({ segment: 1, offset: end }, 1 << 20)]).toEqual([0, null]);
    // The spool saw the shipper near the end: from there on, memory again.
    tail.coverFrom({ segment: 1, offset: later });
    writeRecords(tail, 1, later, ['f']);
    expect(tail.read({ segment: 1, offset: later }, 1 << 20)?.events.lines).toEqual(linesOf('f'));
  });

  test('a failed or partial write stops it until a write leaves nothing behind', () => {
    const tail = new RecentEvents(1 << 20);
    tail.coverFrom({ segment: 1, offset: 0 });
    writeRecords(tail, 1, 0, ['a']);
    const buf = Buffer.alloc(200, 0x20);
    tail.append(0, 10, 11, 1);
    tail.written(1, 100, 40, false, buf);
    expect(tail.read({ segment: 1, offset: 100 }, 1 << 20)).toBeNull();
    // b is in the file only after the retry, so the disk answers for everything before that write's end.
    tail.append(60, 70, 71, 1);
    tail.written(1, 140, 120, true, buf);
    expect(tail.read({ segment: 1, offset: 100 }, 1 << 20)).toBeNull();
    expect(tail.read({ segment: 1, offset: 260 }, 1 << 20)?.events.lines).toEqual([]);
    writeRecords(tail, 1, 260, ['d']);
    expect(tail.read({ segment: 1, offset: 260 }, 1 << 20)?.events.lines).toEqual(linesOf('d'));
  });
});

test('a write that does not account for what was appended stops it rather than guess or throw', () => {
  const tail = new RecentEvents(1 << 20);
  tail.coverFrom({ segment: 1, offset: 0 });
  tail.append(0, 10, 500, 1);
  expect(() => tail.written(1, 0, 100, true, Buffer.alloc(100))).not.toThrow();
  expect(tail.read({ segment: 1, offset: 0 }, 1 << 20)).toBeNull();
});

describe('event run (the request body)', () => {
  test('lines are found by their newlines; slices share the bytes; empty parts hold no line', () => {
    const run = EventRun.fromParts([Buffer.from('{"a":"é"}\n{"b":2}'), Buffer.alloc(0), Buffer.from('{"c":3}')]);
    expect(run.count).toBe(3);
    expect(run.lines).toEqual(['{"a":"é"}', '{"b":2}', '{"c":3}']);
    expect(run.bytes(0)).toBe(Buffer.byteLength('{"a":"é"}\n'));
    const tail = run.slice(1, 3);
    expect(tail.body.toString()).toBe('{"b":2}\n{"c":3}\n');
    expect(tail.line(1)).toBe('{"c":3}');
    expect(EventRun.fromLines([]).count).toBe(0);
    expect(EventRun.fromLines(['x', 'y']).body.toString()).toBe('x\ny\n');
  });
});
