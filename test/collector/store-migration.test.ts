/**
 * Migration 3 (the identity beside each table name) on a store written by an earlier collector:
 * its table rows get their identity, and "this identity on that table" finds the old events. The
 * later ones index what was stored before them: text and class queries find the old events too.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AuditEvent } from '@byline/api';
import {
  type EventFilter,
  type EventStore,
  type IngestEvent,
  ndjson,
  openStore,
  parseBatch,
  SampleStream,
} from '@byline/collector';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { POSTGRES_MIGRATIONS } from '../../collector/src/store/postgres-schema.js';
import { textPhrase } from '../../collector/src/store/query-sql.js';
import { SQLITE_MIGRATIONS } from '../../collector/src/store/sqlite-schema.js';
import { startPostgres, type TestPostgres } from '../harness/postgres.js';

let pg: TestPostgres;
let dir: string;

beforeAll(async () => {
  pg = await startPostgres();
  dir = mkdtempSync(join(tmpdir(), 'byline-migrate-'));
});

afterAll(async () => {
  await pg?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function events(identity: string): IngestEvent[] {
  const parsed = parseBatch(
    new TextEncoder().encode(ndjson(new SampleStream({ identity }).take(12))),
    { name: identity, kind: 'agent', source: 'static' },
    100,
  );
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.events;
}

/** Rows as the schema of version 2 held them: table rows without an identity. */
function oldRows(e: IngestEvent) {
  return {
    event: [e.id, e.timeUs, e.type, e.identity, e.sessionId, e.sessionSeq, e.route, e.database, e.stream, e.seq].concat(
      [e.prev, e.hash, e.approval, '2026-11-27T00:00:00.000Z', e.json] as never[],
    ),
    tables: e.tables.map((t) => [t, e.timeUs, e.stream, e.seq, e.id]),
  };
}

const written = [...events('agent-a'), ...events('agent-b')];
const expected = written.filter((e) => e.identity === 'agent-b' && e.tables.includes('orders')).map((e) => e.json);

/** Events stored before the text and class indexes existed are found through them after migrating. */
async function foundThroughNewIndexes(store: EventStore, stored = written): Promise<void> {
  const text = (e: IngestEvent) => (JSON.parse(e.json) as AuditEvent).statement?.text ?? '';
  const ledger = stored.filter((e) => text(e).includes('billing.ledger')).map((e) => e.json);
  const ddl = stored.filter((e) => (JSON.parse(e.json) as AuditEvent).statement?.class === 'ddl').map((e) => e.json);
  const status = (e: IngestEvent) => (JSON.parse(e.json) as AuditEvent).result?.status;
  const errors = stored.filter((e) => status(e) === 'error').map((e) => e.json);
  const ok = stored.filter((e) => status(e) === 'ok').map((e) => e.json);
  expect(ledger.length).toBeGreaterThan(0);
  expect(ddl.length).toBeGreaterThan(0);
  expect(ok.length).toBeGreaterThan(0);
  const json = async (filter: EventFilter) => (await store.query(filter, 5000)).events.map((e) => e.json).sort();
  expect(await json({ text: 'billing.ledger' })).toEqual(ledger.sort());
  expect(await json({ statementClass: 'ddl' })).toEqual(ddl.sort());
  expect(await json({ status: 'ok' })).toEqual(ok.sort());
  expect(await json({ status: 'error' })).toEqual(errors.sort());
}

