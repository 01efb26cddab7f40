/** What the stores keep and answer, independent of the database behind them. */
import type { SignedHead, StreamEvidence } from '@byline/api';
import type { ExportState, FollowSource } from './follow-types.js';
import type { RetentionRules, RetiredStream } from './retention.js';

/** One validated event as the ingest path hands it to a store: its exact text plus the columns queries need. */
export interface IngestEvent {
  id: string;
  /** `time` as microseconds since the epoch: the sort key. */
  timeUs: number;
  type: string;
  identity: string;
  sessionId: string;
  sessionSeq: number;
  route: string;
  database: string | null;
  stream: string;
  seq: number;
  prev: string | null;
  hash: string;
  /** `authz.approval.name`, if any. */
  approval: string | null;
  /** `statement.class`, if any: a column of its own so the filter on it needs no JSON lookup. */
  statementClass: string | null;
  /** `result.status`, if any (likewise). */
  status: string | null;
  /** `statement.tables`, without repeats. */
  tables: string[];
  /** The line as the sidecar sent it (canonical JSON); stored and returned verbatim. */
  json: string;
}

export type MarkerKind = 'gap' | 'break' | 'fork';

/** A chain problem noticed at ingest. Events are stored regardless: they are still evidence. */
export interface ChainMarker {
  stream: string;
  /** gap: the event whose predecessor was missing; break: the event whose `prev` did not link; fork: the seq held twice. */
  seq: number;
  kind: MarkerKind;
  detail: string;
  detectedAt: string;
  /** Set when a late batch filled the gap; only gaps are ever resolved. */
  resolvedAt: string | null;
}

export interface InsertResult {
  accepted: number;
  duplicates: number;
  /** Markers this batch opened (already-known ones are not repeated). */
  markers: ChainMarker[];
  /** Gap markers this batch resolved. */
  resolved: number;
  /**
   * Events at seqs a retention checkpoint already covers (resent after their stream's prefix was
   * retired): acknowledged, not stored, and counted beside the checkpoint.
   */
  retired: number;
}

/** Who writes a batch, and the head the sidecar signed for it. */
export interface BatchWriter {
  /** The writer's identity as a stream owner (`streamOwner`): a stream takes the owner of its first batch. */
  owner: string;
  /**
   * The head of the batch, signed by the sidecar's key for its stream, already checked by the
   * ingest path (signature valid, head in the batch). Its key is registered for the stream, bound
   * to `owner`, the first time it is seen.
   */
  signedHead?: SignedHead;
  /**
   * The collector's receipt for the head's key (stream, key, owner), when it has a receipt key.
   * Kept from the first batch that carries one (a key registered before receipts were configured
   * gets its receipt from its next signed batch).
   */
  keyReceipt?: string;
}

/** A batch for a stream that another writer opened; nothing of the batch was stored. */
export class StreamOwnerError extends Error {
  constructor(
    readonly stream: string,
    readonly owner: string,
    readonly writer: string,
  ) {
    super(
      `stream ${stream} belongs to ${owner}; ${writer} may not append to it (a writer extends only its own streams)`,
    );
  }
}

export interface StreamSummary {
  stream: string;
  firstSeq: number;
  lastSeq: number;
  count: number;
  /** `chain.hash` of the event at `lastSeq` (the first one stored, should that seq be forked). */
  headHash: string;
  openMarkers: ChainMarker[];
}

export interface EventFilter {
  identity?: string;
  table?: string;
  route?: string;
  database?: string;
  session?: string;
  approval?: string;
  stream?: string;
  type?: string;
  /** `statement.class`. */
  statementClass?: string;
  /** `result.status`. */
  status?: string;
  /** A substring of `statement.text`, matched exactly (case-sensitive, no wildcards). */
  text?: string;
  /** Inclusive, microseconds. */
  sinceUs?: number;
  /** Exclusive, microseconds. */
  untilUs?: number;
}

/** The position after which the next page starts: the sort key of the last event returned. */
export interface CursorKey {
  timeUs: number;
  stream: string;
  seq: number;
  id: string;
}

export interface StoredEvent {
  key: CursorKey;
  json: string;
  receivedAt: string;
}

export interface EventPage {
  events: StoredEvent[];
  /** Set when more events match after the last one returned. */
  next: CursorKey | null;
}

/** Also followed in insertion order (follow, exporters) and keeps exporters' positions. */
export interface EventStore extends FollowSource, ExportState {
  /** Creates or migrates the schema; safe to call from several replicas at once. */
  init(): Promise<void>;
  /**
   * Stores a batch all-or-nothing in one transaction. Events whose `id` is already stored are
   * acknowledged as duplicates and not stored again; chain problems become markers.
   */
  insertBatch(events: readonly IngestEvent[], receivedAt: Date, writer?: BatchWriter): Promise<InsertResult>;
  /** Events matching `filter`, ordered by time, stream, seq (and id), after `after`. */
  query(filter: EventFilter, limit: number, after?: CursorKey): Promise<EventPage>;
  /** Every marker, open or resolved, of these streams. */
  markers(streams: readonly string[]): Promise<ChainMarker[]>;
  streams(): Promise<StreamSummary[]>;
  /** What `byline verify` checks beside the events: head seq, every marker, registered keys, signed heads. */
  evidence(streams: readonly string[]): Promise<StreamEvidence[]>;
  streamHead(stream: string): Promise<{ seq: number; hash: string } | undefined>;
  /**
   * Deletes, per stream, the prefix of events older than its namespace's retention and records a
   * checkpoint (hash of the last retired event, digest of all) that `byline verify` checks the
   * remainder from.
   */
  retire(rules: RetentionRules, now: Date): Promise<RetiredStream[]>;
  /** Throws unless the database answers. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
