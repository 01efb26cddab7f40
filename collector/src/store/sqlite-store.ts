/**
 * The default store: one SQLite file (`sqlite:PATH`), for a single collector replica.
 *
 * Journal mode WAL with synchronous=NORMAL: a batch is acknowledged once its transaction is in the
 * write-ahead log. That survives the collector crashing or being killed at any point (nothing
 * acknowledged is lost, nothing half-written is seen), but the WAL is synced to disk only at
 * checkpoints, so a power cut or kernel crash may roll back the most recently acknowledged batches;
 * the database itself is never corrupted. busy_timeout lets a `sqlite3` shell or backup read
 * alongside without the collector failing on a locked database.
 *
 * better-sqlite3 is synchronous: a batch runs start to finish in one turn of the event loop, so
 * no other request's statements ever interleave with its transaction. Batches handed over in the
 * same turn are committed together (CommitGroup), each in its own savepoint.
 *
 * The files hold statement text and parameters: the database is created 0600 (SQLite gives its
 * -wal and -shm files the database file's mode) in a directory created 0700, and an existing
 * database more open than that is narrowed to 0600 when opened.
 */

import { chmodSync, closeSync, existsSync, mkdirSync, openSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Retirement, SignedHead, StreamEvidence } from '@byline/api';
import Database from 'better-sqlite3';
import { dropRetired, markerRows, type StreamWrite, splitBatch, total } from './batch.js';
import { type Link, type Neighbourhood, planChain, type StreamState } from './chain-plan.js';
import { CommitGroup, type Settled } from './commit-group.js';
import { assembleEvidence, checkOwnership, type KeyRow, type StoredOwner } from './evidence.js';
import { followFilterSql, placeholders } from './follow-sql.js';
import type { ExportState, FollowPage, FollowPosition, FollowSource } from './follow-types.js';
import { buildEventQuery, textIndexable, textPhrase } from './query-sql.js';
import {
  cutoffFor,
  firstPerSeq,
  namespaceOf,
  nextCheckpoint,
  type RetentionRules,
  type RetiredStream,
  withSignature,
} from './retention.js';
import { type RetiredEventKey, SQLITE_DELETE_SIDE_ROW, sideRowKeys } from './retired-side-rows.js';
import { EventRows, TableRows } from './sqlite-rows.js';
import { SQLITE_MIGRATIONS } from './sqlite-schema.js';
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

interface MarkerRecord {
  stream: string;
  seq: number;
  kind: ChainMarker['kind'];
  detail: string;
  detected_at: string;
  resolved_at: string | null;
}

const toMarker = (r: MarkerRecord): ChainMarker => ({
  stream: r.stream,
  seq: r.seq,
  kind: r.kind,
  detail: r.detail,
  detectedAt: r.detected_at,
  resolvedAt: r.resolved_at,
});

/** A searched text held by this many events is walked in order rather than looked up (see usesTextIndex). */
const COMMON_TEXT_MATCHES = 20_000;

interface InsertJob {
  events: readonly IngestEvent[];
  now: string;
  writer: BatchWriter | undefined;
}

const PAGE_BYTES = 8192;
/** Events per group commit: enough to share the hot index pages, short enough not to hold the event loop long. */
const GROUP_EVENTS = 10_000;
/** 64 MiB of page cache (SQLite's default is 2 MiB). */
const CACHE_KIB = 64 * 1024;
/** Checkpoint once the WAL holds 4096 pages (32 MiB), not SQLite's default 1000. */
const WAL_CHECKPOINT_PAGES = 4096;

export class SqliteStore implements EventStore, FollowSource, ExportState {
  private readonly db: Database.Database;
  private readonly insertTx: Database.Transaction<
    (events: readonly IngestEvent[], now: string, writer: BatchWriter | undefined) => InsertResult
  >;
  private readonly groupTx: Database.Transaction<(jobs: InsertJob[]) => Settled<InsertResult>[]>;
  private readonly group: CommitGroup<InsertJob, InsertResult>;
  private prepared: ReturnType<SqliteStore['statements']> | undefined;

  /** From this many events holding a searched text, it is found by walking events in order (usesTextIndex). */
  private readonly commonTextMatches: number;