describe('the identity column of byline_event_tables, on a store of schema version 2', () => {
  test('sqlite', async () => {
    const path = join(dir, 'v2.db');
    const db = new Database(path);
    db.exec(SQLITE_MIGRATIONS[0]!);
    db.exec(SQLITE_MIGRATIONS[1]!);
    db.pragma('user_version = 2');
    const insertEvent = db.prepare(`INSERT INTO byline_events VALUES (${new Array(15).fill('?').join(', ')})`);
    const insertTable = db.prepare('INSERT INTO byline_event_tables VALUES (?, ?, ?, ?, ?)');
    for (const e of written) {
      const rows = oldRows(e);
      insertEvent.run(...rows.event);
      for (const t of rows.tables) insertTable.run(...t);
    }
    db.close();
    const store = await openStore(`sqlite:${path}`);
    try {
      expect(expected.length).toBeGreaterThan(0);
      const page = await store.query({ identity: 'agent-b', table: 'orders' }, 100);
      expect(page.events.map((e) => e.json)).toEqual(expected);
      await foundThroughNewIndexes(store);
    } finally {
      await store.close();
    }
  });

  test('postgres', async () => {
    const admin = pg.client();
    await admin.connect();
    await admin.query('CREATE DATABASE v2');
    await admin.end();
    const c = pg.client('v2');
    await c.connect();
    try {
      await c.query(
        'CREATE TABLE byline_schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL)',
      );
      await c.query(POSTGRES_MIGRATIONS[0]!);
      await c.query(POSTGRES_MIGRATIONS[1]!);
      await c.query('INSERT INTO byline_schema_migrations VALUES (1, now()), (2, now())');
      for (const e of written) {
        const rows = oldRows(e);
        await c.query(
          `INSERT INTO byline_events VALUES (${rows.event.map((_, i) => `$${i + 1}`).join(', ')})`,
          rows.event,
        );
        for (const t of rows.tables) await c.query('INSERT INTO byline_event_tables VALUES ($1, $2, $3, $4, $5)', t);
      }
    } finally {
      await c.end();
    }
    const store = await openStore(pg.url('v2'));
    try {
      const page = await store.query({ identity: 'agent-b', table: 'orders' }, 100);
      expect(page.events.map((e) => e.json)).toEqual(expected);
      await foundThroughNewIndexes(store);
    } finally {
      await store.close();
    }
  });
});

describe('SQLite migration 8: the text index keeps no trigram positions', () => {
  test('a store of version 7 gets the positionless index, rebuilt from its events, and finds old and new texts', async () => {
    const path = join(dir, 'v7.db');
    const db = new Database(path);
    for (let v = 0; v < 7; v++) db.exec(SQLITE_MIGRATIONS[v]!);
    db.pragma('user_version = 7');
    const insertEvent = db.prepare(
      `INSERT INTO byline_events (id, time_us, event_type, identity_name, session_id, session_seq, route, database_name,
         stream, chain_seq, chain_prev, chain_hash, approval_name, received_at, event, statement_class, result_status)
       VALUES (${new Array(17).fill('?').join(', ')})`,
    );
    for (const e of written) insertEvent.run(...oldRows(e).event, e.statementClass, e.status);
    // Version 7's index held positions, and answered a phrase.
    expect(textIndexSql(db)).not.toMatch(/detail\s*=\s*none/);
    const phrase = db.prepare('SELECT count(*) AS n FROM byline_event_text WHERE byline_event_text MATCH ?');
    expect((phrase.get('"billing.ledger"') as { n: number }).n).toBeGreaterThan(0);
    db.close();

    const store = await openStore(`sqlite:${path}`);
    const later = events('agent-c');
    try {
      await store.insertBatch(later, new Date());
      await foundThroughNewIndexes(store, [...written, ...later]);
    } finally {
      await store.close();
    }
    const check = new Database(path, { readonly: true });
    expect(textIndexSql(check)).toMatch(/detail\s*=\s*none/);
    // Fed by the insert path once per commit group, not by a trigger per event; cleaned by one on delete.
    const triggers = check.prepare("SELECT name FROM sqlite_schema WHERE type = 'trigger'").all();
    expect(triggers.map((t) => (t as { name: string }).name)).toEqual(['byline_event_text_unindexed']);
    check.close();
  });

  test('a new store has it too', async () => {
    const path = join(dir, 'new-text.db');
    const store = await openStore(`sqlite:${path}`);
    await store.close();
    const check = new Database(path, { readonly: true });
    expect(textIndexSql(check)).toMatch(/detail\s*=\s*none/);
    check.close();
  });
});

