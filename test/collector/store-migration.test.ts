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
async function foundThroughNewIndexes(store: EventStore): Promise<void> {
  const text = (e: IngestEvent) => (JSON.parse(e.json) as AuditEvent).statement?.text ?? '';
  const ledger = written.filter((e) => text(e).includes('billing.ledger')).map((e) => e.json);
  const ddl = written.filter((e) => (JSON.parse(e.json) as AuditEvent).statement?.class === 'ddl').map((e) => e.json);
  expect(ledger.length).toBeGreaterThan(0);
  expect(ddl.length).toBeGreaterThan(0);
  const json = async (filter: EventFilter) => (await store.query(filter, 5000)).events.map((e) => e.json).sort();
  expect(await json({ text: 'billing.ledger' })).toEqual(ledger.sort());
  expect(await json({ statementClass: 'ddl' })).toEqual(ddl.sort());
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
