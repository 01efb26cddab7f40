import { describe, expect, test } from 'vitest';
import { CommitGroup, type Settled } from './commit-group.js';

/** A writer that records each group it was handed; a job named "bad" fails alone. */
function recorder() {
  const groups: string[][] = [];
  const write = (jobs: string[]): Settled<string>[] => {
    groups.push(jobs);
    return jobs.map((j) => (j === 'bad' ? { ok: false, error: new Error(`refused ${j}`) } : { ok: true, value: j }));
  };
  return { groups, write };
}

describe('CommitGroup', () => {
  test('batches submitted in the same turn are written by one call, each getting its own result', async () => {
    const r = recorder();
    const group = new CommitGroup(r.write);
    const results = await Promise.all(['a', 'b', 'c'].map((j) => group.submit(j)));
    expect(results).toEqual(['a', 'b', 'c']);
    expect(r.groups).toEqual([['a', 'b', 'c']]);
  });

  test('a batch that fails is refused alone; the others in its group are stored', async () => {
    const r = recorder();
    const group = new CommitGroup(r.write);
    const settled = await Promise.allSettled(['a', 'bad', 'c'].map((j) => group.submit(j)));
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((settled[1] as PromiseRejectedResult).reason.message).toBe('refused bad');
    expect(r.groups).toHaveLength(1);
  });

  test('when the group cannot be committed at all, every batch in it fails', async () => {
    const group = new CommitGroup<string, string>(() => {
      throw new Error('disk full');
    });
    const settled = await Promise.allSettled(['a', 'b'].map((j) => group.submit(j)));
    expect(settled.map((s) => (s as PromiseRejectedResult).reason?.message)).toEqual(['disk full', 'disk full']);
  });

  test('a group holds batches up to a weight; the rest follow in the next call, in order; a heavy one goes alone', async () => {
    const r = recorder();
    const group = new CommitGroup(r.write, (j) => j.length, 4);
    await Promise.all(['a', 'bb', 'c', 'dd', 'eeeeee', 'f'].map((j) => group.submit(j)));
    expect(r.groups).toEqual([['a', 'bb', 'c'], ['dd'], ['eeeeee'], ['f']]);
  });

  test('batches arriving while an asynchronous group is being written form the next group', async () => {
    const groups: string[][] = [];
    let release: () => void = () => {};
    const group = new CommitGroup<string, string>(async (jobs) => {
      groups.push(jobs);
      if (groups.length === 1) await new Promise<void>((r) => (release = r));
      return jobs.map((value) => ({ ok: true, value }));
    });
    const first = group.submit('a');
    await new Promise((r) => setImmediate(r));
    const later = ['b', 'c'].map((j) => group.submit(j));
    await new Promise((r) => setImmediate(r));
    expect(groups).toEqual([['a']]);
    release();
    expect(await Promise.all([first, ...later])).toEqual(['a', 'b', 'c']);
    expect(groups).toEqual([['a'], ['b', 'c']]);
  });

  test('drain waits until every submitted batch is written', async () => {
    const r = recorder();
    const group = new CommitGroup(r.write);
    void group.submit('a');
    void group.submit('b');
    await group.drain();
    expect(r.groups).toEqual([['a', 'b']]);
  });
});
