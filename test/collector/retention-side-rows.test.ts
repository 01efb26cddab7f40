/**
 * Retention deletes a retired event's side-table rows (`byline_event_tables`, one per table the
 * statement names) by their exact keys through the (name, time_us) index, on both stores: never a
 * scan of the whole side table per stream (at ten million events that read gigabytes per stream
 * per pass). Afterwards no row of a retired event is left, every row of a kept event is, and the
 * trail's table queries still answer.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChainedEvent } from '@byline/api';
import {
  type EventStore,
  ndjson,
  openStore,
  PG_DELETE_SIDE_ROWS,
  parseBatch,
  SampleStream,
  SQLITE_DELETE_SIDE_ROW,
  sideRowKeys,
} from '@byline/collector';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { startPostgres, type TestPostgres } from '../harness/postgres.js';

const DAY = 86_400_000;
const NOW = new Date('2026-12-06T12:00:00Z');
const TABLES = ['customers', 'orders', 'invoices', 'billing.ledger'];
/** Side-table rows of other events, so a scan of the whole table costs the planner what it would at scale. */
const FILLER = 200_000;

let pgServer: TestPostgres;
let dir: string;
let databases = 0;
const open: EventStore[] = [];

beforeAll(async () => {
  pgServer = await startPostgres();
  dir = mkdtempSync(join(tmpdir(), 'byline-side-rows-'));
});

afterAll(async () => {
  await pgServer?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

afterEach(async () => {
  for (const s of open.splice(0)) await s.close();
});

/**
 * `count` statements a day apart (oldest first) of one identity's stream, each naming tables (now
 * and then one twice, which ingest stores once). Every stream made here has the same times, so
 * rows of different streams share (name, time_us): the delete must tell them apart.
 */
function streamOf(identity: string, count: number): ChainedEvent[] {
  const s = new SampleStream({ identity });
  const out: ChainedEvent[] = [];
  for (let i = 0; out.length < count; i++) {
    const e = s.nextEvent();
    if (e.type !== 'statement') continue;
    e.time = new Date(NOW.getTime() - (count - out.length) * DAY).toISOString();
    e.statement = { ...e.statement!, tables: [TABLES[i % 4]!, TABLES[(i + 1) % 4]!, TABLES[i % 4]!] };
    out.push(s.writer.append(e));
  }
  return out;
}

function ingest(events: readonly ChainedEvent[]) {
  const identity = events[0]!.event.identity;
  const parsed = parseBatch(
    new TextEncoder().encode(ndjson(events)),
    { name: identity.name, kind: 'agent', source: 'static' },
    1_000_000,
  );
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.events;
}

type SideRow = { event_id: string; name: string };
const sideRowOrder = (a: SideRow, b: SideRow) =>
  a.event_id < b.event_id ? -1 : a.event_id > b.event_id ? 1 : a.name < b.name ? -1 : a.name > b.name ? 1 : 0;

/**
 * Two streams of 30 daily statements; retention at 10 days retires each one's first 20. Returns
 * the side rows of the trail's events before and after, and what table queries answer after.
 */
async function retireAndCompare(store: EventStore, sideRows: () => Promise<SideRow[]>) {
  const a = streamOf('agent-a', 30);
  const b = streamOf('agent-b', 30);
  for (const s of [a, b]) await store.insertBatch(ingest(s), NOW);
  const before = await sideRows();
  const done = await store.retire({ days: 10 }, NOW);
  const retiredIds = new Set([...a.slice(0, 20), ...b.slice(0, 20)].map((e) => e.event.id));
  const keptIds = [...a.slice(20), ...b.slice(20)].map((e) => e.event.id);
  return { done, before, after: await sideRows(), retiredIds, keptIds };
}

async function expectRowsOfKeptEventsOnly(store: EventStore, result: Awaited<ReturnType<typeof retireAndCompare>>) {
  const { done, before, after, retiredIds, keptIds } = result;
  expect(done.map((d) => d.retired)).toEqual([20, 20]);
  // Every event named two tables (one of them twice): two rows each, before.
  expect(before.length).toBe(2 * 60);
  expect(after.filter((r) => retiredIds.has(r.event_id))).toEqual([]);
  expect(after.sort(sideRowOrder)).toEqual(before.filter((r) => !retiredIds.has(r.event_id)).sort(sideRowOrder));
  expect(after.length).toBe(2 * keptIds.length);
  // The table queries answer from what is left: exactly the kept events naming each table.
  const answered: string[] = [];
  for (const table of TABLES) {
    const page = await store.query({ table }, 1000);
    for (const e of page.events) answered.push(`${table} ${JSON.parse(e.json).id}`);
  }
  expect(answered.sort()).toEqual(after.map((r) => `${r.name} ${r.event_id}`).sort());
}

describe('sqlite store', () => {
  test('after retention no side row of a retired event is left, every row of a kept event is', async () => {
    const path = join(dir, `trail-${++databases}`, 'trail.db');
    const store = await openStore(`sqlite:${path}`);
    open.push(store);
    const sideRows = async () => {
      const db = new Database(path, { readonly: true });
      const rows = db.prepare('SELECT event_id, name FROM byline_event_tables').all() as SideRow[];
      db.close();
      return rows;
    };
    await expectRowsOfKeptEventsOnly(store, await retireAndCompare(store, sideRows));
  });

  test('the store retires without scanning the side table: every statement it prepares on it searches a key', async () => {
    const path = join(dir, `trail-${++databases}`, 'trail.db');
    const store = await openStore(`sqlite:${path}`);
    open.push(store);
    for (const s of [streamOf('agent-a', 30), streamOf('agent-b', 30)]) await store.insertBatch(ingest(s), NOW);
    // The statements retention prepares, read off the store's own connection (the database is real).
    const db = (store as unknown as { db: Database.Database }).db;
    const prepared: string[] = [];
    const prepare = db.prepare.bind(db);
    db.prepare = ((sql: string) => {
      prepared.push(sql);
      return prepare(sql);
    }) as typeof db.prepare;
    expect((await store.retire({ days: 10 }, NOW)).map((d) => d.retired)).toEqual([20, 20]);
    db.prepare = prepare;
    const onSideTable = prepared.filter((sql) => /byline_event_tables/.test(sql));
    expect(onSideTable.length).toBeGreaterThan(0);
    for (const sql of onSideTable) {
      const values = Array.from(sql.matchAll(/\?/g), () => 1);
      const plan = (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...values) as { detail: string }[]).map(
        (r) => r.detail,
      );
      expect(
        plan.filter((step) => /^SCAN byline_event_tables\b/.test(step)),
        sql,
      ).toEqual([]);
    }
  });

  test("the side-row delete searches the table's primary key; the old one by event id scanned it", async () => {
    const path = join(dir, `trail-${++databases}`, 'trail.db');
    await (await openStore(`sqlite:${path}`)).close();
    const db = new Database(path, { readonly: true });
    const plan = (sql: string, ...values: unknown[]) =>
      (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...values) as { detail: string }[]).map((r) => r.detail);
    try {
      expect(plan(SQLITE_DELETE_SIDE_ROW, 'orders', 1, 's', 1, 'e')).toEqual([
        'SEARCH byline_event_tables USING PRIMARY KEY (name=? AND time_us=? AND stream=? AND chain_seq=? AND event_id=?)',
      ]);
      expect(plan('DELETE FROM byline_event_tables WHERE event_id = ?', 'e').join()).toMatch(
        /^SCAN byline_event_tables\b/,
      );
    } finally {
      db.close();
    }
  });
});

