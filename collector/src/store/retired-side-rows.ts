/**
 * Retention's delete of the side table (`byline_event_tables`, one row per table an event names):
 * by each retired event's exact row key, (name, time_us, stream, chain_seq, event_id), so the
 * delete walks the index that starts with (name, time_us) instead of reading the whole table for
 * the event ids (no index starts with event_id or stream, and one would cost every insert). The
 * names come from the retired events themselves (`statement.tables`, as ingest wrote them).
 */

/** One retired event as retention reads it: its key and `statement.tables` as stored (any JSON). */
export interface RetiredEventKey {
  id: string;
  seq: number;
  timeUs: number;
  tables: unknown;
}

/** The side-table keys of retired events of one stream, column by column (for `unnest`). */
export interface SideRowKeys {
  names: string[];
  timeUs: number[];
  seqs: number[];
  ids: string[];
}

/**
 * The side-table rows ingest wrote for `events`: one per distinct table name (ingest drops
 * repeats, so must this; a non-array or non-string entry was never written).
 */
export function sideRowKeys(events: readonly RetiredEventKey[]): SideRowKeys {
  const keys: SideRowKeys = { names: [], timeUs: [], seqs: [], ids: [] };
  for (const e of events) {
    if (!Array.isArray(e.tables)) continue;
    const seen = new Set<string>();
    for (const name of e.tables) {
      if (typeof name !== 'string' || seen.has(name)) continue;
      seen.add(name);
      keys.names.push(name);
      keys.timeUs.push(e.timeUs);
      keys.seqs.push(e.seq);
      keys.ids.push(e.id);
    }
  }
  return keys;
}

/** Keys per DELETE: bounds the statement's size and keeps the planner on index probes. */
export const SIDE_ROWS_PER_DELETE = 5000;

/** `keys` in slices of at most `size` keys. */
export function* sliced(keys: SideRowKeys, size = SIDE_ROWS_PER_DELETE): Generator<SideRowKeys> {
  for (let i = 0; i < keys.names.length; i += size) {
    yield {
      names: keys.names.slice(i, i + size),
      timeUs: keys.timeUs.slice(i, i + size),
      seqs: keys.seqs.slice(i, i + size),
      ids: keys.ids.slice(i, i + size),
    };
  }
}

/** PostgreSQL: $1 the stream, $2..$5 the keys' names, times, seqs and ids. */
export const PG_DELETE_SIDE_ROWS = `DELETE FROM byline_event_tables t
  USING unnest($2::text[], $3::bigint[], $4::bigint[], $5::text[]) AS k(name, time_us, chain_seq, event_id)
  WHERE t.name = k.name AND t.time_us = k.time_us AND t.stream = $1
    AND t.chain_seq = k.chain_seq AND t.event_id = k.event_id`;

/** SQLite: one row by its primary key (name, time_us, stream, chain_seq, event_id). */
export const SQLITE_DELETE_SIDE_ROW = `DELETE FROM byline_event_tables
  WHERE name = ? AND time_us = ? AND stream = ? AND chain_seq = ? AND event_id = ?`;
