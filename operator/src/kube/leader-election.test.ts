import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type KubeClient, KubeError } from './client.js';
import { LeaderElector, type LeaseSpec } from './leader-election.js';

/** One Lease in memory with the API server's optimistic concurrency; `down` makes every call fail. */
class FakeLeases {
  lease: { metadata: { name: string; namespace: string; resourceVersion: string }; spec: LeaseSpec } | undefined;
  rv = 0;
  down = false;
  client = {
    get: async () => {
      this.check();
      if (!this.lease) throw new KubeError(404, 'NotFound', 'not found');
      return structuredClone(this.lease);
    },
    create: async (_path: string, body: { metadata: { name: string; namespace: string }; spec: LeaseSpec }) => {
      this.check();
      if (this.lease) throw new KubeError(409, 'AlreadyExists', 'exists');
      this.lease = { metadata: { ...body.metadata, resourceVersion: String(++this.rv) }, spec: body.spec };
      return structuredClone(this.lease);
    },
    replace: async (_path: string, body: { metadata: { resourceVersion: string }; spec: LeaseSpec }) => {
      this.check();
      if (!this.lease || body.metadata.resourceVersion !== this.lease.metadata.resourceVersion) {
        throw new KubeError(409, 'Conflict', 'conflict');
      }
      this.lease = { metadata: { ...this.lease.metadata, resourceVersion: String(++this.rv) }, spec: body.spec };
      return structuredClone(this.lease);
    },
  } as unknown as KubeClient;
  private check() {
    if (this.down) throw new Error('connection refused');
  }
}

function elector(leases: FakeLeases, identity: string, log: string[]) {
  return new LeaderElector({
    client: leases.client,
    namespace: 'byline',
    identity,
    onStartedLeading: () => log.push(`${identity} started`),
    onStoppedLeading: () => log.push(`${identity} stopped`),
  });
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('LeaderElector', () => {
  it('one leader; a crashed leader is replaced after the lease duration, not before', async () => {
    const leases = new FakeLeases();
    const log: string[] = [];
    const a = elector(leases, 'a', log);
    const b = elector(leases, 'b', log);
    a.start();
    await vi.advanceTimersByTimeAsync(10);
    b.start();
    await vi.advanceTimersByTimeAsync(5_000);
    expect(a.isLeader()).toBe(true);
    expect(b.isLeader()).toBe(false);
    expect(leases.lease?.spec).toMatchObject({ holderIdentity: 'a', leaseDurationSeconds: 15 });

    await a.stop({ release: false }); // a crash: the Lease still names a
    const crashedAt = Date.now();
    while (!b.isLeader()) await vi.advanceTimersByTimeAsync(100);
    const waited = Date.now() - crashedAt;
    expect(waited).toBeGreaterThanOrEqual(13_000);
    expect(waited).toBeLessThanOrEqual(15_000 + 2_400 + 100);
    expect(leases.lease?.spec).toMatchObject({ holderIdentity: 'b', leaseTransitions: 1 });
    expect(log).toEqual(['a started', 'a stopped', 'b started']);
    await b.stop();
  });

  it('a clean stop releases the Lease, so the next replica takes it at its next try', async () => {
    const leases = new FakeLeases();
    const log: string[] = [];
    const a = elector(leases, 'a', log);
    const b = elector(leases, 'b', log);
    a.start();
    await vi.advanceTimersByTimeAsync(10);
    b.start();
    await vi.advanceTimersByTimeAsync(100);
    await a.stop();
    expect(leases.lease?.spec.holderIdentity).toBeNull();
    await vi.advanceTimersByTimeAsync(2_500);
    expect(b.isLeader()).toBe(true);
    await b.stop();
  });

  it('a leader that cannot renew stops leading once the renew deadline passes', async () => {
    const leases = new FakeLeases();
    const log: string[] = [];
    const a = elector(leases, 'a', log);
    a.start();
    await vi.advanceTimersByTimeAsync(10);
    expect(a.isLeader()).toBe(true);
    leases.down = true;
    await vi.advanceTimersByTimeAsync(9_000);
    expect(a.isLeader()).toBe(true);
    await vi.advanceTimersByTimeAsync(1_100);
    expect(a.isLeader()).toBe(false);
    await vi.advanceTimersByTimeAsync(2_000);
    expect(log).toEqual(['a started', 'a stopped']);
    await a.stop();
  });

  it('steps down at once when the Lease names someone else', async () => {
    const leases = new FakeLeases();
    const log: string[] = [];
    const a = elector(leases, 'a', log);
    a.start();
    await vi.advanceTimersByTimeAsync(10);
    leases.lease!.spec.holderIdentity = 'usurper';
    leases.lease!.metadata.resourceVersion = String(++leases.rv);
    await vi.advanceTimersByTimeAsync(2_000);
    expect(a.isLeader()).toBe(false);
    expect(log).toEqual(['a started', 'a stopped']);
    await a.stop();
  });
});
