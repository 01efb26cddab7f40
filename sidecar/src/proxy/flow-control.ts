/**
 * Why a socket is not being read. Each reason is set and cleared by the one party that owns it,
 * and the socket resumes only when no reason is left: a client `drain` (backpressure) cannot
 * resume an upstream that strict durability paused until an fsync completes.
 */

/** Reasons are bits, so a side can be paused for several at once without allocating. */
export const PauseReason = {
  /** The other side's socket asked the writer to wait for 'drain'. */
  backpressure: 1,
  /** Strict durability: results wait until the statements they answer are fsynced. */
  durability: 2,
} as const;
export type PauseReason = (typeof PauseReason)[keyof typeof PauseReason];

export interface Pausable {
  pause(): unknown;
  resume(): unknown;
}

export class ReadGate {
  private reasons = 0;

  constructor(private target: Pausable) {}

  /** The socket changed (TLS took over a plain one): it inherits the reasons in force. */
  retarget(target: Pausable): void {
    this.target = target;
    if (this.reasons !== 0) target.pause();
  }

  pause(reason: PauseReason): void {
    if (this.reasons === 0) this.target.pause();
    this.reasons |= reason;
  }

  /** Clears one reason; the socket resumes only when it was the last. */
  release(reason: PauseReason): void {
    if ((this.reasons & reason) === 0) return;
    this.reasons &= ~reason;
    if (this.reasons === 0) this.target.resume();
  }

  pausedFor(reason: PauseReason): boolean {
    return (this.reasons & reason) !== 0;
  }

  get paused(): boolean {
    return this.reasons !== 0;
  }
}
