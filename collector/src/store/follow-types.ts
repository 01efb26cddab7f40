/**
 * Following the store in the order events were stored (not the order of their `time`), so a
 * reader that resumes from a position sees every event stored after it exactly once, however late
 * the event's own time is.
 *
 * A position is (tx, ord): in SQLite transactions serialize, so `ord` (a never-reused counter set
 * inside the inserting transaction) alone is commit order and `tx` is always "0". In PostgreSQL an
 * id sequence is handed out before commit, so ids can commit out of order; each row also records
 * the id of the transaction that inserted it (`tx`, xid8) and a reader only sees rows whose
 * transaction is older than every transaction still running (the snapshot's xmin). Such a
 * transaction has finished, so no row with a smaller (tx, ord) can appear later.
 */
import type { EventFilter, StoredEvent } from './types.js';

export interface FollowPosition {
  /** Inserting transaction id (PostgreSQL xid8, decimal), "0" in SQLite. */
  tx: string;
  ord: number;
}

export const FOLLOW_START: FollowPosition = { tx: '0', ord: 0 };

export interface FollowPage {
  events: StoredEvent[];
  /**
   * Where to resume: after the last event returned or, when the page is not full, after
   * everything the store had settled when it answered (so filtered follows do not rescan).
   */
  position: FollowPosition;
}

/** A durable cursor of one exporter, and the events it gave up on. */
export interface ExportState {
  /** The exporter's saved position, or undefined before its first delivery. */
  exportPosition(exporter: string): Promise<FollowPosition | undefined>;
  /** Saves the exporter's position (after its receiver acknowledged everything before it). */
  saveExportPosition(exporter: string, position: FollowPosition): Promise<void>;
  /** Records events the exporter could not deliver after all its retries. */
  recordDeadLetters(exporter: string, eventIds: readonly string[], error: string, attempts: number): Promise<void>;
  deadLetters(exporter: string): Promise<{ eventId: string; error: string; attempts: number; failedAt: string }[]>;
}

export interface FollowSource {
  /** Events matching `filter` stored after `after`, in insertion (commit) order, at most `limit`. */
  follow(filter: EventFilter, after: FollowPosition, limit: number): Promise<FollowPage>;
  /** The position after everything stored so far (for a follow that starts at the end). */
  followEnd(): Promise<FollowPosition>;
}

export function comparePositions(a: FollowPosition, b: FollowPosition): number {
  const ta = BigInt(a.tx);
  const tb = BigInt(b.tx);
  if (ta !== tb) return ta < tb ? -1 : 1;
  return a.ord - b.ord;
}

/** Opaque follow cursors: base64url JSON, distinct from page cursors by their leading tag. */
export function encodeFollowCursor(p: FollowPosition): string {
  return Buffer.from(JSON.stringify(['f', p.tx, p.ord])).toString('base64url');
}

export function decodeFollowCursor(text: string): FollowPosition | undefined {
  if (!/^[A-Za-z0-9_-]{1,512}$/.test(text)) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (!Array.isArray(v) || v.length !== 3 || v[0] !== 'f') return undefined;
  const [, tx, ord] = v as unknown[];
  if (typeof tx !== 'string' || !/^(0|[1-9][0-9]{0,19})$/.test(tx) || BigInt(tx) >= 2n ** 64n) return undefined;
  if (!Number.isSafeInteger(ord) || (ord as number) < 0) return undefined;
  return { tx, ord: ord as number };
}
