/** The events of one finished record (or one session event), with what the spool tracks of them. */
export interface EventGroup {
  /** The session, and the record whose begin these events complete (null for session events). */
  session: string | null;
  record: number | null;
  /** The session's next session.seq after these events. */
  nextSeq: number | null;
  /** These events include the session's session.end. */
  ended: boolean;
  /** Canonical JSON, one line per event, no newlines. */
  lines: string[];
}

/** Chained events in stream order, as JSON lines (each ending in a newline) and by group. */
export interface EventBatch {
  /** The chain after the batch (its last event's seq and hash); null for an empty batch. */
  head: { seq: number; prev: string | null } | null;
  jsonl: string;
  groups: readonly EventGroup[];
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