  constructor(path: string, options: { commonTextMatches?: number } = {}) {
    this.commonTextMatches = options.commonTextMatches ?? COMMON_TEXT_MATCHES;
    if (path !== ':memory:') createPrivately(path);
    this.db = new Database(path);
    // 8 KiB pages for a new database (an existing one keeps its own): an event row is about
    // 1.5 KB, so 4 KiB pages held two and left a quarter of every page empty. Larger pages fill
    // better still, but every index page a commit touches is written whole to the WAL.
    this.db.pragma(`page_size = ${PAGE_BYTES}`);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    // Each batch of a group commit is a savepoint, whose journal is a temporary file unless kept in memory.
    this.db.pragma('temp_store = MEMORY');
    // Many streams' batches overlap in time, so each batch writes all over the recent end of the
    // time-ordered indexes. A page cache that holds that working set spares reading it back for
    // every batch, and a longer WAL lets a page changed by many batches reach the file once.
    this.db.pragma(`cache_size = -${CACHE_KIB}`);
    this.db.pragma(`wal_autocheckpoint = ${WAL_CHECKPOINT_PAGES}`);
    this.insertTx = this.db.transaction(
      (events: readonly IngestEvent[], now: string, writer: BatchWriter | undefined) =>
        this.insertInTx(events, now, writer),
    );
    // Called inside groupTx, insertTx runs as a savepoint: a batch that throws is rolled back alone.
    // The group's statement texts then go into the text index in one statement (see migration 8).
    this.groupTx = this.db.transaction((jobs: InsertJob[]) => {
      this.prepared ??= this.statements();
      const { endOrd } = this.prepared.lastOrd.get() as { endOrd: number };
      const settled = jobs.map((j): Settled<InsertResult> => {
        try {
          return { ok: true, value: this.insertTx(j.events, j.now, j.writer) };
        } catch (error) {
          return { ok: false, error };
        }
      });
      this.prepared.indexText.run(endOrd);
      return settled;
    });
    this.group = new CommitGroup(
      (jobs) => this.groupTx.immediate(jobs),
      (job) => job.events.length,
      GROUP_EVENTS,
    );
  }

  async init(): Promise<void> {
    const migrate = this.db.transaction(() => {
      const version = this.db.pragma('user_version', { simple: true }) as number;
      if (version > SQLITE_MIGRATIONS.length) {
        throw new Error(`the database is at schema version ${version}, newer than this collector knows`);
      }
      for (let v = version; v < SQLITE_MIGRATIONS.length; v++) this.db.exec(SQLITE_MIGRATIONS[v]!);
      this.db.pragma(`user_version = ${SQLITE_MIGRATIONS.length}`);
    });
    migrate.immediate();
  }

  async insertBatch(events: readonly IngestEvent[], receivedAt: Date, writer?: BatchWriter): Promise<InsertResult> {
    return this.group.submit({ events, now: receivedAt.toISOString(), writer });
  }

