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

/** Several identities writing interleaved in time, each through its own sidecar stream. */
async function fill(store: EventStore): Promise<void> {
  for (let i = 0; i < IDENTITIES; i++) {
    const identity = `agent-${i}`;
    const stream = new SampleStream({ identity, startMs: T0 + i * 7, sessionLength: 10 });
    for (let sent = 0; sent < PER_IDENTITY; sent += 200) {
      const parsed = parseBatch(
        new TextEncoder().encode(ndjson(stream.take(200))),
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

/** Each trail query, and what its index must be searched by (a column name of the plan). */
const QUERIES: [string, EventFilter, string][] = [
  ['identity', { identity: 'agent-3' }, 'identity_name'],
  ['table', { table: 'billing.ledger' }, 'name'],
  ['time range', range, 'time_us'],
  ['identity and time range', { identity: 'agent-3', ...range }, 'identity_name'],
  ['table and time range', { table: 'orders', ...range }, 'name'],
  ['identity and table', { identity: 'agent-3', table: 'billing.ledger' }, 'identity_name'],
];

const cases = QUERIES.flatMap(([name, filter, column]) => [
  [`${name}, first page`, filter, undefined, column] as const,
  [`${name}, a later page`, filter, after, column] as const,
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

  test.each(cases)('%s', (_name, filter, cursor, column) => {
    const q = buildEventQuery(filter, 100, cursor, 'sqlite');
    const plan = (db.prepare(`EXPLAIN QUERY PLAN ${q.sql}`).all(...q.values) as { detail: string }[]).map(
      (r) => r.detail,
    );
    const text = plan.join(' | ');
    // The first step drives the query: an index searched by the filter's column.
    expect(plan[0], text).toMatch(
      new RegExp(`^SEARCH \\w+ USING (COVERING )?(INDEX \\w+|PRIMARY KEY) \\([^)]*\\b${column}[=>]`),
    );
    expect(text).not.toMatch(/(^|\| )SCAN /);
    // Sorting ties of one timestamp is fine; sorting every match is not.
    expect(text).not.toMatch(/USE TEMP B-TREE FOR ORDER BY/);
  });
});

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Cond'?: string;
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

  test.each(cases)('%s', async (_name, filter, cursor, column) => {
    const q = buildEventQuery(filter, 100, cursor, 'postgres');
    const { rows } = await client.query(`EXPLAIN (FORMAT JSON) ${q.sql}`, q.values);
    const plan = nodes((rows[0] as { 'QUERY PLAN': [{ Plan: PlanNode }] })['QUERY PLAN'][0].Plan);
    const text = JSON.stringify(plan.map((n) => [n['Node Type'], n['Relation Name'], n['Index Cond']]));
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
