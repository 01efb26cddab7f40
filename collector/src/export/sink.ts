/** What an exporter delivers to, and how a failed delivery is told apart: retry it, or give up on it. */
import type { StoredEvent } from '../store/types.js';

export interface Sink {
  /** Resolves once the receiver has taken every event of the batch; throws a DeliveryError otherwise. */
  deliver(events: readonly StoredEvent[]): Promise<void>;
  close(): Promise<void>;
}

export class DeliveryError extends Error {
  /**
   * `permanent`: the receiver refused these events as they are (a 4xx other than 408/429);
   * sending them again would fail again. Otherwise (network, timeout, 408, 429, 5xx) it may work later.
   */
  constructor(
    message: string,
    readonly permanent: boolean,
  ) {
    super(message);
  }
}

/** Whether an HTTP status means "this request will never be taken". */
export function isPermanentStatus(status: number): boolean {
  return status >= 400 && status < 500 && status !== 408 && status !== 429;
}
