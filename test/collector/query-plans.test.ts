/**
 * The trail's queries — by identity, by table, by time range, and those combined, first page and a
 * later one (keyset cursor) — must be answered from an index on both stores: a query that scans
 * the events or sorts every match is fine on a laptop's trail and unusable on ten million events.
 * Each plan comes from the database itself (EXPLAIN QUERY PLAN / EXPLAIN), over a store filled with
 * a few identities and tables and analysed, as a real one would be.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  buildEventQuery,
  type CursorKey,
  type EventFilter,
  type EventStore,
  ndjson,
  openStore,
  parseBatch,
  SampleStream,
  SqliteStore,
} from '@byline/collector';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startPostgres, type TestPostgres } from '../harness/postgres.js';

const IDENTITIES = 12;
const PER_IDENTITY = 600;
const T0 = Date.UTC(2026, 10, 1);

let pg: TestPostgres;
let dir: string;

beforeAll(async () => {
  pg = await startPostgres();
  dir = mkdtempSync(join(tmpdir(), 'byline-plans-'));
});

afterAll(async () => {
  await pg?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/**
 * Several identities writing interleaved in time, each through its own sidecar stream, one on a
 * route of its own, a few under an approval; now and then a statement fails, its text naming a needle.
 */
async function fill(store: EventStore): Promise<void> {
  for (let i = 0; i < IDENTITIES; i++) {
    const identity = `agent-${i}`;
    const stream = new SampleStream({
      identity,
      route: i === 5 ? 'ledger-db' : 'orders-db',
      approval: i % 6 === 0 ? `CHG-${i}` : null,
      startMs: T0 + i * 7,
      sessionLength: 10,
    });
    for (let sent = 0; sent < PER_IDENTITY; sent += 200) {
      const events = Array.from({ length: 200 }, (_, j) => {
        const e = stream.nextEvent();
        if (e.type === 'statement' && (sent + j) % 37 === 3) {
          e.result = { ...e.result!, status: 'error', sqlstate: '23505', error: 'duplicate key' };
          e.statement = { ...e.statement!, text: `${e.statement!.text} /* needle-${i} */` };
        }
        return stream.writer.append(e);
      });
      const parsed = parseBatch(
        new TextEncoder().encode(ndjson(events)),
        { name: identity, kind: 'agent', source: 'static' },
        200,
      );
      if (!parsed.ok) throw new Error(parsed.error);
      await store.insertBatch(parsed.events, new Date(), { owner: identity });
    }
  }
}

const after: CursorKey = { timeUs: (T0 + 100) * 1000, stream: '0', seq: 1, id: '0' };
const range = { sinceUs: (T0 + 50) * 1000, untilUs: (T0 + 300) * 1000 };

/**
 * Each trail query, and what its index must be searched by: a column of the plan (SQLite keeps
 * class and status as columns), and for what PostgreSQL reads from the event, its indexed expression.
 */
const QUERIES: [string, EventFilter, string, string?][] = [
  ['identity', { identity: 'agent-3' }, 'identity_name'],
  ['table', { table: 'billing.ledger' }, 'name'],
  ['time range', range, 'time_us'],
  ['identity and time range', { identity: 'agent-3', ...range }, 'identity_name'],
  ['table and time range', { table: 'orders', ...range }, 'name'],
  ['identity and table', { identity: 'agent-3', table: 'billing.ledger' }, 'identity_name'],
  ['route', { route: 'ledger-db' }, 'route'],
  ['approval', { approval: 'CHG-6' }, 'approval_name'],
  ['class', { statementClass: 'ddl' }, 'statement_class', 'statement,class'],
  ['class and time range', { statementClass: 'ddl', ...range }, 'statement_class', 'statement,class'],
  ['status', { status: 'error' }, 'result_status', 'result,status'],
];

const cases = QUERIES.flatMap(([name, filter, column, expression]) => [
  [`${name}, first page`, filter, undefined, column, expression ?? column] as const,
  [`${name}, a later page`, filter, after, column, expression ?? column] as const,
]);

/**
 * Statement text by substring: looked up in the text index, alone and beside other filters. Beside
 * another indexed filter PostgreSQL may rightly start from that one (`other`: its index).
 */
const TEXT_QUERIES: [string, EventFilter, string?][] = [
  ['text', { text: 'needle-3' }],
  ['text and time range', { text: 'needle-3', ...range }],
  ['text and identity', { identity: 'agent-3', text: 'needle-3' }, 'byline_events_identity'],
  ['text and table', { table: 'orders', text: 'needle-3' }, 'byline_event_tables_name'],
];
const textCases = TEXT_QUERIES.flatMap(([name, filter, other]) => [
  [`${name}, first page`, filter, undefined, other] as const,
  [`${name}, a later page`, filter, after, other] as const,
]);

