/**
 * The compact records the forward path produces: one per Query, Execute or FunctionCall message.
 * They hold only what was copied out of the wire (text, parameter sizes or values, result tags);
 * shaping them into AuditEvents — splitting, classifying, tables, JSON, hashing — happens later,
 * off the forward path.
 */

export type RecordKind = 'query' | 'execute' | 'function';

/** How one statement ended, as Postgres said it. */
export interface ResultRecord {
  status: 'ok' | 'error' | 'cancelled' | 'unknown' | 'not-executed';
  tag: string | null;
  rows: number | null;
  sqlstate: string | null;
  error: string | null;
  /** A COPY data transfer took place. */
  copy: boolean;
  /** From when Postgres could start on it (its arrival, or the previous result) to its result. */
  durationUs: number;
}

export interface ParamCapture {
  lengths: number[];
  formats: number[];
  /** The values, copied; only kept when parameters are recorded in full. */
  values: (Buffer | null)[] | null;
}

export interface StatementRecord {
  kind: RecordKind;
  /** Date.now() when the message reached the sidecar. */
  receivedAt: number;
  /** performance.now() when the message reached the sidecar. */
  startedAt: number;
  /** Query text, the prepared statement's text for an Execute, or a description of a FunctionCall. */
  text: string;
  preparedName: string | null;
  params: ParamCapture | null;
  /** application_name in force when the message arrived. */
  applicationName: string | null;
  /** One per statement that completed (a Query may hold several); filled as results arrive. */
  results: ResultRecord[];
  /** Why the remaining statements did not run, when Postgres skipped them. */
  notExecuted: string | null;
  /** Session-level sequence of this record, in arrival order. */
  seq: number;
  /** Run without being recorded (spool full and `onBacklogFull: drop`): no event, only a count. */
  unrecorded: boolean;
}

/** Receives records from the forward path. Both calls must be cheap and must not throw. */
export interface RecordSink {
  /** Before the message is forwarded to Postgres. */
  begin(record: StatementRecord): void;
  /** Once every result of the record is known (or can no longer be). */
  finish(record: StatementRecord): void;
}
