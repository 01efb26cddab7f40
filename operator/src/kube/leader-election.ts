/**
 * Leader election with a coordination.k8s.io/v1 Lease, as client-go's leaderelection does it.
 *
 *   FOLLOWER ── every retryPeriod: read the Lease ──▶ free, expired, or ours? ── conditional update ok ──▶ LEADER
 *   LEADER   ── every retryPeriod: renew (conditional update) ── ok: lastRenew = now
 *            ── not renewed for renewDeadline, or the Lease names someone else ──▶ FOLLOWER (onStoppedLeading at once)
 *
 * "Expired" is judged by this replica's own clock: the holder's record must have stayed unchanged for
 * leaseDuration since we first saw it, so clock skew between replicas does not matter. `isLeader()` is
 * also false once renewDeadline has passed without a renewal, even if the timer that would notice is
 * late (a blocked event loop), so a stale leader never writes. `stop()` releases the Lease (holder
 * cleared) so that another replica takes over at its next retry instead of after leaseDuration.
 */
import { isConflict, isNotFound, type KubeClient, paths } from './client.js';

export interface LeaseSpec {
  holderIdentity?: string | null;
  leaseDurationSeconds?: number;
  acquireTime?: string | null;
  renewTime?: string | null;
  leaseTransitions?: number;
}

interface Lease {
  apiVersion: 'coordination.k8s.io/v1';
  kind: 'Lease';
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec?: LeaseSpec;
}

export interface LeaderElectionOptions {
  client: KubeClient;
  namespace: string;
  name?: string;
  identity: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  onStartedLeading: () => void;
  onStoppedLeading: () => void;
  log?: (level: 'info' | 'warn', message: string, err?: unknown) => void;
  now?: () => number;
}

const microTime = (ms: number) => new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');

export class LeaderElector {
  readonly name: string;
  private readonly leaseDurationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private readonly now: () => number;
  private leading = false;
  private lastRenew = 0;
  private observed: { record: string; at: number } | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private stopped = false;
  private ticking: Promise<void> = Promise.resolve();

  constructor(private readonly o: LeaderElectionOptions) {
    this.name = o.name ?? 'byline-operator';
    this.leaseDurationMs = o.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = o.renewDeadlineMs ?? 10_000;
    this.retryPeriodMs = o.retryPeriodMs ?? 2_000;
    this.now = o.now ?? Date.now;
  }

  isLeader(): boolean {
    return this.leading && this.now() - this.lastRenew < this.renewDeadlineMs;
  }

  start(): void {
    this.schedule(0);
  }

  /** Stops trying; a leader steps down at once and (by default) releases the Lease. */
  async stop(options: { release?: boolean } = {}): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.ticking;
    const wasLeading = this.leading;
    this.stepDown('stopping');
    if (wasLeading && options.release !== false) await this.release();
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.ticking = this.tick().finally(() => {
        // client-go's jitter on the follower's retry, so replicas do not fire in step.
        this.schedule(this.leading ? this.retryPeriodMs : this.retryPeriodMs * (1 + Math.random() * 0.2));
      });
    }, delayMs);
    this.timer.unref?.();
  }

  private async tick(): Promise<void> {
    let ok = false;
    try {
      ok = await this.tryAcquireOrRenew();
    } catch (err) {
      this.o.log?.('warn', `lease ${this.o.namespace}/${this.name}: ${(err as Error).message}`, err);
    }
    if (this.stopped) return;
    if (ok) {
      this.lastRenew = this.now();
      if (!this.leading) {
        this.leading = true;
        this.o.log?.('info', `became leader (lease ${this.o.namespace}/${this.name})`);
        this.o.onStartedLeading();
      }
    } else if (this.leading && this.now() - this.lastRenew >= this.renewDeadlineMs) {
      this.stepDown(`could not renew the lease within ${this.renewDeadlineMs} ms`);
    }
  }

  private stepDown(why: string): void {
    if (!this.leading) return;
    this.leading = false;
    this.o.log?.('warn', `stopped leading: ${why}`);
    this.o.onStoppedLeading();
  }

  /** True when the Lease is ours after this call. */
  private async tryAcquireOrRenew(): Promise<boolean> {
    const path = paths.group('coordination.k8s.io', 'v1', 'leases', this.o.namespace, this.name);
    const now = this.now();
    const mine: LeaseSpec = {
      holderIdentity: this.o.identity,
      leaseDurationSeconds: Math.ceil(this.leaseDurationMs / 1000),
      acquireTime: microTime(now),
      renewTime: microTime(now),
      leaseTransitions: 0,
    };
    let lease: Lease;
    try {
      lease = await this.o.client.get<Lease>(path);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      try {
        await this.o.client.create(paths.group('coordination.k8s.io', 'v1', 'leases', this.o.namespace), {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name: this.name, namespace: this.o.namespace },
          spec: mine,
        });
        return true;
      } catch (e) {
        if (isConflict(e)) return false;
        throw e;
      }
    }
    const spec = lease.spec ?? {};
    const record = JSON.stringify([spec.holderIdentity, spec.renewTime, spec.leaseDurationSeconds]);
    if (this.observed?.record !== record) this.observed = { record, at: now };
    const holder = spec.holderIdentity ?? '';
    const ours = holder === this.o.identity;
    if (!ours && this.leading) {
      // Someone else holds it: we lost it, whatever our timers say.
      this.stepDown(`lease now held by ${holder || 'nobody'}`);
    }
    const duration = (spec.leaseDurationSeconds ?? 0) * 1000;
    if (holder !== '' && !ours && this.observed.at + duration > now) return false;
    const next: LeaseSpec = ours
      ? {
          ...spec,
          ...mine,
          acquireTime: spec.acquireTime ?? mine.acquireTime,
          leaseTransitions: spec.leaseTransitions ?? 0,
        }
      : { ...mine, leaseTransitions: (spec.leaseTransitions ?? 0) + (holder === '' ? 0 : 1) };
    try {
      await this.o.client.replace(path, { ...lease, spec: next });
      return true;
    } catch (err) {
      if (isConflict(err)) return false;
      throw err;
    }
  }

  private async release(): Promise<void> {
    const path = paths.group('coordination.k8s.io', 'v1', 'leases', this.o.namespace, this.name);
    try {
      const lease = await this.o.client.get<Lease>(path);
      if (lease.spec?.holderIdentity !== this.o.identity) return;
      const now = microTime(this.now());
      await this.o.client.replace(path, {
        ...lease,
        spec: { ...lease.spec, holderIdentity: null, leaseDurationSeconds: 1, acquireTime: now, renewTime: now },
      });
    } catch (err) {
      this.o.log?.('warn', `releasing lease ${this.o.namespace}/${this.name} failed`, err);
    }
  }
}