  private insertInTx(events: readonly IngestEvent[], now: string, writer: BatchWriter | undefined): InsertResult {
    this.prepared ??= this.statements();
    const s = this.prepared;
    if (writer) {
      checkOwnership(events, (stream) => s.owner.get(stream) as StoredOwner | undefined, writer.owner);
    }
    const stored = new Map<string, string>();
    const known = s.hashesOf.all(JSON.stringify(events.map((e) => e.id))) as { id: string; chain_hash: string }[];
    for (const row of known) stored.set(row.id, row.chain_hash);
    const { fresh, duplicates, conflicts } = splitBatch(events, stored);
    const retiredThrough = new Map<string, number>();
    for (const stream of fresh.keys()) {
      const row = s.retiredThrough.get(stream) as { through: number } | undefined;
      if (row) retiredThrough.set(stream, row.through);
    }
    const retired = dropRetired(fresh, retiredThrough);
    for (const [stream, n] of retired) s.noteResent.run(n, now, stream);

    // Plan every stream before writing anything, so the neighbourhood is what was stored before.
    const writes: StreamWrite[] = [];
    for (const [stream, list] of fresh) {
      const head = s.head.get(stream) as StreamState | undefined;
      const neighbourhood: Neighbourhood = {
        at: (seq) => s.linksAt.all(stream, seq) as Link[],
        below: (seq) => (s.below.get(stream, seq) as { below: number | null }).below ?? 0,
      };
      writes.push({ stream, plan: planChain(list, head, neighbourhood) });
    }

    let accepted = 0;
    for (const list of fresh.values()) {
      s.eventRows.write(list, now);
      s.tableRows.write(list);
      accepted += list.length;
    }
    const markers: ChainMarker[] = [];
    for (const m of markerRows(writes, conflicts)) {
      if (s.insertMarker.run(m.stream, m.seq, m.kind, m.detail, now).changes === 1) {
        markers.push({ ...m, detectedAt: now, resolvedAt: null });
      }
    }
    let resolved = 0;
    for (const w of writes) {
      for (const seq of w.plan.resolveGaps) resolved += s.resolveGap.run(now, w.stream, seq).changes;
      const st = w.plan.state;
      s.upsertStream.run(w.stream, st.firstSeq, st.lastSeq, st.headHash, st.count, writer?.owner ?? null);
    }
    const head = writer?.signedHead;
    if (head) {
      s.insertKey.run(head.stream, head.key, writer.owner, writer.keyReceipt ?? null, now);
      s.insertHead.run(head.stream, head.seq, head.hash, head.key, head.sig, now);
    }
    return { accepted, duplicates, markers, resolved, retired: total(retired) };
  }

  private statements() {
    const db = this.db;
    return {
      eventRows: new EventRows(db),
      tableRows: new TableRows(db),
      // ord only grows (AUTOINCREMENT), so what a group inserted is what lies past the highest ord before it.
      lastOrd: db.prepare('SELECT coalesce(max(ord), 0) AS endOrd FROM byline_events'),
      indexText: db.prepare(
        `INSERT INTO byline_event_text (rowid, text)
         SELECT ord, json_extract(event, '$.statement.text') FROM byline_events WHERE ord > ? AND event_type = 'statement'`,
      ),
      hashesOf: db.prepare('SELECT id, chain_hash FROM byline_events WHERE id IN (SELECT value FROM json_each(?))'),
      retiredThrough: db.prepare('SELECT through_seq AS through FROM byline_retirements WHERE stream = ?'),
      textMatches: db.prepare(
        'SELECT count(*) AS n FROM (SELECT 1 FROM byline_event_text WHERE byline_event_text MATCH ? LIMIT ?)',
      ),
      noteResent: db.prepare('UPDATE byline_retirements SET resent = resent + ?, last_resent_at = ? WHERE stream = ?'),
      head: db.prepare(
        `SELECT first_seq AS firstSeq, last_seq AS lastSeq, head_hash AS headHash, event_count AS count
         FROM byline_streams WHERE stream = ?`,
      ),
      linksAt: db.prepare(
        `SELECT id, chain_seq AS seq, chain_prev AS prev, chain_hash AS hash
         FROM byline_events WHERE stream = ? AND chain_seq = ?`,
      ),
      below: db.prepare('SELECT max(chain_seq) AS below FROM byline_events WHERE stream = ? AND chain_seq < ?'),
      insertMarker: db.prepare(
        `INSERT INTO byline_chain_markers (stream, seq, kind, detail, detected_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (stream, seq, kind) DO NOTHING`,
      ),
      resolveGap: db.prepare(
        `UPDATE byline_chain_markers SET resolved_at = ?
         WHERE stream = ? AND seq = ? AND kind = 'gap' AND resolved_at IS NULL`,
      ),
      upsertStream: db.prepare(
        `INSERT INTO byline_streams (stream, first_seq, last_seq, head_hash, event_count, owner) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (stream) DO UPDATE SET first_seq = excluded.first_seq, last_seq = excluded.last_seq,
           head_hash = excluded.head_hash, event_count = excluded.event_count,
           owner = coalesce(byline_streams.owner, excluded.owner)`,
      ),
      owner: db.prepare(
        `SELECT owner, CASE WHEN owner IS NULL
           THEN (SELECT identity_name FROM byline_events e WHERE e.stream = s.stream LIMIT 1) END AS identity
         FROM byline_streams s WHERE stream = ?`,
      ),
      insertKey: db.prepare(
        `INSERT INTO byline_stream_keys (stream, public_key, owner, receipt, registered_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (stream, public_key) DO UPDATE SET receipt = excluded.receipt
           WHERE byline_stream_keys.receipt IS NULL AND excluded.receipt IS NOT NULL`,
      ),
      insertHead: db.prepare(
        `INSERT INTO byline_signed_heads (stream, seq, hash, public_key, signature, received_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT DO NOTHING`,
      ),
    };
  }

