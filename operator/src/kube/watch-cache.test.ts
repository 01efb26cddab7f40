import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { KubeError } from './client.js';
import {
  type Change,
  type KubeObject,
  type ListResult,
  WatchCache,
  type WatchEvent,
  type WatchTransport,
} from './watch-cache.js';

interface Obj extends KubeObject {
  data?: string;
}

const obj = (name: string, rv: string, data?: string): Obj => ({
  metadata: { name, namespace: 'ns', resourceVersion: rv },
  ...(data ? { data } : {}),
});

/** A scripted transport: lists answer from a queue, each watch is recorded and driven by the test. */
class FakeTransport implements WatchTransport<Obj> {
  lists: Array<ListResult<Obj> | Error> = [];
  listCalls = 0;
  watches: Array<{
    rv: string;
    timeoutSeconds: number;
    onEvent: (e: WatchEvent) => void;
    onClose: (err?: Error) => void;
    stopped: boolean;
  }> = [];

  async list(): Promise<ListResult<Obj>> {
    this.listCalls++;
    const next = this.lists.shift();
    if (!next) throw new Error('no list scripted');
    if (next instanceof Error) throw next;
    return next;
  }

  watch(rv: string, timeoutSeconds: number, onEvent: (e: WatchEvent) => void, onClose: (err?: Error) => void) {
    const w = { rv, timeoutSeconds, onEvent, onClose, stopped: false };
    this.watches.push(w);
    return {
      stop: () => {
        w.stopped = true;
      },
    };
  }

  get last() {
    const w = this.watches.at(-1);
    if (!w) throw new Error('no watch started');
    return w;
  }
}

