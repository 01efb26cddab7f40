import type { AuditEvent } from '@byline/api';

/**
 * Where finished, chained events go. The file sink is the first; the durable spool and the
 * collector shipper implement the same interface.
 */
export interface AuditSink {
  readonly name: string;
  /** Accepts a batch in chain order. Resolves once the batch is handed to the operating system. */
  write(events: readonly AuditEvent[]): Promise<void>;
  /** Resolves when everything accepted so far is durable (fsync for files). */
  flush(): Promise<void>;
  close(): Promise<void>;
}
