/**
 * Drives approvalAction over every Approval in the cluster: on each change, and at the next
 * expiresAt (at most a minute apart, so a missed timer costs a minute, not forever). Only the leader
 * writes. A failed write is tried again a second later.
 */
import type { Approval } from '@byline/api';
import type { Logger } from 'pino';
import { isConflict, isNotFound, type KubeClient, paths } from '../kube/client.js';
import type { WatchCache } from '../kube/watch-cache.js';
import { approvalAction } from './lifecycle.js';

const MAX_SLEEP_MS = 60_000;
const RETRY_MS = 1_000;

export interface ApprovalControllerOptions {
  client: KubeClient;
  approvals: WatchCache<Approval & { metadata: { name: string } }>;
  isLeader: () => boolean;
  logger: Logger;
  now?: () => number;
}

export class ApprovalController {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private running = false;
  private again = false;
  private stopped = false;
  private unsubscribe: (() => void) | undefined;
  private readonly now: () => number;

  constructor(private readonly o: ApprovalControllerOptions) {
    this.now = o.now ?? Date.now;
  }

  start(): void {
    this.unsubscribe = this.o.approvals.onChange(() => this.schedule(0));
    this.schedule(0);
  }

  stop(): void {
    this.stopped = true;
    this.unsubscribe?.();
    clearTimeout(this.timer);
  }

  /** Sweep now (after gaining the lease, for one). */
  resume(): void {
    this.schedule(0);
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.sweep(), Math.max(0, Math.min(delayMs, MAX_SLEEP_MS)));
    this.timer.unref();
  }

  private async sweep(): Promise<void> {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    let next = this.now() + MAX_SLEEP_MS;
    try {
      for (const approval of this.o.approvals.list()) {
        const decided = approvalAction(approval, this.now());
        if (decided.action === 'none') {
          if (decided.nextAt !== undefined) next = Math.min(next, decided.nextAt);
          continue;
        }
        if (!this.o.isLeader()) continue;
        const { namespace = '', name } = approval.metadata;
        try {
          await this.o.client.patch(`${paths.group('byline.dev', 'v1alpha1', 'approvals', namespace, name)}/status`, {
            metadata: { resourceVersion: approval.metadata.resourceVersion },
            status: decided.status,
          });
          this.o.logger.info(
            { approval: `${namespace}/${name}`, phase: decided.status.phase },
            `approval ${decided.why}d`,
          );
        } catch (err) {
          // A conflict means a newer version is on its way through the cache; it will be judged then.
          if (!isNotFound(err) && !isConflict(err)) {
            this.o.logger.warn(
              { approval: `${namespace}/${name}`, err: (err as Error).message },
              'approval status write failed',
            );
            next = Math.min(next, this.now() + RETRY_MS);
          }
        }
      }
    } finally {
      this.running = false;
    }
    if (this.again) {
      this.again = false;
      this.schedule(0);
    } else this.schedule(next - this.now());
  }
}