function setup(options: Partial<ConstructorParameters<typeof WatchCache<Obj>>[0]> = {}) {
  const transport = new FakeTransport();
  const restarts: string[] = [];
  const relists: string[] = [];
  const changes: Change<Obj>[] = [];
  const cache = new WatchCache<Obj>({
    name: 'things',
    transport,
    timeoutSeconds: 60,
    inactivityMs: 90_000,
    backoff: { initialMs: 100, maxMs: 1600 },
    random: () => 0.5,
    onRestart: (c) => restarts.push(c),
    onRelist: (c) => relists.push(c),
    ...options,
  });
  cache.onChange((c) => changes.push(c));
  return { transport, cache, restarts, relists, changes };
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('WatchCache', () => {
  it('lists, resolves synced, then watches from the list’s resourceVersion', async () => {
    const { transport, cache, changes } = setup();
    transport.lists.push({ items: [obj('a', '5')], resourceVersion: '10' });
    cache.start();
    await cache.synced();
    expect(cache.get('ns', 'a')?.metadata.resourceVersion).toBe('5');
    expect(transport.last.rv).toBe('10');
    expect(transport.last.timeoutSeconds).toBe(60);
    expect(changes.map((c) => c.type)).toEqual(['added']);

    transport.last.onEvent({ type: 'ADDED', object: obj('b', '11') });
    transport.last.onEvent({ type: 'MODIFIED', object: obj('a', '12', 'x') });
    transport.last.onEvent({ type: 'BOOKMARK', object: { metadata: { resourceVersion: '13' } } });
    transport.last.onEvent({ type: 'DELETED', object: obj('b', '14') });
    expect(cache.byNamespace('ns').map((o) => o.metadata.name)).toEqual(['a']);
    expect(cache.get('ns', 'a')?.data).toBe('x');
    expect(cache.lastResourceVersion).toBe('14');
    expect(changes.map((c) => `${c.type}:${c.object.metadata.name}`)).toEqual([
      'added:a',
      'added:b',
      'modified:a',
      'deleted:b',
    ]);
    expect(changes[2]?.old?.metadata.resourceVersion).toBe('5');
  });

  it('relists on an ERROR event with code 410 and reports what changed meanwhile', async () => {
    const { transport, cache, relists, changes } = setup();
    transport.lists.push({ items: [obj('a', '5'), obj('gone', '6')], resourceVersion: '10' });
    cache.start();
    await cache.synced();
    transport.lists.push({ items: [obj('a', '20', 'new'), obj('c', '21')], resourceVersion: '30' });
    transport.last.onEvent({ type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired' } });
    expect(transport.watches[0]?.stopped).toBe(true);
    await vi.waitFor(() => expect(transport.watches).toHaveLength(2));
    expect(relists).toEqual(['gone']);
    expect(transport.listCalls).toBe(2);
    expect(transport.last.rv).toBe('30');
    expect(cache.list().map((o) => o.metadata.name)).toEqual(['a', 'c']);
    expect(changes.slice(2).map((c) => `${c.type}:${c.object.metadata.name}`)).toEqual([
      'modified:a',
      'added:c',
      'deleted:gone',
    ]);
  });

  it('relists when the watch request itself answers 410 Gone', async () => {
    const { transport, cache, relists } = setup();
    transport.lists.push({ items: [], resourceVersion: '1' }, { items: [obj('a', '9')], resourceVersion: '9' });
    cache.start();
    await cache.synced();
    transport.last.onClose(new KubeError(410, 'Gone', 'too old resource version: 1 (9)'));
    await vi.waitFor(() => expect(transport.watches).toHaveLength(2));
    expect(relists).toEqual(['gone']);
    expect(transport.last.rv).toBe('9');
    expect(cache.get('ns', 'a')).toBeDefined();
  });

  it('restarts a silent watch from the last resourceVersion without relisting', async () => {
    const { transport, cache, restarts } = setup();
    transport.lists.push({ items: [], resourceVersion: '10' });
    cache.start();
    await cache.synced();
    transport.last.onEvent({ type: 'ADDED', object: obj('a', '11') });
    vi.advanceTimersByTime(89_999);
    expect(transport.watches).toHaveLength(1);
    // An event re-arms the timer.
    transport.last.onEvent({ type: 'BOOKMARK', object: { metadata: { resourceVersion: '12' } } });
    vi.advanceTimersByTime(89_999);
    expect(transport.watches).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(transport.watches).toHaveLength(2);
    expect(transport.watches[0]?.stopped).toBe(true);
    expect(restarts).toEqual(['silent']);
    expect(transport.last.rv).toBe('12');
    expect(transport.listCalls).toBe(1);
    // The abandoned watch's late events are ignored.
    transport.watches[0]?.onEvent({ type: 'ADDED', object: obj('zombie', '99') });
    expect(cache.get('ns', 'zombie')).toBeUndefined();
  });

  it('resumes at once when the server ends a watch normally', async () => {
    const { transport, cache, restarts } = setup();
    transport.lists.push({ items: [], resourceVersion: '10' });
    cache.start();
    await cache.synced();
    vi.advanceTimersByTime(60_000);
    transport.last.onEvent({ type: 'BOOKMARK', object: { metadata: { resourceVersion: '15' } } });
    transport.last.onClose();
    expect(transport.watches).toHaveLength(2);
    expect(transport.last.rv).toBe('15');
    expect(restarts).toEqual(['closed']);
  });

  it('backs off with jitter, growing to the cap, on repeated watch errors; resets after an event', async () => {
    const { transport, cache, restarts } = setup();
    transport.lists.push({ items: [], resourceVersion: '10' });
    cache.start();
    await cache.synced();
    const delays: number[] = [];
    for (let i = 0; i < 6; i++) {
      const before = transport.watches.length;
      transport.last.onClose(new Error('connection reset'));
      expect(cache.state).toBe('backoff');
      let waited = 0;
      while (transport.watches.length === before) {
        vi.advanceTimersByTime(10);
        waited += 10;
      }
      delays.push(waited);
    }
    // random() = 0.5 → 3/4 of the cap: 100, 200, 400, 800, 1600, 1600 ms caps.
    expect(delays).toEqual([80, 150, 300, 600, 1200, 1200]);
    expect(restarts).toEqual(Array(6).fill('error'));
    expect(transport.listCalls).toBe(1);
    transport.last.onEvent({ type: 'ADDED', object: obj('a', '11') });
    transport.last.onClose(new Error('again'));
    vi.advanceTimersByTime(80);
    expect(transport.watches).toHaveLength(8);
  });

  it('jitter spreads the delay between half and all of the cap', () => {
    const low = setup({ random: () => 0 }).cache;
    const high = setup({ random: () => 0.999 }).cache;
    expect(low.backoffDelay(3)).toBe(400);
    expect(high.backoffDelay(3)).toBe(799);
    expect(low.backoffDelay(30)).toBe(800);
  });

  it('retries a failed list with backoff and is synced only after one succeeds', async () => {
    const { transport, cache, relists } = setup();
    transport.lists.push(new Error('connection refused'), { items: [obj('a', '1')], resourceVersion: '1' });
    cache.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(cache.isSynced()).toBe(false);
    expect(cache.state).toBe('backoff');
    expect(relists).toEqual(['error']);
    await vi.advanceTimersByTimeAsync(75);
    await cache.synced();
    expect(cache.get('ns', 'a')).toBeDefined();
    expect(transport.listCalls).toBe(2);
  });

  it('backs off instead of spinning when the server ends every watch at once', async () => {
    const { transport, cache } = setup();
    transport.lists.push({ items: [], resourceVersion: '10' });
    cache.start();
    await cache.synced();
    transport.last.onClose();
    expect(transport.watches).toHaveLength(1);
    expect(cache.state).toBe('backoff');
  });

  it('a non-410 ERROR event restarts the watch after a backoff', async () => {
    const { transport, cache, relists, restarts } = setup();
    transport.lists.push({ items: [], resourceVersion: '10' });
    cache.start();
    await cache.synced();
    transport.last.onEvent({ type: 'ERROR', object: { code: 500, message: 'etcd hiccup' } });
    vi.advanceTimersByTime(80);
    expect(transport.watches).toHaveLength(2);
    expect(relists).toEqual([]);
    expect(restarts).toEqual(['error']);
  });

  it('applies the transform to every stored object and stops cleanly', async () => {
    const { transport, cache } = setup({ transform: (o) => ({ ...o, data: 'redacted' }) });
    transport.lists.push({ items: [obj('a', '1', 'secret')], resourceVersion: '1' });
    cache.start();
    await cache.synced();
    transport.last.onEvent({ type: 'ADDED', object: obj('b', '2', 'secret') });
    expect(cache.list().map((o) => o.data)).toEqual(['redacted', 'redacted']);
    cache.stop();
    expect(transport.last.stopped).toBe(true);
    transport.last.onClose();
    vi.advanceTimersByTime(1_000_000);
    expect(transport.watches).toHaveLength(1);
  });
});
