import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  type ChainPlan,
  FetchedNeighbourhood,
  type Link,
  type Neighbourhood,
  neighbourSeqs,
  planChain,
  type StreamState,
} from './chain-plan.js';

const h = (label: string) => createHash('sha256').update(label).digest('hex');
/** Event `i` of a well-formed chain. */
const link = (i: number): Link => ({
  id: `e${i}`,
  seq: i,
  prev: i === 1 ? null : h(String(i - 1)),
  hash: h(String(i)),
});

/** A stream as a store keeps it: stored links, head, and markers (open or resolved). */
class MemoryStream {
  links: Link[] = [];
  head: StreamState | undefined;
  markers = new Map<string, { seq: number; kind: string; detail: string; open: boolean }>();

  private direct(): Neighbourhood {
    return {
      at: (s) => this.links.filter((l) => l.seq === s),
      below: (s) => Math.max(0, ...this.links.filter((l) => l.seq < s).map((l) => l.seq)),
    };
  }

  /** Plans like a store does: sorted, then checks a fetched-ahead neighbourhood gives the same answer. */
  plan(batch: Link[]): ChainPlan {
    const sorted = [...batch].sort((a, b) => a.seq - b.seq);
    const plan = planChain(sorted, this.head, this.direct());
    const want = neighbourSeqs(sorted, this.head);
    const d = this.direct();
    const fetched = new FetchedNeighbourhood(
      new Map(want.at.map((s) => [s, d.at(s)])),
      new Map(want.below.map((s) => [s, d.below(s)])),
    );
    expect(planChain(sorted, this.head, fetched)).toEqual(plan);
    return plan;
  }

  apply(batch: Link[]): ChainPlan {
    const plan = this.plan(batch);
    this.links.push(...batch);
    this.head = plan.state;
    for (const m of plan.markers) {
      const key = `${m.kind}:${m.seq}`;
      if (!this.markers.has(key)) this.markers.set(key, { ...m, open: true });
    }
    for (const s of plan.resolveGaps) {
      const gap = this.markers.get(`gap:${s}`);
      if (gap) gap.open = false;
    }
    return plan;
  }

  open(): string[] {
    return [...this.markers.values()].filter((m) => m.open).map((m) => `${m.kind}:${m.seq}`);
  }
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => link(from + i));

