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
  -- Insertion order becomes the events table's own rowid (ord, AUTOINCREMENT: never reused, even
  -- after retention deletes the newest rows), replacing byline_event_order and its triggers: a table,
  -- its index and a trigger fewer to run per event, and about 100 bytes less per event.
  CREATE TABLE byline_events_v5 (
    id            TEXT NOT NULL UNIQUE,
    time_us       INTEGER NOT NULL,
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
    event         TEXT NOT NULL,
    ord           INTEGER PRIMARY KEY AUTOINCREMENT,
    -- statement.class and result.status, copied from the event at insert for the filters to index
    statement_class TEXT,
    result_status   TEXT
  );
  INSERT INTO byline_events_v5 (id, time_us, event_type, identity_name, session_id, session_seq, route,
      database_name, stream, chain_seq, chain_prev, chain_hash, approval_name, received_at, event, ord,
      statement_class, result_status)
    SELECT e.id, e.time_us, e.event_type, e.identity_name, e.session_id, e.session_seq, e.route, e.database_name,
      e.stream, e.chain_seq, e.chain_prev, e.chain_hash, e.approval_name, e.received_at, e.event, o.ord,
      json_extract(e.event, '$.statement.class'), json_extract(e.event, '$.result.status')
    FROM byline_events e LEFT JOIN byline_event_order o ON o.event_id = e.id ORDER BY o.ord NULLS LAST, e.rowid;
  -- Carry over the highest ord ever handed out (rows holding it may have been retired).
  UPDATE sqlite_sequence SET seq = max(seq, coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'byline_event_order'), 0))
    WHERE name = 'byline_events_v5';
  INSERT INTO sqlite_sequence (name, seq)
    SELECT 'byline_events_v5', seq FROM sqlite_sequence WHERE name = 'byline_event_order'
      AND NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'byline_events_v5');
  DROP TRIGGER byline_events_ordered;
  DROP TRIGGER byline_events_unordered;
  DROP TABLE byline_event_order;
  DELETE FROM sqlite_sequence WHERE name = 'byline_event_order';
  DROP TABLE byline_events;
  ALTER TABLE byline_events_v5 RENAME TO byline_events;
  CREATE INDEX byline_events_order ON byline_events (time_us, stream, chain_seq, id);
  CREATE INDEX byline_events_chain ON byline_events (stream, chain_seq);
  CREATE INDEX byline_events_identity ON byline_events (identity_name, time_us);
  CREATE INDEX byline_events_session ON byline_events (session_id, time_us);
  CREATE INDEX byline_events_route ON byline_events (route, time_us);
  CREATE INDEX byline_events_database ON byline_events (database_name, time_us);
  CREATE INDEX byline_events_approval ON byline_events (approval_name, time_us) WHERE approval_name IS NOT NULL;
  `,
  `
  -- Indexed filters on what only the event itself holds. statement.class and result.status: the
  -- columns the insert path fills from the event it parsed, indexed with the sort key so a filtered
  -- query walks them in order. statement.text by substring: an FTS5 trigram index (case-sensitive,
  -- as the filter is) keyed by the event's ord, fed and cleaned by triggers on the events table.
  CREATE INDEX byline_events_class ON byline_events (statement_class, time_us, stream, chain_seq, id);
  CREATE INDEX byline_events_status ON byline_events (result_status, time_us, stream, chain_seq, id);
  CREATE VIRTUAL TABLE byline_event_text
    USING fts5(text, content='', contentless_delete=1, tokenize='trigram case_sensitive 1');
  INSERT INTO byline_event_text (rowid, text)
    SELECT ord, json_extract(event, '$.statement.text') FROM byline_events
    WHERE event_type = 'statement' AND json_extract(event, '$.statement.text') IS NOT NULL;
  CREATE TRIGGER byline_event_text_indexed AFTER INSERT ON byline_events WHEN NEW.event_type = 'statement'
  BEGIN
    INSERT INTO byline_event_text (rowid, text) VALUES (NEW.ord, json_extract(NEW.event, '$.statement.text'));
  END;
  CREATE TRIGGER byline_event_text_unindexed AFTER DELETE ON byline_events WHEN OLD.event_type = 'statement'
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
  `
  -- The text index without trigram positions (detail=none): a search asks for every trigram of the
  -- text and checks the rows it finds exactly, so positions only cost (the index is a third of the
  -- size without them). Rebuilt from the events. Its rows are now written by the store's insert
  -- path, once per commit group, instead of by a trigger per event: FTS5 writes out what it holds at
  -- every statement and savepoint, so a trigger left it a small segment per INSERT to merge later
  -- (measured: 11 µs per statement before, 4.5 after).
  DROP TRIGGER byline_event_text_indexed;
  DROP TRIGGER byline_event_text_unindexed;
  DROP TABLE byline_event_text;
  CREATE VIRTUAL TABLE byline_event_text
    USING fts5(text, content='', contentless_delete=1, detail=none, tokenize='trigram case_sensitive 1');
  INSERT INTO byline_event_text (rowid, text)
    SELECT ord, json_extract(event, '$.statement.text') FROM byline_events
    WHERE event_type = 'statement' AND json_extract(event, '$.statement.text') IS NOT NULL;
  CREATE TRIGGER byline_event_text_unindexed AFTER DELETE ON byline_events WHEN OLD.event_type = 'statement'
  BEGIN
    DELETE FROM byline_event_text WHERE rowid = OLD.ord;
  END;
  `,
];