describe('postgres store', () => {
  /** A fresh database with the store's schema, the side table filled with `FILLER` rows of another stream. */
  async function freshStore() {
    const name = `side_rows_${++databases}`;
    const admin = pgServer.client();
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
    await admin.end();
    const store = await openStore(pgServer.url(name));
    open.push(store);
    const client = pgServer.client(name);
    await client.connect();
    // Kept out of the counters read below: the test's own statements are the only ones on the table.
    await client.query('ALTER TABLE byline_event_tables SET (autovacuum_enabled = false)');
    await client.query(
      `INSERT INTO byline_event_tables (name, time_us, stream, chain_seq, event_id, identity_name)
       SELECT ($1::text[])[1 + g % 4], $2::bigint + g::bigint * 10000000, 'filler', g, 'filler-' || g, 'agent-f'
       FROM generate_series(1, $3::int) g`,
      [TABLES, (NOW.getTime() - 40 * DAY) * 1000, FILLER],
    );
    await client.query('ANALYZE byline_event_tables');
    return { store, client, url: pgServer.url(name) };
  }

  /** Closes a store opened by this file before `afterEach` would. */
  const closeStore = async (store: EventStore) => {
    open.splice(open.indexOf(store), 1);
    await store.close();
  };

  const scans = async (client: ReturnType<TestPostgres['client']>) => {
    const { rows } = await client.query<{ seq: string; idx: string }>(
      `SELECT seq_scan AS seq, idx_scan AS idx FROM pg_stat_user_tables WHERE relname = 'byline_event_tables'`,
    );
    return { seq: Number(rows[0]!.seq), idx: Number(rows[0]!.idx ?? 0) };
  };

  test('after retention no side row of a retired event is left, every row of a kept event is, and the table was never scanned', async () => {
    const { store, client, url } = await freshStore();
    try {
      const sideRows = async () =>
        (await client.query<SideRow>(`SELECT event_id, name FROM byline_event_tables WHERE stream <> 'filler'`)).rows;
      const a = streamOf('agent-a', 30);
      const b = streamOf('agent-b', 30);
      for (const s of [a, b]) await store.insertBatch(ingest(s), new Date());
      // A session reports its counters when it ends (an idle one, up to ten seconds later): the
      // store's sessions are closed before each reading.
      await closeStore(store);
      const scansBefore = await scans(client);
      const again = await openStore(url);
      open.push(again);
      const done = await again.retire({ days: 10 }, NOW);
      expect(done.map((d) => d.retired)).toEqual([20, 20]);
      await closeStore(again);
      let scansAfter = await scans(client);
      for (let i = 0; i < 50 && scansAfter.idx === scansBefore.idx; i++) {
        await new Promise((r) => setTimeout(r, 100));
        scansAfter = await scans(client);
      }
      expect(scansAfter.idx).toBeGreaterThan(scansBefore.idx);
      expect(scansAfter.seq).toBe(scansBefore.seq);

      const retiredIds = new Set([...a.slice(0, 20), ...b.slice(0, 20)].map((e) => e.event.id));
      const left = await sideRows();
      expect(left.filter((r) => retiredIds.has(r.event_id))).toEqual([]);
      expect(left.length).toBe(2 * 20);
      const filler = await client.query<{ n: string }>(
        `SELECT count(*) AS n FROM byline_event_tables WHERE stream = 'filler'`,
      );
      expect(Number(filler.rows[0]!.n)).toBe(FILLER);
    } finally {
      await client.end();
    }
  });

  test('after retention every row of a kept event is left, and table queries answer from them', async () => {
    const { store, client } = await freshStore();
    try {
      const sideRows = async () =>
        (await client.query<SideRow>(`SELECT event_id, name FROM byline_event_tables WHERE stream <> 'filler'`)).rows;
      await expectRowsOfKeptEventsOnly(store, await retireAndCompare(store, sideRows));
    } finally {
      await client.end();
    }
  });

  test('EXPLAIN: the side-row delete probes the (name, time_us) index; the old one by event id read the whole table', async () => {
    const { store, client } = await freshStore();
    try {
      const events = streamOf('agent-a', 200);
      await store.insertBatch(ingest(events), new Date());
      await client.query('ANALYZE byline_event_tables');
      const retired = events.slice(0, 150).map((c) => ({
        id: c.event.id,
        seq: c.event.chain.seq,
        timeUs: Date.parse(c.event.time) * 1000,
        tables: c.event.statement?.tables,
      }));
      const k = sideRowKeys(retired);
      const stream = events[0]!.event.chain.stream;
      /** The plan's nodes that read the side table: [node type, index]. */
      const readsOf = async (sql: string, values: unknown[]) => {
        const { rows } = await client.query(`EXPLAIN (FORMAT JSON) ${sql}`, values);
        return nodes((rows[0] as { 'QUERY PLAN': [{ Plan: PlanNode }] })['QUERY PLAN'][0].Plan)
          .filter((n) => n['Node Type'] !== 'ModifyTable')
          .filter(
            (n) => n['Relation Name'] === 'byline_event_tables' || n['Index Name']?.startsWith('byline_event_tables'),
          )
          .map((n) => [n['Node Type'], n['Index Name']]);
      };

      const now = await readsOf(PG_DELETE_SIDE_ROWS, [stream, k.names, k.timeUs, k.seqs, k.ids]);
      expect(now.length).toBeGreaterThan(0);
      expect(now.filter(([type]) => type === 'Seq Scan')).toEqual([]);
      expect(now.map(([, index]) => index)).toContain('byline_event_tables_name');

      const old = await readsOf('DELETE FROM byline_event_tables WHERE event_id = ANY($1::text[])', [k.ids]);
      expect(old).toEqual([['Seq Scan', undefined]]);
    } finally {
      await client.end();
    }
  });
});

type PlanNode = {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  Plans?: PlanNode[];
};

function nodes(n: PlanNode): PlanNode[] {
  return [n, ...(n.Plans ?? []).flatMap(nodes)];
}
