/**
 * Strict durability: results from Postgres wait in the client outbox until the begin records of
 * the statements they answer are fsynced (one fsync for every session waiting at that moment).
 * While they wait, the upstream is not read (its own pause reason, which nothing but the fsync
 * clears) and the client outbox is not written.
 */
import type { Spool } from '../spool/spool.js';
import { PauseReason, type ReadGate } from './flow-control.js';

export class DurabilityGate {
  private waiting = false;

  constructor(
    private readonly spool: Spool,
    private readonly upstream: ReadGate,
    private readonly onDurable: () => void,
  ) {}

  /** Results are in the outbox: hold them until everything written so far is durable. */
  hold(): void {
    this.upstream.pause(PauseReason.durability);
    if (this.waiting) return;
    this.waiting = true;
    this.spool.whenDurable(this.release);
  }

  /** Output to the client must wait. */
  get holding(): boolean {
    return this.waiting;
  }

  private readonly release = (): void => {
    this.waiting = false;
    this.upstream.release(PauseReason.durability);
    this.onDurable();
  };
}