  async query(filter: EventFilter, limit: number, after?: CursorKey): Promise<EventPage> {
    const textIndex = filter.text !== undefined && this.usesTextIndex(filter.text);
    const q = buildEventQuery(filter, limit, after, 'sqlite', { textIndex });
    const rows = this.db.prepare(q.sql).all(...q.values) as {
      event: string;
      received_at: string;
      time_us: number;
      stream: string;
      chain_seq: number;
      id: string;
    }[];
    const more = rows.length > limit;
    const page = more ? rows.slice(0, limit) : rows;
    const events = page.map((r) => ({
      key: { timeUs: r.time_us, stream: r.stream, seq: r.chain_seq, id: r.id },
      json: r.event,
      receivedAt: r.received_at,
    }));
    return { events, next: more ? events[events.length - 1]!.key : null };
  }

  /**
   * Whether a search for `text` is looked up in the trigram table: not when `commonTextMatches` or
   * more events hold it (those would all be read and sorted for each page; walking the events in
   * time order finds a page at once). Counting stops at the bound: asking costs at most that many
   * index entries.
   */
  usesTextIndex(text: string): boolean {
    if (!textIndexable(text)) return false;
    this.prepared ??= this.statements();
    const { n } = this.prepared.textMatches.get(textPhrase(text), this.commonTextMatches) as { n: number };
    return n < this.commonTextMatches;
  }

  async markers(streams: readonly string[]): Promise<ChainMarker[]> {
    if (streams.length === 0) return [];
    const rows = this.db
      .prepare(
        `SELECT stream, seq, kind, detail, detected_at, resolved_at FROM byline_chain_markers
         WHERE stream IN (SELECT value FROM json_each(?)) ORDER BY stream, seq, kind`,
      )
      .all(JSON.stringify(streams)) as MarkerRecord[];
    return rows.map(toMarker);
  }

  async streams(): Promise<StreamSummary[]> {
    const streams = this.db
      .prepare(
        `SELECT stream, first_seq AS firstSeq, last_seq AS lastSeq, event_count AS count, head_hash AS headHash
         FROM byline_streams ORDER BY stream`,
      )
      .all() as Omit<StreamSummary, 'openMarkers'>[];
    const open = this.db
      .prepare(
        `SELECT stream, seq, kind, detail, detected_at, resolved_at FROM byline_chain_markers
         WHERE resolved_at IS NULL ORDER BY stream, seq, kind`,
      )
      .all() as MarkerRecord[];
    return withOpenMarkers(streams, open.map(toMarker));
  }

  async evidence(streams: readonly string[]): Promise<StreamEvidence[]> {
    if (streams.length === 0) return [];
    const list = JSON.stringify(streams);
    const inList = 'stream IN (SELECT value FROM json_each(?))';
    const heads = this.db
      .prepare(`SELECT stream, last_seq AS lastSeq FROM byline_streams WHERE ${inList}`)
      .all(list) as { stream: string; lastSeq: number }[];
    const keys = this.db
      .prepare(
        `SELECT stream, public_key AS key, owner, receipt FROM byline_stream_keys WHERE ${inList} ORDER BY stream, public_key`,
      )
      .all(list) as KeyRow[];
    const signed = this.db
      .prepare(
        `SELECT stream, seq, hash, public_key AS key, signature AS sig FROM byline_signed_heads
         WHERE ${inList} ORDER BY stream, seq, public_key`,
      )
      .all(list) as SignedHead[];
    const lastSeqs = new Map(heads.map((h) => [h.stream, h.lastSeq]));
    return assembleEvidence(streams, lastSeqs, await this.markers(streams), keys, signed, this.retirements(streams));
  }

