import type { AuditEvent } from '@byline/api';

/** Chained events in stream order, with their canonical JSON lines (each ending in a newline). */
export interface EventBatch {
  events: readonly AuditEvent[];
  jsonl: string;
}

/**
 * Where finished, chained events go. The file sink is the first; the durable spool and the
 * collector shipper implement the same interface.
 */
export interface AuditSink {
  readonly name: string;
  /**
   * Takes a batch, in chain order; the sink owns it from here, may gather it with others, and
   * retries failures itself (it never throws and never drops a batch).
   */
  write(batch: EventBatch): void;
  /** Resolves when everything accepted so far is durable (fsync for files). */
  flush(): Promise<void>;
  close(): Promise<void>;
}