describe('planChain', () => {
  test('an unbroken chain, in one batch or several, raises nothing', () => {
    const s = new MemoryStream();
    expect(s.apply(range(1, 5)).markers).toEqual([]);
    expect(s.apply(range(6, 9)).markers).toEqual([]);
    expect(s.head).toEqual({ firstSeq: 1, lastSeq: 9, headHash: h('9'), count: 9 });
  });

  test('a jump in seq is a gap on the event after the hole, naming what is missing', () => {
    const s = new MemoryStream();
    s.apply(range(1, 2));
    const plan = s.apply([link(5), link(6)]);
    expect(plan.markers).toEqual([{ seq: 5, kind: 'gap', detail: 'seqs 3–4 are missing' }]);
    expect(plan.state.lastSeq).toBe(6);
  });

  test('a stream first seen past seq 1 has a gap from 1', () => {
    const s = new MemoryStream();
    expect(s.apply([link(4)]).markers).toEqual([{ seq: 4, kind: 'gap', detail: 'seqs 1–3 are missing' }]);
  });

  test('a late batch filling the gap resolves it', () => {
    const s = new MemoryStream();
    s.apply([...range(1, 2), ...range(5, 6)]);
    expect(s.open()).toEqual(['gap:5']);
    const plan = s.apply(range(3, 4));
    expect(plan.markers).toEqual([]);
    expect(plan.resolveGaps).toEqual([5]);
    expect(s.open()).toEqual([]);
    expect(s.head).toMatchObject({ lastSeq: 6, headHash: h('6'), count: 6 });
  });

  test('a partial fill leaves the rest of the gap open and marks the new hole', () => {
    const s = new MemoryStream();
    s.apply([link(1), link(2), link(10)]);
    const partial = s.apply([link(5)]);
    expect(partial.markers).toEqual([{ seq: 5, kind: 'gap', detail: 'seqs 3–4 are missing' }]);
    expect(partial.resolveGaps).toEqual([]);
    expect(s.open().sort()).toEqual(['gap:10', 'gap:5']);
    s.apply(range(6, 9));
    expect(s.open()).toEqual(['gap:5']);
    s.apply(range(3, 4));
    expect(s.open()).toEqual([]);
  });

  test('a prev that does not link is a break', () => {
    const s = new MemoryStream();
    s.apply(range(1, 3));
    const forged = { ...link(4), prev: h('something else') };
    const plan = s.apply([forged]);
    expect(plan.markers).toHaveLength(1);
    expect(plan.markers[0]).toMatchObject({ seq: 4, kind: 'break' });
    expect(plan.markers[0]!.detail).toMatch(/^prev [0-9a-f]{12}… is not the hash of seq 3/);
  });

  test('seq 1 with a prev is a break', () => {
    const s = new MemoryStream();
    expect(s.apply([{ ...link(1), prev: h('0') }]).markers).toMatchObject([{ seq: 1, kind: 'break' }]);
  });

  test('a late event that does not link to its stored successor resolves the gap and marks the break', () => {
    const s = new MemoryStream();
    s.apply([link(1), link(3)]);
    const plan = s.apply([{ ...link(2), id: 'other', hash: h('not 2') }]);
    expect(plan.resolveGaps).toEqual([3]);
    expect(plan.markers).toMatchObject([{ seq: 3, kind: 'break' }]);
    expect(plan.markers[0]!.detail).toContain('arrived late');
  });

  test('a second event with a stored seq is a fork, whichever way it links', () => {
    const s = new MemoryStream();
    s.apply(range(1, 4));
    const twin = { ...link(3), id: 'twin', hash: h('3 again') };
    const plan = s.apply([twin]);
    expect(plan.markers).toEqual([
      {
        seq: 3,
        kind: 'fork',
        detail: expect.stringMatching(/^seq 3 is held by e3 \(hash [0-9a-f]{12}…\) and by twin/),
      },
    ]);
    expect(s.head).toMatchObject({ lastSeq: 4, headHash: h('4'), count: 5 });
  });

  test('two events with the next seq in one batch: a fork, and no false gap', () => {
    const s = new MemoryStream();
    s.apply(range(1, 2));
    const plan = s.apply([link(3), { ...link(3), id: 'twin', hash: h('3 again') }]);
    expect(plan.markers.map((m) => `${m.kind}:${m.seq}`)).toEqual(['fork:3']);
  });

  test('a batch out of order is checked in seq order', () => {
    const s = new MemoryStream();
    expect(s.apply([link(3), link(1), link(2)]).markers).toEqual([]);
  });

  test('the same marker is not planned twice in one batch', () => {
    const s = new MemoryStream();
    s.apply(range(1, 2));
    const a = { ...link(5), id: 'a' };
    const b = { ...link(5), id: 'b', hash: h('5b') };
    const kinds = s.apply([a, b]).markers.map((m) => `${m.kind}:${m.seq}`);
    expect(kinds.sort()).toEqual(['fork:5', 'gap:5']);
  });

  test('fetched neighbourhoods refuse questions they were not fetched for', () => {
    const n = new FetchedNeighbourhood(new Map([[1, []]]), new Map());
    expect(n.at(1)).toEqual([]);
    expect(() => n.at(2)).toThrow(/not fetched/);
    expect(() => n.below(2)).toThrow(/not fetched/);
  });

  test('property: a whole chain delivered in any batches and any order ends with no open marker', () => {
    fc.assert(
      fc.property(
        fc
          .integer({ min: 1, max: 40 })
          .chain((n) =>
            fc.tuple(
              fc.shuffledSubarray(range(1, n), { minLength: n, maxLength: n }),
              fc.array(fc.integer({ min: 1, max: 8 }), { minLength: n, maxLength: n }),
            ),
          ),
        ([order, sizes]) => {
          const s = new MemoryStream();
          let i = 0;
          for (const size of sizes) {
            if (i >= order.length) break;
            s.apply(order.slice(i, i + size));
            i += size;
          }
          expect(s.open()).toEqual([]);
          expect([...s.markers.values()].every((m) => m.kind === 'gap')).toBe(true);
          expect(s.head).toMatchObject({ firstSeq: 1, lastSeq: order.length, count: order.length });
        },
      ),
      { numRuns: 300 },
    );
  });

  test('property: a dropped event leaves exactly one open gap', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 3, max: 30 }).chain((n) => fc.tuple(fc.constant(n), fc.integer({ min: 2, max: n - 1 }))),
        ([n, dropped]) => {
          const s = new MemoryStream();
          for (const l of range(1, n)) if (l.seq !== dropped) s.apply([l]);
          expect(s.open()).toEqual([`gap:${dropped + 1}`]);
        },
      ),
    );
  });
});