  async streamHead(stream: string): Promise<{ seq: number; hash: string } | undefined> {
    const row = this.db
      .prepare('SELECT last_seq AS seq, head_hash AS hash FROM byline_streams WHERE stream = ?')
      .get(stream);
    return row as { seq: number; hash: string } | undefined;
  }

  async follow(filter: EventFilter, after: FollowPosition, limit: number): Promise<FollowPage> {
    const values: unknown[] = [];
    const p = placeholders(values, () => '?');
    const where = [`e.ord > ${p(after.ord)}`, ...followFilterSql(filter, p, 'sqlite')];
    const sql =
      'SELECT e.event, e.received_at, e.time_us, e.stream, e.chain_seq, e.id, e.ord' +
      ` FROM byline_events e WHERE ${where.join(' AND ')} ORDER BY e.ord LIMIT ${p(limit)}`;
    // One read transaction: the end read below is of the same snapshot as the page.
    const read = this.db.transaction(() => {
      const rows = this.db.prepare(sql).all(...values) as {
        event: string;
        received_at: string;
        time_us: number;
        stream: string;
        chain_seq: number;
        id: string;
        ord: number;
      }[];
      const end = rows.length < limit ? this.endOrd() : 0;
      return { rows, end };
    });
    const { rows, end } = read.deferred();
    const events = rows.map((r) => ({
      key: { timeUs: r.time_us, stream: r.stream, seq: r.chain_seq, id: r.id },
      json: r.event,
      receivedAt: r.received_at,
    }));
    const last = rows.length > 0 ? rows[rows.length - 1]!.ord : after.ord;
    return { events, position: { tx: '0', ord: Math.max(last, end, after.ord) } };
  }

  async followEnd(): Promise<FollowPosition> {
    return { tx: '0', ord: this.endOrd() };
  }

  private endOrd(): number {
    // sqlite_sequence keeps the highest ord ever handed out, even after those rows are deleted.
    const row = this.db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'byline_events'").get() as
      | { seq: number }
      | undefined;
    return row?.seq ?? 0;
  }

  /**
   * Retires, per stream, the prefix of events older than their namespace's retention, in one
   * transaction: deletes them and records the checkpoint (last hash, digest) the remainder is
   * verified from.
   */
  async retire(rules: RetentionRules, now: Date): Promise<RetiredStream[]> {
    const at = now.toISOString();
    const run = this.db.transaction(() => {
      const done: RetiredStream[] = [];
      const streams = this.db.prepare('SELECT stream FROM byline_streams ORDER BY stream').all() as {
        stream: string;
      }[];
      for (const { stream } of streams) {
        const first = this.db
          .prepare('SELECT event FROM byline_events WHERE stream = ? ORDER BY chain_seq, rowid LIMIT 1')
          .get(stream) as { event: string } | undefined;
        if (!first) continue;
        const namespace = namespaceOf(first.event);
        const cutoff = cutoffFor(rules, namespace, now.getTime());
        if (cutoff === undefined) continue;
        // The first event kept: young enough, or not yet delivered by every exporter.
        const keep = this.db
          .prepare(
            `SELECT min(chain_seq) AS seq FROM byline_events
             WHERE stream = ? AND (time_us >= ? OR (? IS NOT NULL AND ord > ?))`,
          )
          .get(stream, cutoff, rules.exportedThrough?.ord ?? null, rules.exportedThrough?.ord ?? null) as {
          seq: number | null;
        };
        const rows = this.db
          .prepare(
            `SELECT id, chain_seq AS seq, chain_hash AS hash, time_us AS timeUs,
               event -> '$.statement.tables' AS tables FROM byline_events
             WHERE stream = ? AND (? IS NULL OR chain_seq < ?) ORDER BY chain_seq, rowid`,
          )
          .all(stream, keep.seq, keep.seq) as (RetiredEventKey & { hash: string; tables: string | null })[];
        if (rows.length === 0) continue;
        const previous = this.retirementOf(stream);
        const checkpoint = withSignature(
          rules,
          stream,
          nextCheckpoint(previous, rows[rows.length - 1]!.seq, firstPerSeq(rows), at),
        );
        const deleteSideRow = this.db.prepare(SQLITE_DELETE_SIDE_ROW);
        const keys = sideRowKeys(rows.map((r) => ({ ...r, tables: r.tables === null ? null : JSON.parse(r.tables) })));
        for (let i = 0; i < keys.names.length; i++) {
          deleteSideRow.run(keys.names[i], keys.timeUs[i], stream, keys.seqs[i], keys.ids[i]);
        }
        this.db
          .prepare('DELETE FROM byline_events WHERE stream = ? AND chain_seq <= ?')
          .run(stream, checkpoint.throughSeq);
        this.db
          .prepare(
            `INSERT INTO byline_retirements (stream, through_seq, through_hash, event_count, digest, retired_at, signature)
             VALUES (?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (stream) DO UPDATE SET through_seq = excluded.through_seq, through_hash = excluded.through_hash,
               event_count = excluded.event_count, digest = excluded.digest, retired_at = excluded.retired_at,
               signature = excluded.signature`,
          )
          .run(
            stream,
            checkpoint.throughSeq,
            checkpoint.throughHash,
            checkpoint.count,
            checkpoint.digest,
            at,
            checkpoint.signature ?? null,
          );
        this.db
          .prepare('UPDATE byline_streams SET first_seq = ?, event_count = event_count - ? WHERE stream = ?')
          .run(checkpoint.throughSeq + 1, rows.length, stream);
        done.push({ stream, namespace, retired: rows.length, checkpoint });
      }
      return done;
    });
    return run.immediate();
  }