describe('sqlite: the trail queries search an index in the order they return', () => {
  let db: Database.Database;
  beforeAll(async () => {
    const path = join(dir, 'trail.db');
    const store = await openStore(`sqlite:${path}`);
    await fill(store);
    await store.close();
    db = new Database(path);
    db.exec('ANALYZE');
  });
  afterAll(() => db?.close());

  const planOf = (filter: EventFilter, cursor: CursorKey | undefined) => {
    const q = buildEventQuery(filter, 100, cursor, 'sqlite');
    return (db.prepare(`EXPLAIN QUERY PLAN ${q.sql}`).all(...q.values) as { detail: string }[]).map((r) => r.detail);
  };

  test.each(cases)('%s', (_name, filter, cursor, column) => {
    const plan = planOf(filter, cursor);
    const text = plan.join(' | ');
    // The first step drives the query: an index searched by the filter's column.
    const step = /^SEARCH \w+ USING (?:COVERING )?(?:INDEX \w+|PRIMARY KEY) \(([^)]*)\)/.exec(plan[0] ?? '');
    expect(step, text).not.toBeNull();
    const terms = step![1]!;
    expect(new RegExp(`\\b${column}[=>]`).test(terms), text).toBe(true);
    expect(text).not.toMatch(/(^|\| )SCAN /);
    // Sorting ties of one timestamp is fine; sorting every match is not.
    expect(text).not.toMatch(/USE TEMP B-TREE FOR ORDER BY/);
  });

  test.each(textCases)('%s', (_name, filter, cursor) => {
    const plan = planOf(filter, cursor);
    const text = plan.join(' | ');
    // The matches come from the trigram index (M: a MATCH constraint), and no table is read whole.
    expect(text).toMatch(/SCAN byline_event_text VIRTUAL TABLE INDEX 0:M/);
    expect(
      plan.filter((step) => /^SCAN (?!byline_event_text )/.test(step)),
      text,
    ).toEqual([]);
  });

  test('a text most events hold is not looked up but walked in order: no sort of all its matches, per page', () => {
    for (const cursor of [undefined, after]) {
      const q = buildEventQuery({ text: 'customers' }, 100, cursor, 'sqlite', { textIndex: false });
      const plan = (db.prepare(`EXPLAIN QUERY PLAN ${q.sql}`).all(...q.values) as { detail: string }[]).map(
        (r) => r.detail,
      );
      const text = plan.join(' | ');
      expect(plan[0], text).toMatch(/^(SCAN|SEARCH) e USING INDEX byline_events_order\b/);
      expect(text).not.toContain('byline_event_text');
      expect(text).not.toMatch(/USE TEMP B-TREE FOR ORDER BY/);
    }
  });

  test('the store looks a rare text up and walks a common one, counting matches only up to its bound', async () => {
    const store = new SqliteStore(join(dir, 'trail.db'), { commonTextMatches: 500 });
    try {
      await store.init();
      expect(store.usesTextIndex('needle-3')).toBe(true); // a few dozen events
      expect(store.usesTextIndex('customers')).toBe(false); // thousands
      expect(store.usesTextIndex('ne')).toBe(false); // no trigram
    } finally {
      await store.close();
    }
  });

  test('a text shorter than a trigram cannot use it, and is checked on the events walked in order', () => {
    expect(planOf({ text: 'ne', identity: 'agent-3' }, undefined).join(' | ')).not.toContain('byline_event_text');
  });
});

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  'Index Cond'?: string;
  'Actual Rows'?: number;
  'Actual Loops'?: number;
  Plans?: PlanNode[];
}

function nodes(n: PlanNode): PlanNode[] {
  return [n, ...(n.Plans ?? []).flatMap(nodes)];
}

