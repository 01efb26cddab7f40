/**
 * The SQLite schema, as migrations: `PRAGMA user_version` says how many have run. Append new
 * migrations; never edit one that has shipped.
 */
export const SQLITE_MIGRATIONS: readonly string[] = [
  `
  -- One row per event: its exact text, and the columns queries filter and sort on.
  CREATE TABLE byline_events (
    id            TEXT PRIMARY KEY,
    time_us       INTEGER NOT NULL,   -- the event's time, microseconds since 1970
    event_type    TEXT NOT NULL,
    identity_name TEXT NOT NULL,
    session_id    TEXT NOT NULL,
    session_seq   INTEGER NOT NULL,
    route         TEXT NOT NULL,
    database_name TEXT,
    stream        TEXT NOT NULL,
    chain_seq     INTEGER NOT NULL,
    chain_prev    TEXT,
    chain_hash    TEXT NOT NULL,
    approval_name TEXT,
    received_at   TEXT NOT NULL,
    event         TEXT NOT NULL       -- the line as received, never re-serialized
  );
  CREATE INDEX byline_events_order ON byline_events (time_us, stream, chain_seq, id);
  CREATE INDEX byline_events_chain ON byline_events (stream, chain_seq);
  CREATE INDEX byline_events_identity ON byline_events (identity_name, time_us);
  CREATE INDEX byline_events_session ON byline_events (session_id, time_us);
  CREATE INDEX byline_events_route ON byline_events (route, time_us);
  CREATE INDEX byline_events_database ON byline_events (database_name, time_us);
  CREATE INDEX byline_events_approval ON byline_events (approval_name, time_us) WHERE approval_name IS NOT NULL;

  -- statement.tables, one row per table name, carrying the sort key so a table query walks this index in order.
  CREATE TABLE byline_event_tables (
    name      TEXT NOT NULL,
    time_us   INTEGER NOT NULL,
    stream    TEXT NOT NULL,
    chain_seq INTEGER NOT NULL,
    event_id  TEXT NOT NULL,
    PRIMARY KEY (name, time_us, stream, chain_seq, event_id)
  ) WITHOUT ROWID;

  -- Each stream's head, so the next event is checked without looking anything else up.
  CREATE TABLE byline_streams (
    stream      TEXT PRIMARY KEY,
    first_seq   INTEGER NOT NULL,
    last_seq    INTEGER NOT NULL,
    head_hash   TEXT NOT NULL,
    event_count INTEGER NOT NULL
  );

  CREATE TABLE byline_chain_markers (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    stream      TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('gap', 'break', 'fork')),
    detail      TEXT NOT NULL,
    detected_at TEXT NOT NULL,
    resolved_at TEXT,
    UNIQUE (stream, seq, kind)
  );
  `,
  `
  -- A stream belongs to the writer that opened it (null: opened before owners were recorded).
  ALTER TABLE byline_streams ADD COLUMN owner TEXT;

  -- The sidecar's per-stream public keys, bound to the owner that registered them.
  CREATE TABLE byline_stream_keys (
    stream        TEXT NOT NULL,
    public_key    TEXT NOT NULL,      -- raw Ed25519, base64url
    owner         TEXT NOT NULL,
    receipt       TEXT,               -- the collector's signature over (stream, key, owner), if it has a receipt key
    registered_at TEXT NOT NULL,
    PRIMARY KEY (stream, public_key)
  );

  -- Each shipped batch's head (stream, seq, hash), signed by one of the stream's keys.
  CREATE TABLE byline_signed_heads (
    stream      TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    hash        TEXT NOT NULL,
    public_key  TEXT NOT NULL,
    signature   TEXT NOT NULL,
    received_at TEXT NOT NULL,
    PRIMARY KEY (stream, seq, public_key)
  );
  `,
  `
  -- Insertion order for follow and exporters: a counter that is never reused (AUTOINCREMENT), set
  -- by trigger inside the inserting transaction, so it is commit order (SQLite transactions
  -- serialize). Kept beside the events so the insert path needs no change.
  CREATE TABLE byline_event_order (
    ord      INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE
  );
  INSERT INTO byline_event_order (event_id) SELECT id FROM byline_events ORDER BY rowid;
  CREATE TRIGGER byline_events_ordered AFTER INSERT ON byline_events
  BEGIN
    INSERT INTO byline_event_order (event_id) VALUES (NEW.id);
  END;
  CREATE TRIGGER byline_events_unordered AFTER DELETE ON byline_events
  BEGIN
    DELETE FROM byline_event_order WHERE event_id = OLD.id;
  END;

  -- Each exporter's durable position, and the events it gave up on after every retry.
  CREATE TABLE byline_export_positions (
    exporter   TEXT PRIMARY KEY,
    tx         TEXT NOT NULL,
    ord        INTEGER NOT NULL,
    updated_at TEXT NOT NULL
  );
  -- Retention checkpoints: a stream's events 1..through_seq were deleted on purpose.
  CREATE TABLE byline_retirements (
    stream       TEXT PRIMARY KEY,
    through_seq  INTEGER NOT NULL,
    through_hash TEXT NOT NULL,
    event_count  INTEGER NOT NULL,
    digest       TEXT NOT NULL,
    retired_at   TEXT NOT NULL
  );
  CREATE TABLE byline_export_dead_letters (
    exporter  TEXT NOT NULL,
    event_id  TEXT NOT NULL,
    attempts  INTEGER NOT NULL,
    error     TEXT NOT NULL,
    failed_at TEXT NOT NULL,
    PRIMARY KEY (exporter, event_id)
  );
  `,
  `
  -- The event's identity beside each of its table names, so "this identity on that table" walks one
  -- index in order instead of every event on the table.
  ALTER TABLE byline_event_tables ADD COLUMN identity_name TEXT;
  UPDATE byline_event_tables SET identity_name =
    (SELECT e.identity_name FROM byline_events e WHERE e.id = byline_event_tables.event_id);
  CREATE INDEX byline_event_tables_identity
    ON byline_event_tables (name, identity_name, time_us, stream, chain_seq, event_id);
  `,
  `
  -- Indexed filters on what only the event itself holds. statement.class and result.status:
  -- expression indexes the query's json_extract(e.event, …) matches, carrying the sort key so a
  -- filtered query walks them in order. statement.text by substring: an FTS5 trigram index
  -- (case-sensitive, as the filter is) keyed by the event's insertion order, kept by the triggers
  -- that keep byline_event_order, so the insert path needs no change.
  CREATE INDEX byline_events_class
    ON byline_events (json_extract(event, '$.statement.class'), time_us, stream, chain_seq, id);
  CREATE INDEX byline_events_status
    ON byline_events (json_extract(event, '$.result.status'), time_us, stream, chain_seq, id);
  CREATE VIRTUAL TABLE byline_event_text
    USING fts5(text, content='', contentless_delete=1, tokenize='trigram case_sensitive 1');
  INSERT INTO byline_event_text (rowid, text)
    SELECT o.ord, json_extract(e.event, '$.statement.text')
    FROM byline_event_order o JOIN byline_events e ON e.id = o.event_id
    WHERE json_extract(e.event, '$.statement.text') IS NOT NULL;
  -- The insert-order trigger indexes the text too: within it, last_insert_rowid() is the ord just
  -- handed out, and NEW.event is at hand (no lookup of the event by id).
  DROP TRIGGER byline_events_ordered;
  CREATE TRIGGER byline_events_ordered AFTER INSERT ON byline_events
  BEGIN
    INSERT INTO byline_event_order (event_id) VALUES (NEW.id);
    INSERT INTO byline_event_text (rowid, text)
      SELECT last_insert_rowid(), json_extract(NEW.event, '$.statement.text')
      WHERE NEW.event_type = 'statement';
  END;
  CREATE TRIGGER byline_event_text_unindexed AFTER DELETE ON byline_event_order
  BEGIN
    DELETE FROM byline_event_text WHERE rowid = OLD.ord;
  END;
  `,
  `
  -- Events resent for seqs a retention checkpoint already covers are acknowledged, not stored: how
  -- many, and when last, noted beside the checkpoint.
  ALTER TABLE byline_retirements ADD COLUMN resent INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE byline_retirements ADD COLUMN last_resent_at TEXT;
  -- The collector's signature over the checkpoint, when it has a receipt key.
  ALTER TABLE byline_retirements ADD COLUMN signature TEXT;
  `,
];