/** How the text index was declared: its CREATE VIRTUAL TABLE statement. */
function textIndexSql(db: Database.Database): string {
  return (db.prepare("SELECT sql FROM sqlite_schema WHERE name = 'byline_event_text'").get() as { sql: string }).sql;
}

describe('SQLite migration 5: insertion order moves from byline_event_order into the events table', () => {
  test('every event keeps its position, and a position past retired events is never handed out again', async () => {
    const path = join(dir, 'v4.db');
    const db = new Database(path);
    for (let v = 0; v < 4; v++) db.exec(SQLITE_MIGRATIONS[v]!);
    db.pragma('user_version = 4');
    const insertEvent = db.prepare(`INSERT INTO byline_events VALUES (${new Array(15).fill('?').join(', ')})`);
    for (const e of written) insertEvent.run(...oldRows(e).event);
    // The order table's trigger numbered them 1..24; retire the newest two (ords 23 and 24).
    const newest = written.slice(-2).map((e) => e.id);
    db.prepare('DELETE FROM byline_events WHERE id IN (?, ?)').run(...newest);
    const before = db.prepare('SELECT event_id AS id, ord FROM byline_event_order ORDER BY ord').all();
    expect(db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'byline_event_order'").get()).toEqual({
      seq: written.length,
    });
    db.close();

    const store = await openStore(`sqlite:${path}`);
    try {
      const page = await store.follow({}, { tx: '0', ord: 0 }, 100);
      expect(page.events.map((e) => e.key.id)).toEqual(before.map((r) => (r as { id: string }).id));
      expect(page.position).toEqual({ tx: '0', ord: written.length });
      const from5 = await store.follow({}, { tx: '0', ord: 5 }, 100);
      expect(from5.events.map((e) => e.key.id)).toEqual(written.slice(5, -2).map((e) => e.id));
      // A new event comes after the retired ones' positions: a follower standing there still gets it.
      const next = events('agent-c');
      await store.insertBatch(next, new Date());
      const after = await store.follow({}, { tx: '0', ord: written.length }, 100);
      expect(after.events.map((e) => e.key.id)).toEqual(next.map((e) => e.id));
      expect(after.position.ord).toBe(written.length + next.length);
      // Class, status and text of the events stored before are filled in and indexed by the migrations.
      await foundThroughNewIndexes(store, [...written.slice(0, -2), ...next]);
    } finally {
      await store.close();
    }
    const check = new Database(path);
    const tables = check.prepare("SELECT name FROM sqlite_schema WHERE type IN ('table', 'trigger')").all();
    expect(tables.map((t) => (t as { name: string }).name)).not.toContain('byline_event_order');
    // Deleting events (retention) takes their text out of the text index too.
    const matches = check.prepare('SELECT count(*) AS n FROM byline_event_text WHERE byline_event_text MATCH ?');
    const ledger = textPhrase('billing.ledger');
    expect((matches.get(ledger) as { n: number }).n).toBeGreaterThan(0);
    check
      .prepare("DELETE FROM byline_events WHERE json_extract(event, '$.statement.text') LIKE '%billing.ledger%'")
      .run();
    expect((matches.get(ledger) as { n: number }).n).toBe(0);
    check.close();
  });

  test('a new SQLite store has 8 KiB pages', async () => {
    const path = join(dir, 'new.db');
    const store = await openStore(`sqlite:${path}`);
    await store.close();
    const check = new Database(path, { readonly: true });
    expect(check.pragma('page_size', { simple: true })).toBe(8192);
    check.close();
  });
});