describe('postgres: the trail queries search an index in the order they return', () => {
  let client: ReturnType<TestPostgres['client']>;
  beforeAll(async () => {
    const admin = pg.client();
    await admin.connect();
    await admin.query('CREATE DATABASE plans');
    await admin.end();
    const store = await openStore(pg.url('plans'));
    await fill(store);
    await store.close();
    client = pg.client('plans');
    await client.connect();
    await client.query('ANALYZE');
  });
  afterAll(async () => {
    await client?.end();
  });

  const planOf = async (filter: EventFilter, cursor: CursorKey | undefined) => {
    const q = buildEventQuery(filter, 100, cursor, 'postgres');
    const { rows } = await client.query(`EXPLAIN (FORMAT JSON) ${q.sql}`, q.values);
    const plan = nodes((rows[0] as { 'QUERY PLAN': [{ Plan: PlanNode }] })['QUERY PLAN'][0].Plan);
    const text = JSON.stringify(
      plan.map((n) => [n['Node Type'], n['Relation Name'], n['Index Name'], n['Index Cond']]),
    );
    return { plan, text };
  };

  test('pg_trgm is there, and the text index was built', async () => {
    const { rows } = await client.query(
      "SELECT indexdef FROM pg_indexes WHERE tablename = 'byline_events' AND indexname = 'byline_events_text'",
    );
    expect(rows[0]?.indexdef).toMatch(/USING gin .*gin_trgm_ops/);
  });

  test.each(textCases)('%s', async (_name, filter, cursor, other) => {
    const { plan, text } = await planOf(filter, cursor);
    // The events are never read whole. (On this small store the planner may read the small side
    // table whole for a hash join with the text index's matches; that is its costing, not a scan
    // of the trail.)
    expect(
      plan.filter((n) => n['Node Type'] === 'Seq Scan' && n['Relation Name'] === 'byline_events'),
      text,
    ).toEqual([]);
    const used = (index: string | undefined) => plan.some((n) => n['Index Name'] === index && n['Index Cond']);
    expect(used('byline_events_text') || (other !== undefined && used(other)), text).toBe(true);
    if (other === undefined)
      expect(
        plan.some((n) => n['Index Name'] === 'byline_events_text' && n['Index Cond']?.includes('~~')),
        text,
      ).toBe(true);
  });

  test("the trail's indexes hold their filter and the time, not the whole sort key", async () => {
    // Carrying stream, seq and id (two 36-character texts) in every index cost a third of the
    // store's bytes; an incremental sort of the events sharing one microsecond finishes the order.
    const { rows } = await client.query<{ name: string; def: string }>(
      `SELECT indexname AS name, indexdef AS def FROM pg_indexes
       WHERE tablename IN ('byline_events', 'byline_event_tables') ORDER BY indexname`,
    );
    // The id lookup, the chain's neighbours, insertion order and the text index need what they hold.
    const keep = ['byline_events_pkey', 'byline_events_chain', 'byline_events_ingest', 'byline_events_text'];
    const trail = rows.filter((r) => !keep.includes(r.name));
    expect(trail.map((r) => r.name)).toEqual(
      expect.arrayContaining(['byline_events_time', 'byline_events_identity', 'byline_event_tables_name']),
    );
    for (const r of trail) {
      expect(r.def, r.name).toMatch(/[(,] ?time_us\)( WHERE .*)?$/);
      expect(/\b(stream|chain_seq|event_id|id)\b/.test(r.def.replace(/^.*? USING \w+ /, '')), r.def).toBe(false);
    }
    const keys = await client.query(
      "SELECT conname FROM pg_constraint WHERE conrelid = 'byline_event_tables'::regclass AND contype IN ('p', 'u')",
    );
    expect(keys.rows).toEqual([]);
  });

  test.each(cases)('%s: a page reads a page of rows, not every match', async (_name, filter, cursor) => {
    // EXPLAIN ANALYZE: no scan returns more than a few pages' worth, however many events match
    // (agent-3 alone has 600); Postgres stops once the incremental sort has the page.
    const q = buildEventQuery(filter, 20, cursor, 'postgres');
    const { rows } = await client.query(`EXPLAIN (ANALYZE, FORMAT JSON) ${q.sql}`, q.values);
    const plan = nodes((rows[0] as { 'QUERY PLAN': [{ Plan: PlanNode }] })['QUERY PLAN'][0].Plan);
    const scans = plan.filter((n) => /Scan/.test(n['Node Type']));
    // Rows per loop times loops: an inner index scan run once per outer row counts every run.
    const rowsOf = (n: PlanNode) => (n['Actual Rows'] ?? 0) * (n['Actual Loops'] ?? 1);
    const text = JSON.stringify(plan.map((n) => [n['Node Type'], n['Index Name'], rowsOf(n)]));
    for (const n of scans) expect(rowsOf(n), text).toBeLessThanOrEqual(200);
  });

  test.each(cases)('%s', async (_name, filter, cursor, _column, indexed) => {
    const { plan, text } = await planOf(filter, cursor);
    const column = indexed;
    expect(
      plan.filter((n) => n['Node Type'] === 'Seq Scan'),
      text,
    ).toEqual([]);
    // The filter's column bounds an index scan (not a filter on rows read for another reason);
    // Postgres may then sort what that scan returns when it estimates few rows, as it should.
    expect(
      plan.some((n) => n['Index Cond']?.includes(column)),
      text,
    ).toBe(true);
  });
});
