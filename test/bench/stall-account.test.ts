import { describe, expect, it } from 'vitest';
import { classifyTick, formatCauses, overlapMs, summarizeStalls } from './stall-account.mjs';

const tick = (startMs: number, wallMs: number, cpuMs: number, waitMs: number) => ({
  startMs,
  endMs: startMs + wallMs,
  cpuMs,
  waitMs,
});

describe('stall attribution', () => {
  it('ignores a wake-up no more than 1 ms late', () => {
    expect(classifyTick(tick(0, 2, 1.9, 0), [], 1)).toBeUndefined();
  });

  it('calls a delay the thread spent waiting for a core scheduling, not a stall', () => {
    // 9 ms late, 8.5 of it runnable without a core: 0.5 ms left is the process's own.
    const s = classifyTick(tick(0, 10, 1.5, 8.5), [], 1);
    expect(s).toMatchObject({ cause: 'sched', delayMs: 9, schedMs: 8.5, ownMs: 0.5 });
  });

  it('calls a delay spent on the CPU with no GC a JavaScript stall', () => {
    const s = classifyTick(tick(0, 6, 5.8, 0.2), [], 1);
    expect(s?.cause).toBe('js');
    expect(s?.ownMs).toBeCloseTo(4.8);
  });

  it('puts a stall on the CPU that a GC pause covers on the collector', () => {
    const s = classifyTick(tick(100, 6, 5.8, 0), [{ startMs: 101, endMs: 104 }], 1);
    expect(s).toMatchObject({ cause: 'gc', gcMs: 3 });
  });

  it('calls a GC pause with the main thread asleep a wait for GC helpers, not a true stall', () => {
    const s = classifyTick(tick(100, 10, 0.8, 0.5), [{ startMs: 100.5, endMs: 109 }], 1);
    expect(s).toMatchObject({ cause: 'gc-wait' });
  });

  it('calls a delay neither on the CPU nor queued for one offcpu', () => {
    const s = classifyTick(tick(0, 8, 0.5, 0.5), [], 1);
    expect(s).toMatchObject({ cause: 'offcpu' });
    expect(s?.ownMs).toBeCloseTo(6.5);
  });

  it('counts only the part of a GC pause inside the interval', () => {
    expect(
      overlapMs(10, 20, [
        { startMs: 5, endMs: 12 },
        { startMs: 15, endMs: 16 },
        { startMs: 19, endMs: 30 },
      ]),
    ).toBe(4);
    expect(overlapMs(10, 20, [{ startMs: 0, endMs: 10 }])).toBe(0);
  });

  it('sums each cause into count, max and total; true stalls and sleeps kept apart, longest first', () => {
    const summary = summarizeStalls(
      [tick(0, 6, 5.8, 0.2), tick(10, 4, 3.9, 0), tick(20, 12, 1, 10.5), tick(40, 2, 1, 0), tick(50, 9, 0.2, 0)],
      [],
      1,
    );
    expect(summary.causes).toEqual({
      js: { count: 2, maxMs: expect.closeTo(4.8), totalMs: expect.closeTo(7.8) },
      sched: { count: 1, maxMs: 11, totalMs: 11 },
      offcpu: { count: 1, maxMs: 8, totalMs: 8 },
    });
    expect(summary.ownMaxMs).toBeCloseTo(4.8);
    expect(summary.offMaxMs).toBe(8);
    expect(summary.delayMaxMs).toBe(11);
    expect(summary.stalls.map((s) => s.startMs)).toEqual([50, 0, 10]);
    expect(formatCauses(summary.causes)).toBe('js 2/4.8/8 offcpu 1/8.0/8 sched 1/11.0/11');
  });
});