describe('PostgreSQL migration 8: the wide indexes narrowed to filter + time', () => {
  /** The trail's order: time, stream, seq, id (byte order, as the "C" collation sorts). */
  const order = (x: IngestEvent, y: IngestEvent) =>
    x.timeUs - y.timeUs ||
    (x.stream < y.stream ? -1 : x.stream > y.stream ? 1 : 0) ||
    x.seq - y.seq ||
    (x.id < y.id ? -1 : x.id > y.id ? 1 : 0);

  async function paged(store: EventStore, filter: EventFilter, size: number): Promise<string[]> {
    const out: string[] = [];
    let after: Parameters<EventStore['query']>[2];
    for (;;) {
      const page = await store.query(filter, size, after);
      out.push(...page.events.map((e) => e.key.id));
      if (!page.next) return out;
      after = page.next;
    }
  }

  test('a store of the shipped layout (version 7) keeps answering every trail query, in order, page by page', async () => {
    const admin = pg.client();
    await admin.connect();
    await admin.query('CREATE DATABASE v7');
    await admin.end();
    // Two identities whose events share their times (ties the order must break by stream, seq, id).
    const stored = [...events('agent-a'), ...events('agent-b')];
    const c = pg.client('v7');
    await c.connect();
    try {
      await c.query(
        'CREATE TABLE byline_schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL)',
      );
      for (let v = 0; v < 7; v++) {
        await c.query(POSTGRES_MIGRATIONS[v]!);
        await c.query('INSERT INTO byline_schema_migrations VALUES ($1, now())', [v + 1]);
      }
      const pkey = await c.query(
        "SELECT 1 FROM pg_constraint WHERE conrelid = 'byline_event_tables'::regclass AND contype = 'p'",
      );
      expect(pkey.rows).toHaveLength(1);
      for (const e of stored) {
        const rows = oldRows(e);
        await c.query(
          `INSERT INTO byline_events (id, time_us, event_type, identity_name, session_id, session_seq, route,
             database_name, stream, chain_seq, chain_prev, chain_hash, approval_name, received_at, event)
           VALUES (${rows.event.map((_, i) => `$${i + 1}`).join(', ')})`,
          rows.event,
        );
        for (const t of rows.tables)
          await c.query('INSERT INTO byline_event_tables VALUES ($1, $2, $3, $4, $5, $6)', [...t, e.identity]);
      }
    } finally {
      await c.end();
    }
    expect(new Set(stored.map((e) => e.timeUs)).size).toBeLessThan(stored.length);

    const store = await openStore(pg.url('v7'));
    try {
      const forms: [EventFilter, (e: IngestEvent) => boolean][] = [
        [{}, () => true],
        [{ identity: 'agent-b' }, (e) => e.identity === 'agent-b'],
        [{ table: 'orders' }, (e) => e.tables.includes('orders')],
        [{ identity: 'agent-a', table: 'orders' }, (e) => e.identity === 'agent-a' && e.tables.includes('orders')],
        [{ statementClass: 'read' }, (e) => e.statementClass === 'read'],
        [{ status: 'ok' }, (e) => e.status === 'ok'],
      ];
      for (const [filter, match] of forms) {
        const expected = stored
          .filter(match)
          .sort(order)
          .map((e) => e.id);
        expect(expected.length, JSON.stringify(filter)).toBeGreaterThan(0);
        expect(await paged(store, filter, 1000), JSON.stringify(filter)).toEqual(expected);
        expect(await paged(store, filter, 3), JSON.stringify(filter)).toEqual(expected);
      }
      await foundThroughNewIndexes(store, stored);
      // Events stored after the migration are found beside the old ones.
      const next = events('agent-c');
      await store.insertBatch(next, new Date());
      const all = [...stored, ...next].sort(order).map((e) => e.id);
      expect(await paged(store, {}, 4)).toEqual(all);
    } finally {
      await store.close();
    }

    const check = pg.client('v7');
    await check.connect();
    try {
      const { rows } = await check.query<{ name: string; def: string }>(
        `SELECT indexname AS name, indexdef AS def FROM pg_indexes
         WHERE tablename IN ('byline_events', 'byline_event_tables') ORDER BY indexname`,
      );
      const names = rows.map((r) => r.name);
      expect(names).not.toContain('byline_events_order');
      expect(names).not.toContain('byline_event_tables_pkey');
      expect(names).toEqual(expect.arrayContaining(['byline_events_time', 'byline_event_tables_name']));
      expect(rows.find((r) => r.name === 'byline_events_class')?.def).toMatch(/, time_us\)$/);
    } finally {
      await check.end();
    }
  });
});