  private retirementOf(stream: string): Retirement | undefined {
    return this.retirements([stream]).get(stream);
  }

  private retirements(streams: readonly string[]): Map<string, Retirement> {
    const rows = this.db
      .prepare(
        `SELECT stream, through_seq AS throughSeq, through_hash AS throughHash, event_count AS count, digest,
           retired_at AS retiredAt, signature FROM byline_retirements WHERE stream IN (SELECT value FROM json_each(?))`,
      )
      .all(JSON.stringify(streams)) as ({ stream: string; signature: string | null } & Retirement)[];
    return new Map(rows.map(({ stream, signature, ...r }) => [stream, { ...r, ...(signature ? { signature } : {}) }]));
  }

  async exportPosition(exporter: string): Promise<FollowPosition | undefined> {
    const row = this.db.prepare('SELECT tx, ord FROM byline_export_positions WHERE exporter = ?').get(exporter) as
      | FollowPosition
      | undefined;
    return row ? { tx: row.tx, ord: row.ord } : undefined;
  }

  async saveExportPosition(exporter: string, position: FollowPosition): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO byline_export_positions (exporter, tx, ord, updated_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (exporter) DO UPDATE SET tx = excluded.tx, ord = excluded.ord, updated_at = excluded.updated_at`,
      )
      .run(exporter, position.tx, position.ord, new Date().toISOString());
  }

  async recordDeadLetters(exporter: string, eventIds: readonly string[], error: string, attempts: number) {
    const insert = this.db.prepare(
      `INSERT INTO byline_export_dead_letters (exporter, event_id, attempts, error, failed_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (exporter, event_id) DO UPDATE SET attempts = excluded.attempts, error = excluded.error,
         failed_at = excluded.failed_at`,
    );
    const now = new Date().toISOString();
    this.db.transaction(() => {
      for (const id of eventIds) insert.run(exporter, id, attempts, error, now);
    })();
  }

  async deadLetters(exporter: string) {
    return this.db
      .prepare(
        `SELECT event_id AS eventId, error, attempts, failed_at AS failedAt FROM byline_export_dead_letters
         WHERE exporter = ? ORDER BY failed_at, event_id`,
      )
      .all(exporter) as { eventId: string; error: string; attempts: number; failedAt: string }[];
  }

  async ping(): Promise<void> {
    this.db.prepare('SELECT 1').get();
  }

  async close(): Promise<void> {
    await this.group.drain();
    if (this.db.open) this.db.close();
  }
}

/** Creates the database file 0600 (and its directory 0700) before SQLite opens it; narrows an existing one. */
function createPrivately(path: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  if (!existsSync(path)) closeSync(openSync(path, 'a', 0o600));
  for (const file of [path, `${path}-wal`, `${path}-shm`]) {
    if (existsSync(file) && (statSync(file).mode & 0o077) !== 0) chmodSync(file, 0o600);
  }
}
