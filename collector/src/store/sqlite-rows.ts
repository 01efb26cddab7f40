/**
 * Multi-row INSERTs for SQLite: one statement per up to `MAX_ROWS` rows instead of one per row,
 * which saves better-sqlite3's per-call binding, stepping and resetting for every row. A statement
 * is prepared once per row count and kept.
 */
import type Database from 'better-sqlite3';
import type { IngestEvent } from './types.js';

/** 64 rows × 17 columns stays far below SQLite's limit of 32766 bound values per statement. */
const MAX_ROWS = 64;

class MultiRowInsert {
  private readonly byRows = new Map<number, Database.Statement>();

  constructor(
    private readonly db: Database.Database,
    /** `INSERT … INTO t (cols) VALUES` */
    private readonly head: string,
    private readonly columns: number,
    /** What follows the rows (`ON CONFLICT …`), or ''. */
    private readonly tail = '',
  ) {}

  /** Inserts `values` (`columns` per row, row after row); returns the rows changed. */
  run(values: unknown[]): number {
    const rows = values.length / this.columns;
    let changed = 0;
    for (let from = 0; from < rows; from += MAX_ROWS) {
      const n = Math.min(MAX_ROWS, rows - from);
      const chunk = n === rows ? values : values.slice(from * this.columns, (from + n) * this.columns);
      changed += this.statement(n).run(chunk).changes;
    }
    return changed;
  }

  private statement(rows: number): Database.Statement {
    let s = this.byRows.get(rows);
    if (!s) {
      const row = `(${new Array(this.columns).fill('?').join(', ')})`;
      s = this.db.prepare(`${this.head} ${new Array(rows).fill(row).join(', ')} ${this.tail}`);
      this.byRows.set(rows, s);
    }
    return s;
  }
}

/** Rows of `byline_events`. */
export class EventRows {
  private static readonly COLUMNS = 17;
  private readonly insert: MultiRowInsert;

  constructor(db: Database.Database) {
    this.insert = new MultiRowInsert(
      db,
      `INSERT INTO byline_events (id, time_us, event_type, identity_name, session_id, session_seq, route,
         database_name, stream, chain_seq, chain_prev, chain_hash, approval_name, received_at, event,
         statement_class, result_status) VALUES`,
      EventRows.COLUMNS,
    );
  }

  write(events: readonly IngestEvent[], receivedAt: string): number {
    const v: unknown[] = new Array(events.length * EventRows.COLUMNS);
    let i = 0;
    for (const e of events) {
      v[i++] = e.id;
      v[i++] = e.timeUs;
      v[i++] = e.type;
      v[i++] = e.identity;
      v[i++] = e.sessionId;
      v[i++] = e.sessionSeq;
      v[i++] = e.route;
      v[i++] = e.database;
      v[i++] = e.stream;
      v[i++] = e.seq;
      v[i++] = e.prev;
      v[i++] = e.hash;
      v[i++] = e.approval;
      v[i++] = receivedAt;
      v[i++] = e.json;
      v[i++] = e.statementClass;
      v[i++] = e.status;
    }
    return this.insert.run(v);
  }
}

/** Rows of `byline_event_tables`: one per table an event names. */
export class TableRows {
  private readonly insert: MultiRowInsert;

  constructor(db: Database.Database) {
    this.insert = new MultiRowInsert(
      db,
      'INSERT OR IGNORE INTO byline_event_tables (name, time_us, stream, chain_seq, event_id, identity_name) VALUES',
      6,
    );
  }

  write(events: readonly IngestEvent[]): void {
    const v: unknown[] = [];
    for (const e of events) for (const t of e.tables) v.push(t, e.timeUs, e.stream, e.seq, e.id, e.identity);
    if (v.length > 0) this.insert.run(v);
  }
}
