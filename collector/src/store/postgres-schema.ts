/**
 * The PostgreSQL schema, as migrations recorded in `byline_schema_migrations`. Append new
 * migrations; never edit one that has shipped. Text keys use the "C" collation so the sort order
 * (and so cursors) is byte order, as in SQLite, whatever the database's locale.
 */
export const POSTGRES_MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE byline_events (
    id            text COLLATE "C" PRIMARY KEY,
    time_us       bigint NOT NULL,
    event_type    text NOT NULL,
    identity_name text NOT NULL,
    session_id    text NOT NULL,
    session_seq   bigint NOT NULL,
    route         text NOT NULL,
    database_name text,
    stream        text COLLATE "C" NOT NULL,
    chain_seq     bigint NOT NULL,
    chain_prev    text,
    chain_hash    text NOT NULL,
    approval_name text,
    received_at   timestamptz NOT NULL,
    event         text NOT NULL
  );
  CREATE INDEX byline_events_order ON byline_events (time_us, stream, chain_seq, id);
  CREATE INDEX byline_events_chain ON byline_events (stream, chain_seq);
  CREATE INDEX byline_events_identity ON byline_events (identity_name, time_us);
  CREATE INDEX byline_events_session ON byline_events (session_id, time_us);
  CREATE INDEX byline_events_route ON byline_events (route, time_us);
  CREATE INDEX byline_events_database ON byline_events (database_name, time_us);
  CREATE INDEX byline_events_approval ON byline_events (approval_name, time_us) WHERE approval_name IS NOT NULL;

  CREATE TABLE byline_event_tables (
    name      text NOT NULL,
    time_us   bigint NOT NULL,
    stream    text COLLATE "C" NOT NULL,
    chain_seq bigint NOT NULL,
    event_id  text COLLATE "C" NOT NULL,
    PRIMARY KEY (name, time_us, stream, chain_seq, event_id)
  );

  CREATE TABLE byline_streams (
    stream      text COLLATE "C" PRIMARY KEY,
    first_seq   bigint NOT NULL,
    last_seq    bigint NOT NULL,
    head_hash   text NOT NULL,
    event_count bigint NOT NULL
  );

  CREATE TABLE byline_chain_markers (
    id          bigserial PRIMARY KEY,
    stream      text COLLATE "C" NOT NULL,
    seq         bigint NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('gap', 'break', 'fork')),
    detail      text NOT NULL,
    detected_at timestamptz NOT NULL,
    resolved_at timestamptz,
    UNIQUE (stream, seq, kind)
  );
  `,
  `
  ALTER TABLE byline_streams ADD COLUMN owner text;

  CREATE TABLE byline_stream_keys (
    stream        text COLLATE "C" NOT NULL,
    public_key    text COLLATE "C" NOT NULL,
    owner         text NOT NULL,
    receipt       text,
    registered_at timestamptz NOT NULL,
    PRIMARY KEY (stream, public_key)
  );

  CREATE TABLE byline_signed_heads (
    stream      text COLLATE "C" NOT NULL,
    seq         bigint NOT NULL,
    hash        text NOT NULL,
    public_key  text COLLATE "C" NOT NULL,
    signature   text NOT NULL,
    received_at timestamptz NOT NULL,
    PRIMARY KEY (stream, seq, public_key)
  );
  `,
  `
  -- Insertion order for follow and exporters. ingest_ord comes from a sequence, handed out before
  -- commit, so two transactions can commit out of order; ingest_tx (the inserting transaction)
  -- lets a reader wait until every transaction below its position has finished. Both are column
  -- defaults, so the insert path needs no change. Existing rows take the migration's transaction.
  ALTER TABLE byline_events ADD COLUMN ingest_tx xid8 NOT NULL DEFAULT pg_current_xact_id();
  ALTER TABLE byline_events ADD COLUMN ingest_ord bigint GENERATED ALWAYS AS IDENTITY;
  CREATE INDEX byline_events_ingest ON byline_events (ingest_tx, ingest_ord);

  CREATE TABLE byline_export_positions (
    exporter   text PRIMARY KEY,
    tx         text NOT NULL,
    ord        bigint NOT NULL,
    updated_at timestamptz NOT NULL
  );
  CREATE TABLE byline_retirements (
    stream       text COLLATE "C" PRIMARY KEY,
    through_seq  bigint NOT NULL,
    through_hash text NOT NULL,
    event_count  bigint NOT NULL,
    digest       text NOT NULL,
    retired_at   timestamptz NOT NULL
  );
  CREATE TABLE byline_export_dead_letters (
    exporter  text NOT NULL,
    event_id  text NOT NULL,
    attempts  integer NOT NULL,
    error     text NOT NULL,
    failed_at timestamptz NOT NULL,
    PRIMARY KEY (exporter, event_id)
  );
  `,
  `
  ALTER TABLE byline_event_tables ADD COLUMN identity_name text;
  UPDATE byline_event_tables t SET identity_name = e.identity_name FROM byline_events e WHERE e.id = t.event_id;
  CREATE INDEX byline_event_tables_identity
    ON byline_event_tables (name, identity_name, time_us, stream, chain_seq, event_id);
  `,
  `
  -- Indexed filters on what only the event itself holds: expression indexes the query's
  -- ((e.event)::jsonb #>> …) matches, carrying the sort key so a filtered query walks them in order.
  CREATE INDEX byline_events_class
    ON byline_events (((event)::jsonb #>> '{statement,class}'), time_us, stream, chain_seq, id);
  CREATE INDEX byline_events_status
    ON byline_events (((event)::jsonb #>> '{result,status}'), time_us, stream, chain_seq, id);
  `,
  `
  -- statement.text by substring: a pg_trgm GIN index, which serves the query's LIKE '%…%'. The
  -- extension is trusted (a database owner may create it) but may be missing or refused: then this
  -- step records that and text search scans (README: how to add the index later).
  DO $$
  DECLARE
    trgm_schema name;
  BEGIN
    BEGIN
      CREATE EXTENSION IF NOT EXISTS pg_trgm;
    EXCEPTION WHEN OTHERS THEN
      RAISE WARNING 'byline: pg_trgm is not available (%): statement text search will scan', SQLERRM;
    END;
    -- Its operator class, named in the schema the extension lives in (not necessarily on the path).
    SELECT n.nspname INTO trgm_schema
      FROM pg_extension x JOIN pg_namespace n ON n.oid = x.extnamespace WHERE x.extname = 'pg_trgm';
    IF trgm_schema IS NOT NULL THEN
      EXECUTE format(
        $i$CREATE INDEX byline_events_text ON byline_events
           USING gin (((event)::jsonb #>> '{statement,text}') %I.gin_trgm_ops)$i$,
        trgm_schema);
    END IF;
  END
  $$;
  `,
  `
  -- Events resent for seqs a retention checkpoint already covers are acknowledged, not stored: how
  -- many, and when last, noted beside the checkpoint.
  ALTER TABLE byline_retirements ADD COLUMN resent bigint NOT NULL DEFAULT 0;
  ALTER TABLE byline_retirements ADD COLUMN last_resent_at timestamptz;
  -- The collector's signature over the checkpoint, when it has a receipt key.
  ALTER TABLE byline_retirements ADD COLUMN signature text;
  `,
  `
  -- Narrower indexes (a third of the store's bytes at 100k events went to indexes carrying the
  -- whole sort key: time, stream, seq and id, two of them 36-character texts). Each index now
  -- holds its filter and the time only: the planner walks it in time order and sorts only the
  -- events that share one microsecond (an incremental sort) to finish the (time, stream, seq, id)
  -- order, so queries still read one page's worth of rows. The side table needs no unique key:
  -- its rows are only ever inserted with their event and deleted with it.
  DROP INDEX byline_events_order;
  CREATE INDEX byline_events_time ON byline_events (time_us);
  DROP INDEX byline_events_class;
  CREATE INDEX byline_events_class ON byline_events (((event)::jsonb #>> '{statement,class}'), time_us);
  DROP INDEX byline_events_status;
  CREATE INDEX byline_events_status ON byline_events (((event)::jsonb #>> '{result,status}'), time_us);
  ALTER TABLE byline_event_tables DROP CONSTRAINT byline_event_tables_pkey;
  CREATE INDEX byline_event_tables_name ON byline_event_tables (name, time_us);
  DROP INDEX byline_event_tables_identity;
  CREATE INDEX byline_event_tables_identity ON byline_event_tables (name, identity_name, time_us);
  `,
];
