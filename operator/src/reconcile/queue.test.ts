import { describe, expect, it, vi } from 'vitest';
import { WorkQueue } from './queue.js';

const tick = () => new Promise((r) => setImmediate(r));

describe('WorkQueue', () => {
  it('runs a key queued many times once, and again if it was added while running', async () => {
    const runs: string[] = [];
    let release!: () => void;
    const q = new WorkQueue(
      async (key) => {
        runs.push(key);
        if (runs.length === 1) await new Promise<void>((r) => (release = r));
      },
      { concurrency: 2 },
    );
    q.start();
    q.add('a');
    q.add('a');
    await tick();
    expect(runs).toEqual(['a']);
    q.add('a'); // while running: marked dirty, not run in parallel
    q.add('a');
    await tick();
    expect(runs).toEqual(['a']);
    release();
    await q.idle();
    expect(runs).toEqual(['a', 'a']);
  });

  it('retries a failing key with growing backoff and forgets the failures after a success', async () => {
    vi.useFakeTimers();
    try {
      let calls = 0;
      const errors: number[] = [];
      const q = new WorkQueue(
        async () => {
          calls++;
          if (calls <= 3) throw new Error('boom');
        },
        { backoff: { initialMs: 100, maxMs: 1000 }, random: () => 1, onError: (_k, _e, ms) => errors.push(ms) },
      );
      q.start();
      q.add('k');
      await vi.advanceTimersByTimeAsync(0);
      expect(calls).toBe(1);
      await vi.advanceTimersByTimeAsync(99);
      expect(calls).toBe(1);
      await vi.advanceTimersByTimeAsync(1);
      expect(calls).toBe(2);
      await vi.advanceTimersByTimeAsync(200);
      expect(calls).toBe(3);
      await vi.advanceTimersByTimeAsync(400);
      expect(calls).toBe(4);
      expect(errors).toEqual([100, 200, 400]);
      expect(q.retryDelay(10)).toBe(1000);
    } finally {
      vi.useRealTimers();
    }
  });

  it('drops everything queued on stop and ignores adds until started again', async () => {
    const runs: string[] = [];
    const q = new WorkQueue(
      async (k) => {
        runs.push(k);
      },
      { concurrency: 1 },
    );
    q.add('before-start');
    q.start();
    q.stop();
    q.add('stopped');
    await tick();
    expect(runs).toEqual([]);
    q.start();
    q.add('b');
    await q.idle();
    expect(runs).toEqual(['b']);
  });
});
