/**
 * The store for several collector replicas sharing one PostgreSQL database (`postgres://…`).
 *
 * Concurrency: a batch takes a transaction-scoped advisory lock per stream it touches (in sorted
 * order, so two batches never wait on each other in a cycle). Everything chain-related — which ids
 * are already stored, the head, the neighbours of late events — is read after the locks are held,
 * so replicas writing the same stream take turns and each sees the other's committed work. The
 * unique `id` with `ON CONFLICT DO NOTHING` stays the last line of defence for idempotency.
 *
 * Each batch is a handful of round trips whatever its size: events and their table rows go in by
 * COPY, the rest as arrays through unnest().
 */
import type { Retirement, SignedHead, StreamEvidence } from '@byline/api';
import pg from 'pg';
import { dropRetired, markerRows, type StreamWrite, splitBatch, total } from './batch.js';
import { FetchedNeighbourhood, type Link, neighbourSeqs, planChain, type StreamState } from './chain-plan.js';
import { assembleEvidence, checkOwnership, type KeyRow, type StoredOwner } from './evidence.js';
import { followFilterSql, placeholders } from './follow-sql.js';
import {
  comparePositions,
  type ExportState,
  type FollowPage,
  type FollowPosition,
  type FollowSource,
} from './follow-types.js';
import { copyIn, copyRow } from './postgres-copy.js';
import { POSTGRES_MIGRATIONS } from './postgres-schema.js';
import { buildEventQuery } from './query-sql.js';
import {
  cutoffFor,
  firstPerSeq,
  namespaceOf,
  nextCheckpoint,
  type RetentionRules,
  type RetiredStream,
  withSignature,
} from './retention.js';
import { PG_DELETE_SIDE_ROWS, type RetiredEventKey, sideRowKeys, sliced } from './retired-side-rows.js';
import { withOpenMarkers } from './stream-summary.js';
import type {
  BatchWriter,
  ChainMarker,
  CursorKey,
  EventFilter,
  EventPage,
  EventStore,
  IngestEvent,
  InsertResult,
  StreamSummary,
} from './types.js';

// Advisory lock "classes", so Byline's locks never collide with another application's.
const LOCK_STREAM = 0x62796c31; // 'byl1'
const LOCK_MIGRATE = 0x62796c32; // 'byl2'

// bigint columns as JS numbers: seqs and microsecond times stay far below 2^53.
const INT8_OID = 20;
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

interface MarkerRecord {
  stream: string;
  seq: number;
  kind: ChainMarker['kind'];
  detail: string;
  detected_at: Date;
  resolved_at: Date | null;
}

const toMarker = (r: MarkerRecord): ChainMarker => ({
  stream: r.stream,
  seq: r.seq,
  kind: r.kind,
  detail: r.detail,
  detectedAt: r.detected_at.toISOString(),
  resolvedAt: r.resolved_at ? r.resolved_at.toISOString() : null,
});

const EVENT_COLUMNS = [
  'id',
  'time_us',
  'event_type',
  'identity_name',
  'session_id',
  'session_seq',
  'route',
  'database_name',
  'stream',
  'chain_seq',
  'chain_prev',
  'chain_hash',
  'approval_name',
  'received_at',
  'event',
];
const TABLE_COLUMNS = ['name', 'time_us', 'stream', 'chain_seq', 'event_id', 'identity_name'];
const UNIQUE_VIOLATION = '23505';

/** A store error the caller may retry as is (a concurrent writer got in the way). */
export class RetryableStoreError extends Error {}

export class PostgresStore implements EventStore, FollowSource, ExportState {
  private readonly pool: pg.Pool;

  constructor(url: string, options: { max?: number } = {}) {
    this.pool = new pg.Pool({ connectionString: url, max: options.max ?? 4, types, connectionTimeoutMillis: 10_000 });
    // An idle client that loses its connection must not take the process down.
    this.pool.on('error', () => {});
  }

  private async transaction<T>(work: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (e) {
      await client.query('ROLLBACK').catch((rollbackError: Error) => {
        broken = rollbackError;
      });
      throw e;
    } finally {
      client.release(broken);
    }
  }

  /**
   * Whether statement text has its pg_trgm index (set by `init`): the migration leaves it out when
   * the extension cannot be created, and text search then scans.
   */
  textIndexed = false;

