/**
 * The compact records the forward path produces: one per Query, Execute or FunctionCall message.
 * They hold only what was copied out of the wire (text, parameter sizes or values, result tags);
 * shaping them into AuditEvents — splitting, classifying, tables, JSON, hashing — happens later,
 * off the forward path.
 */

import type { Prepared } from './sql-prepared.js';

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

/**
 * The exact bytes of a statement text that `text` does not render exactly (a client encoding
 * converted lossily, or scanned byte for byte by a SQL_ASCII server): see capture/encoding.ts.
 */
export interface RawText {
  bytes: Buffer;
  /** The client encoding, as Postgres names it. */
  encoding: string;
  /** Postgres scans these bytes unconverted (server_encoding SQL_ASCII). */
  bytewise: boolean;
}

/** The policy's answer for one statement (sidecar/src/policy/engine.ts Decision, as the record keeps it). */
export interface AuthzDecision {
  readonly allow: boolean;
  readonly rule: string;
  readonly approval: {
    readonly name: string;
    readonly approvedBy: string;
    /** Absent when the collector did not say (an older one, or an Approval stamped before the field). */
    readonly requestedBy?: string;
    readonly reason: string | null;
    readonly ticket: string | null;
    readonly expiresAt: string;
  } | null;
  /** For a denial: the ErrorResponse's message and hint. */
  readonly message: string | null;
  readonly hint: string | null;
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
  /**
   * How Postgres scanned the text (tokenizer.ts flags: standard_conforming_strings), as it stood
   * when Postgres started on the message (or parsed the prepared statement). Absent: defaults.
   */
  scanFlags?: number;
  /** Set only when `text` is not exactly the bytes Postgres received. */
  raw?: RawText | null;
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
  /**
   * The policy's decision per statement (one for an Execute or FunctionCall; per statement of a
   * Query, or a single one for all of them). When one denies, the message was not forwarded: a
   * placeholder that fails in Postgres went in its place (proxy/denial-placeholder.ts).
   */
  authz?: readonly AuthzDecision[] | null;
}

/** Receives records from the forward path. Both calls must be cheap and must not throw. */
export interface RecordSink {
  /** Before the message is forwarded to Postgres. */
  begin(record: StatementRecord): void;
  /**
   * Called for every record just before `begin`: the policy's decisions go on the record here.
   * `statement` is what an Execute runs (undefined when unknown; null for a Query or FunctionCall).
   */
  authorize?(record: StatementRecord, statement: Prepared | undefined | null): void;
  /** Once every result of the record is known (or can no longer be). */
  finish(record: StatementRecord): void;
}