  async init(): Promise<void> {
    await this.transaction(async (c) => {
      await c.query('SELECT pg_advisory_xact_lock($1, 0)', [LOCK_MIGRATE]);
      await c.query(
        'CREATE TABLE IF NOT EXISTS byline_schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL)',
      );
      const { rows } = await c.query<{ v: number | null }>('SELECT max(version) AS v FROM byline_schema_migrations');
      const version = rows[0]?.v ?? 0;
      if (version > POSTGRES_MIGRATIONS.length) {
        throw new Error(`the database is at schema version ${version}, newer than this collector knows`);
      }
      for (let v = version; v < POSTGRES_MIGRATIONS.length; v++) {
        await c.query(POSTGRES_MIGRATIONS[v]!);
        await c.query('INSERT INTO byline_schema_migrations (version, applied_at) VALUES ($1, now())', [v + 1]);
      }
      const text = await c.query(
        "SELECT 1 FROM pg_indexes WHERE schemaname = current_schema() AND indexname = 'byline_events_text'",
      );
      this.textIndexed = text.rows.length > 0;
    });
  }

  async insertBatch(events: readonly IngestEvent[], receivedAt: Date, writer?: BatchWriter): Promise<InsertResult> {
    return this.transaction(async (c) => {
      const streams = [...new Set(events.map((e) => e.stream))].sort();
      for (const stream of streams)
        await c.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [LOCK_STREAM, stream]);
      if (writer) {
        const owners = await c.query<StoredOwner & { stream: string }>(
          `SELECT stream, owner, CASE WHEN owner IS NULL
             THEN (SELECT identity_name FROM byline_events e WHERE e.stream = s.stream LIMIT 1) END AS identity
           FROM byline_streams s WHERE stream = ANY($1::text[])`,
          [streams],
        );
        const ownerOf = new Map(owners.rows.map(({ stream, ...stored }) => [stream, stored]));
        checkOwnership(events, (s) => ownerOf.get(s), writer.owner);
      }

      const ids = events.map((e) => e.id);
      const known = await c.query<{ id: string; chain_hash: string }>(
        'SELECT id, chain_hash FROM byline_events WHERE id = ANY($1::text[])',
        [ids],
      );
      const { fresh, duplicates, conflicts } = splitBatch(events, new Map(known.rows.map((r) => [r.id, r.chain_hash])));
      const retired = await this.dropRetired(c, fresh, receivedAt);

      const writes = await this.plan(c, fresh);
      const rows = [...fresh.values()].flat();
      if (rows.length > 0) {
        const at = receivedAt.toISOString();
        let events = '';
        let tables = '';
        for (const e of rows) {
          events += copyRow([
            e.id,
            e.timeUs,
            e.type,
            e.identity,
            e.sessionId,
            e.sessionSeq,
            e.route,
            e.database,
            e.stream,
            e.seq,
            e.prev,
            e.hash,
            e.approval,
            at,
            e.json,
          ]);
          for (const name of e.tables) tables += copyRow([name, e.timeUs, e.stream, e.seq, e.id, e.identity]);
        }
        try {
          await copyIn(c, 'byline_events', EVENT_COLUMNS, events);
        } catch (e) {
          // Only an id reused across streams by two concurrent batches can get here: retry sees it stored.
          if ((e as { code?: string }).code === UNIQUE_VIOLATION) {
            throw new RetryableStoreError('another replica stored some of these events at the same moment; retry');
          }
          throw e;
        }
        if (tables.length > 0) await copyIn(c, 'byline_event_tables', TABLE_COLUMNS, tables);
      }

      const planned = markerRows(writes, conflicts);
      let markers: ChainMarker[] = [];
      if (planned.length > 0) {
        const result = await c.query<MarkerRecord>(
          `INSERT INTO byline_chain_markers (stream, seq, kind, detail, detected_at)
           SELECT *, $5::timestamptz FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[])
           ON CONFLICT (stream, seq, kind) DO NOTHING
           RETURNING stream, seq, kind, detail, detected_at, resolved_at`,
          [
            planned.map((m) => m.stream),
            planned.map((m) => m.seq),
            planned.map((m) => m.kind),
            planned.map((m) => m.detail),
            receivedAt,
          ],
        );
        markers = result.rows.map(toMarker);
      }

      let resolved = 0;
      const gaps = writes.flatMap((w) => w.plan.resolveGaps.map((seq) => ({ stream: w.stream, seq })));
      if (gaps.length > 0) {
        const result = await c.query(
          `UPDATE byline_chain_markers m SET resolved_at = $3
           FROM unnest($1::text[], $2::bigint[]) AS r(stream, seq)
           WHERE m.stream = r.stream AND m.seq = r.seq AND m.kind = 'gap' AND m.resolved_at IS NULL`,
          [gaps.map((g) => g.stream), gaps.map((g) => g.seq), receivedAt],
        );
        resolved = result.rowCount ?? 0;
      }
      if (writes.length > 0) {
        await c.query(
          `INSERT INTO byline_streams (stream, first_seq, last_seq, head_hash, event_count, owner)
           SELECT r.*, $6::text FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::bigint[]) AS r
           ON CONFLICT (stream) DO UPDATE SET first_seq = excluded.first_seq, last_seq = excluded.last_seq,
             head_hash = excluded.head_hash, event_count = excluded.event_count,
             owner = coalesce(byline_streams.owner, excluded.owner)`,
          [
            writes.map((w) => w.stream),
            writes.map((w) => w.plan.state.firstSeq),
            writes.map((w) => w.plan.state.lastSeq),
            writes.map((w) => w.plan.state.headHash),
            writes.map((w) => w.plan.state.count),
            writer?.owner ?? null,
          ],
        );
      }
      const head = writer?.signedHead;
      if (head) {
        await c.query(
          `INSERT INTO byline_stream_keys (stream, public_key, owner, receipt, registered_at) VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (stream, public_key) DO UPDATE SET receipt = excluded.receipt
             WHERE byline_stream_keys.receipt IS NULL AND excluded.receipt IS NOT NULL`,
          [head.stream, head.key, writer.owner, writer.keyReceipt ?? null, receivedAt],
        );
        await c.query(
          `INSERT INTO byline_signed_heads (stream, seq, hash, public_key, signature, received_at)
           VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`,
          [head.stream, head.seq, head.hash, head.key, head.sig, receivedAt],
        );
      }
      return { accepted: rows.length, duplicates, markers, resolved, retired: total(retired) };
    });
  }

  /** `dropRetired` against the streams' checkpoints, noting what was resent beside each. */
  private async dropRetired(
    c: pg.PoolClient,
    fresh: Map<string, IngestEvent[]>,
    at: Date,
  ): Promise<Map<string, number>> {
    if (fresh.size === 0) return new Map();
    const checkpoints = await c.query<{ stream: string; through: string }>(
      'SELECT stream, through_seq AS through FROM byline_retirements WHERE stream = ANY($1::text[])',
      [[...fresh.keys()]],
    );
    if (checkpoints.rows.length === 0) return new Map();
    const retired = dropRetired(fresh, new Map(checkpoints.rows.map((r) => [r.stream, Number(r.through)])));
    if (retired.size > 0)
      await c.query(
        `UPDATE byline_retirements r SET resent = r.resent + n.count, last_resent_at = $3
         FROM unnest($1::text[], $2::bigint[]) AS n(stream, count) WHERE r.stream = n.stream`,
        [[...retired.keys()], [...retired.values()], at],
      );
    return retired;
  }

  /** Heads and, for late events only, their stored neighbours; then the chain plan per stream. */
  private async plan(c: pg.PoolClient, fresh: Map<string, IngestEvent[]>): Promise<StreamWrite[]> {
    if (fresh.size === 0) return [];
    const heads = await c.query<StreamState & { stream: string }>(
      `SELECT stream, first_seq AS "firstSeq", last_seq AS "lastSeq", head_hash AS "headHash", event_count AS count
       FROM byline_streams WHERE stream = ANY($1::text[])`,
      [[...fresh.keys()]],
    );
    const headOf = new Map(heads.rows.map(({ stream, ...state }) => [stream, state]));
    const writes: StreamWrite[] = [];
    for (const [stream, list] of fresh) {
      const head = headOf.get(stream);
      const want = neighbourSeqs(list, head);
      const links = new Map<number, Link[]>(want.at.map((s) => [s, []]));
      const below = new Map<number, number>();
      if (want.at.length > 0) {
        const found = await c.query<Link>(
          `SELECT id, chain_seq AS seq, chain_prev AS prev, chain_hash AS hash
           FROM byline_events WHERE stream = $1 AND chain_seq = ANY($2::bigint[])`,
          [stream, want.at],
        );
        for (const l of found.rows) links.get(l.seq)?.push(l);
      }
      if (want.below.length > 0) {
        const found = await c.query<{ seq: number; below: number }>(
          `SELECT s AS seq, COALESCE((SELECT max(chain_seq) FROM byline_events WHERE stream = $1 AND chain_seq < s), 0) AS below
           FROM unnest($2::bigint[]) AS s`,
          [stream, want.below],
        );
        for (const r of found.rows) below.set(r.seq, r.below);
      }
      writes.push({ stream, plan: planChain(list, head, new FetchedNeighbourhood(links, below)) });
    }
    return writes;
  }

  async query(filter: EventFilter, limit: number, after?: CursorKey): Promise<EventPage> {
    const q = buildEventQuery(filter, limit, after, 'postgres');
    const { rows } = await this.pool.query<{
      event: string;
      received_at: Date;
      time_us: number;
      stream: string;
      chain_seq: number;
      id: string;
    }>(q.sql, q.values);
    const more = rows.length > limit;
    const page = more ? rows.slice(0, limit) : rows;
    const events = page.map((r) => ({
      key: { timeUs: r.time_us, stream: r.stream, seq: r.chain_seq, id: r.id },
      json: r.event,
      receivedAt: r.received_at.toISOString(),
    }));
    return { events, next: more ? events[events.length - 1]!.key : null };
  }

  async markers(streams: readonly string[]): Promise<ChainMarker[]> {
    if (streams.length === 0) return [];
    const { rows } = await this.pool.query<MarkerRecord>(
      `SELECT stream, seq, kind, detail, detected_at, resolved_at FROM byline_chain_markers
       WHERE stream = ANY($1::text[]) ORDER BY stream, seq, kind`,
      [streams],
    );
    return rows.map(toMarker);
  }

  async streams(): Promise<StreamSummary[]> {
    const streams = await this.pool.query<Omit<StreamSummary, 'openMarkers'>>(
      `SELECT stream, first_seq AS "firstSeq", last_seq AS "lastSeq", event_count AS count, head_hash AS "headHash"
       FROM byline_streams ORDER BY stream`,
    );
    const open = await this.pool.query<MarkerRecord>(
      `SELECT stream, seq, kind, detail, detected_at, resolved_at FROM byline_chain_markers
       WHERE resolved_at IS NULL ORDER BY stream, seq, kind`,
    );
    return withOpenMarkers(streams.rows, open.rows.map(toMarker));
  }

  async evidence(streams: readonly string[]): Promise<StreamEvidence[]> {
    if (streams.length === 0) return [];
    const heads = await this.pool.query<{ stream: string; lastSeq: number }>(
      'SELECT stream, last_seq AS "lastSeq" FROM byline_streams WHERE stream = ANY($1::text[])',
      [streams],
    );
    const keys = await this.pool.query<KeyRow>(
      `SELECT stream, public_key AS key, owner, receipt FROM byline_stream_keys WHERE stream = ANY($1::text[])
       ORDER BY stream, public_key`,
      [streams],
    );
    const signed = await this.pool.query<SignedHead>(
      `SELECT stream, seq, hash, public_key AS key, signature AS sig FROM byline_signed_heads
       WHERE stream = ANY($1::text[]) ORDER BY stream, seq, public_key`,
      [streams],
    );
    const lastSeqs = new Map(heads.rows.map((h) => [h.stream, h.lastSeq]));
    const retired = await this.retirements(this.pool, streams);
    return assembleEvidence(streams, lastSeqs, await this.markers(streams), keys.rows, signed.rows, retired);
  }

  async streamHead(stream: string): Promise<{ seq: number; hash: string } | undefined> {
    const { rows } = await this.pool.query<{ seq: number; hash: string }>(
      'SELECT last_seq AS seq, head_hash AS hash FROM byline_streams WHERE stream = $1',
      [stream],
    );
    return rows[0];
  }

  /**
   * Rows whose inserting transaction is older than the snapshot's xmin only: every transaction
   * below xmin has finished, so nothing can later commit before the position this returns.
   * Page and end are read in one REPEATABLE READ snapshot, so the end never passes a row the page
   * could not see.
   */
  async follow(filter: EventFilter, after: FollowPosition, limit: number): Promise<FollowPage> {
    const values: unknown[] = [];
    const p = placeholders(values, (n) => `$${n}`);
    const where = [
      'e.ingest_tx < pg_snapshot_xmin(pg_current_snapshot())',
      `(e.ingest_tx, e.ingest_ord) > (${p(after.tx)}::xid8, ${p(after.ord)}::bigint)`,
      ...followFilterSql(filter, p, 'postgres'),
    ];
    const sql =
      'SELECT e.event, e.received_at, e.time_us, e.stream, e.chain_seq, e.id, e.ingest_tx::text AS tx, e.ingest_ord AS ord' +
      ` FROM byline_events e WHERE ${where.join(' AND ')} ORDER BY e.ingest_tx, e.ingest_ord LIMIT ${p(limit)}`;
    const client = await this.pool.connect();
    let broken: Error | undefined;
    try {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      const { rows } = await client.query<{
        event: string;
        received_at: Date;
        time_us: number;
        stream: string;
        chain_seq: number;
        id: string;
        tx: string;
        ord: number;
      }>(sql, values);
      let position = after;
      const last = rows[rows.length - 1];
      if (last) position = { tx: last.tx, ord: last.ord };
      if (rows.length < limit) {
        const end = await this.settledEnd(client);
        if (end && comparePositions(end, position) > 0) position = end;
      }
      await client.query('COMMIT');
      const events = rows.map((r) => ({
        key: { timeUs: r.time_us, stream: r.stream, seq: r.chain_seq, id: r.id },
        json: r.event,
        receivedAt: r.received_at.toISOString(),
      }));
      return { events, position };
    } catch (e) {
      await client.query('ROLLBACK').catch((rollbackError: Error) => {
        broken = rollbackError;
      });
      throw e;
    } finally {
      client.release(broken);
    }
  }

  async followEnd(): Promise<FollowPosition> {
    return (await this.settledEnd(this.pool)) ?? { tx: '0', ord: 0 };
  }

  /** The last row every reader can already see (its transaction below the snapshot's xmin). */
  private async settledEnd(c: pg.Pool | pg.PoolClient): Promise<FollowPosition | undefined> {
    const { rows } = await c.query<{ tx: string; ord: number }>(
      `SELECT ingest_tx::text AS tx, ingest_ord AS ord FROM byline_events
       WHERE ingest_tx < pg_snapshot_xmin(pg_current_snapshot())
       ORDER BY ingest_tx DESC, ingest_ord DESC LIMIT 1`,
    );
    return rows[0];
  }

  /**
   * Retires, per stream, the prefix of events older than their namespace's retention: one
   * transaction per stream, under the stream's advisory lock (so no batch of that stream interleaves),
   * deleting the events and recording the checkpoint the remainder is verified from.
   */
  async retire(rules: RetentionRules, now: Date): Promise<RetiredStream[]> {
    const at = now.toISOString();
    const { rows: streams } = await this.pool.query<{ stream: string }>(
      'SELECT stream FROM byline_streams ORDER BY stream',
    );
    const done: RetiredStream[] = [];
    for (const { stream } of streams) {
      const result = await this.transaction(async (c) => {
        await c.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [LOCK_STREAM, stream]);
        const first = await c.query<{ event: string }>(
          'SELECT event FROM byline_events WHERE stream = $1 ORDER BY chain_seq, ingest_tx, ingest_ord LIMIT 1',
          [stream],
        );
        if (!first.rows[0]) return undefined;
        const namespace = namespaceOf(first.rows[0].event);
        const cutoff = cutoffFor(rules, namespace, now.getTime());
        if (cutoff === undefined) return undefined;
        const { rows } = await c.query<RetiredEventKey & { hash: string }>(
          `SELECT id, chain_seq AS seq, chain_hash AS hash, time_us AS "timeUs",
             event::json #> '{statement,tables}' AS tables FROM byline_events
           WHERE stream = $1 AND chain_seq < coalesce(
             (SELECT min(chain_seq) FROM byline_events WHERE stream = $1 AND (time_us >= $2
               OR ($3::text IS NOT NULL AND (ingest_tx, ingest_ord) > ($3::xid8, $4::bigint)))), 'Infinity'::numeric)
           ORDER BY chain_seq, ingest_tx, ingest_ord`,
          [stream, cutoff, rules.exportedThrough?.tx ?? null, rules.exportedThrough?.ord ?? null],
        );
        if (rows.length === 0) return undefined;
        const previous = (await this.retirements(c, [stream])).get(stream);
        const checkpoint = withSignature(
          rules,
          stream,
          nextCheckpoint(previous, rows[rows.length - 1]!.seq, firstPerSeq(rows), at),
        );
        for (const k of sliced(sideRowKeys(rows))) {
          await c.query(PG_DELETE_SIDE_ROWS, [stream, k.names, k.timeUs, k.seqs, k.ids]);
        }
        await c.query('DELETE FROM byline_events WHERE stream = $1 AND chain_seq <= $2', [
          stream,
          checkpoint.throughSeq,
        ]);
        await c.query(
          `INSERT INTO byline_retirements (stream, through_seq, through_hash, event_count, digest, retired_at, signature)
           VALUES ($1, $2, $3, $4, $5, $6, $7)
           ON CONFLICT (stream) DO UPDATE SET through_seq = excluded.through_seq, through_hash = excluded.through_hash,
             event_count = excluded.event_count, digest = excluded.digest, retired_at = excluded.retired_at,
             signature = excluded.signature`,
          [
            stream,
            checkpoint.throughSeq,
            checkpoint.throughHash,
            checkpoint.count,
            checkpoint.digest,
            now,
            checkpoint.signature ?? null,
          ],
        );
        await c.query('UPDATE byline_streams SET first_seq = $1, event_count = event_count - $2 WHERE stream = $3', [
          checkpoint.throughSeq + 1,
          rows.length,
          stream,
        ]);
        return { stream, namespace, retired: rows.length, checkpoint };
      });
      if (result) done.push(result);
    }
    return done;
  }

  private async retirements(c: pg.Pool | pg.PoolClient, streams: readonly string[]): Promise<Map<string, Retirement>> {
    const { rows } = await c.query<
      { stream: string; retiredAt: Date; signature: string | null } & Omit<Retirement, 'retiredAt' | 'signature'>
    >(
      `SELECT stream, through_seq AS "throughSeq", through_hash AS "throughHash", event_count AS count, digest,
         retired_at AS "retiredAt", signature FROM byline_retirements WHERE stream = ANY($1::text[])`,
      [streams],
    );
    return new Map(
      rows.map(({ stream, retiredAt, signature, ...r }) => [
        stream,
        { ...r, retiredAt: retiredAt.toISOString(), ...(signature ? { signature } : {}) },
      ]),
    );
  }

  async exportPosition(exporter: string): Promise<FollowPosition | undefined> {
    const { rows } = await this.pool.query<FollowPosition>(
      'SELECT tx, ord FROM byline_export_positions WHERE exporter = $1',
      [exporter],
    );
    return rows[0];
  }

  async saveExportPosition(exporter: string, position: FollowPosition): Promise<void> {
    await this.pool.query(
      `INSERT INTO byline_export_positions (exporter, tx, ord, updated_at) VALUES ($1, $2, $3, now())
       ON CONFLICT (exporter) DO UPDATE SET tx = excluded.tx, ord = excluded.ord, updated_at = excluded.updated_at`,
      [exporter, position.tx, position.ord],
    );
  }

  async recordDeadLetters(exporter: string, eventIds: readonly string[], error: string, attempts: number) {
    await this.pool.query(
      `INSERT INTO byline_export_dead_letters (exporter, event_id, attempts, error, failed_at)
       SELECT $1, id, $3, $4, now() FROM unnest($2::text[]) AS id
       ON CONFLICT (exporter, event_id) DO UPDATE SET attempts = excluded.attempts, error = excluded.error,
         failed_at = excluded.failed_at`,
      [exporter, eventIds, attempts, error],
    );
  }

  async deadLetters(exporter: string) {
    const { rows } = await this.pool.query<{ eventId: string; error: string; attempts: number; failedAt: Date }>(
      `SELECT event_id AS "eventId", error, attempts, failed_at AS "failedAt" FROM byline_export_dead_letters
       WHERE exporter = $1 ORDER BY failed_at, event_id`,
      [exporter],
    );
    return rows.map((r) => ({ ...r, failedAt: r.failedAt.toISOString() }));
  }

  async ping(): Promise<void> {
    await this.pool.query('SELECT 1');
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
