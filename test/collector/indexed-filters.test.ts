/**
 * The class, status and text filters answer from indexes (query-plans.test.ts); here, on both
 * stores, they must answer exactly what a scan of every event would: the same events, in the same
 * order, across pages. The texts are the awkward ones: LIKE's and FTS5's own syntax, quotes,
 * backslashes, case, texts shorter than a trigram, characters outside the BMP. And events deleted
 * from the store (retention) leave the text index with them.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AuditEvent, ChainedEvent } from '@byline/api';
import {
  type EventFilter,
  type EventStore,
  ndjson,
  openStore,
  type PostgresStore,
  parseBatch,
  SampleStream,
  SqliteStore,
} from '@byline/collector';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startPostgres, type TestPostgres } from '../harness/postgres.js';

const T0 = Date.UTC(2026, 10, 1);

const TEXTS = [
  "select * from customers where name like '100%_off'",
  'SELECT * FROM Customers WHERE note = \'say "hi"\'',
  "update notes set body = 'C:\\temp\\new' where id = 1",
  'select \'NEAR(a b) AND c* OR "d"\' from fts_syntax',
  "insert into menu (dish) values ('crème brûlée 🍮 au café')",
  'delete from ab where a = 1',
];

/** Two identities' streams, statements of every class and status, with the texts above mixed in. */
function trail(): ChainedEvent[] {
  const out: ChainedEvent[] = [];
  for (const [n, identity] of ['agent-a', 'agent-b'].entries()) {
    const sample = new SampleStream({ identity, startMs: T0 + n, sessionLength: 7 });
    let statements = 0;
    let m = 0;
    for (let i = 0; i < 300; i++) {
      const e = sample.nextEvent();
      if (e.type === 'statement' && statements++ % 3 === 0) {
        e.statement = {
          ...e.statement!,
          text: TEXTS[m % TEXTS.length]!,
          class: (['read', 'write', 'misc'] as const)[Math.floor(m / TEXTS.length) % 3]!,
        };
        e.result = { ...e.result!, status: (['error', 'denied', 'cancelled', 'unknown'] as const)[m % 4]! };
        m++;
      }
      out.push(sample.writer.append(e));
    }
  }
  return out;
}

/** What a scan of every event answers: the filter applied to each event, in the trail's order. */
function scan(events: readonly ChainedEvent[], filter: EventFilter): string[] {
  const match = (e: AuditEvent) =>
    (filter.statementClass === undefined || e.statement?.class === filter.statementClass) &&
    (filter.status === undefined || e.result?.status === filter.status) &&
    (filter.identity === undefined || e.identity.name === filter.identity) &&
    (filter.text === undefined || (e.statement?.text.includes(filter.text) ?? false));
  return events
    .filter((c) => match(c.event))
    .sort(
      (x, y) =>
        Date.parse(x.event.time) - Date.parse(y.event.time) ||
        (x.event.chain.stream < y.event.chain.stream ? -1 : x.event.chain.stream > y.event.chain.stream ? 1 : 0) ||
        x.event.chain.seq - y.event.chain.seq,
    )
    .map((c) => c.event.id);
}

async function query(store: EventStore, filter: EventFilter, pageSize: number): Promise<string[]> {
  const out: string[] = [];
  let after: Parameters<EventStore['query']>[2];
  for (;;) {
    const page = await store.query(filter, pageSize, after);
    out.push(...page.events.map((e) => (JSON.parse(e.json) as AuditEvent).id));
    if (!page.next) return out;
    after = page.next;
  }
}

const FILTERS: EventFilter[] = [
  { statementClass: 'misc' },
  { statementClass: 'ddl' },
  { status: 'denied' },
  { status: 'ok' },
  { statementClass: 'write', status: 'error' },
  { text: '100%_off' },
  { text: '%' },
  { text: '_' },
  { text: 'like' },
  { text: 'Customers' },
  { text: 'customers' },
  { text: 'say "hi"' },
  { text: '"' },
  { text: 'C:\\temp\\new' },
  { text: '\\' },
  { text: 'NEAR(a b) AND c*' },
  { text: 'OR "d"' },
  { text: 'brûlée 🍮 au' },
  { text: '🍮' },
  { text: 'e 🍮' },
  { text: 'ab' },
  { text: 'a' },
  { text: 'no such text anywhere' },
  { text: 'customers', identity: 'agent-b', statementClass: 'read' },
];

let pg: TestPostgres;
let dir: string;
const stores: [string, EventStore][] = [];
const events = trail();

beforeAll(async () => {
  pg = await startPostgres();
  dir = mkdtempSync(join(tmpdir(), 'byline-filters-'));
  const admin = pg.client();
  await admin.connect();
  await admin.query('CREATE DATABASE filters');
  await admin.end();
  stores.push(['sqlite', await openStore(`sqlite:${join(dir, 'trail.db')}`)]);
  // Every text counted as common: found by walking the events in order instead of the trigram table.
  const walking = new SqliteStore(join(dir, 'walked.db'), { commonTextMatches: 1 });
  await walking.init();
  stores.push(['sqlite, texts walked in order', walking]);
  stores.push(['postgres', await openStore(pg.url('filters'))]);
  for (const [, store] of stores) {
    for (const identity of ['agent-a', 'agent-b']) {
      const mine = events.filter((c) => c.event.identity.name === identity);
      const parsed = parseBatch(
        new TextEncoder().encode(ndjson(mine)),
        { name: identity, kind: 'agent', source: 'static' },
        10_000,
      );
      if (!parsed.ok) throw new Error(parsed.error);
      await store.insertBatch(parsed.events, new Date(), { owner: identity });
    }
  }
}, 120_000);

afterAll(async () => {
  for (const [, store] of stores) await store.close();
  await pg?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe.each(['sqlite', 'sqlite, texts walked in order', 'postgres'])(
  '%s: indexed filters answer what a scan answers',
  (name) => {
    const store = () => stores.find(([n]) => n === name)![1];

    test.each(FILTERS.map((f) => [JSON.stringify(f), f] as const))('%s', async (_label, filter) => {
      const expected = scan(events, filter);
      expect(await query(store(), filter, 5000)).toEqual(expected);
      // And page by page, through the cursor.
      expect(await query(store(), filter, 7)).toEqual(expected);
    });

    test('the filters find something: the cases above are not all empty', () => {
      const empty = FILTERS.filter((f) => scan(events, f).length === 0);
      expect(empty).toEqual([{ text: 'no such text anywhere' }]);
    });
  },
);

describe('postgres where pg_trgm cannot be created', () => {
  test('the migration leaves the text index out, and text search still answers what a scan answers', async () => {
    const admin = pg.client();
    await admin.connect();
    await admin.query('CREATE ROLE plain_collector LOGIN');
    await admin.query('CREATE DATABASE no_trgm'); // owned by the superuser: no CREATE EXTENSION for the collector
    await admin.end();
    const owner = pg.client('no_trgm');
    await owner.connect();
    await owner.query('GRANT USAGE, CREATE ON SCHEMA public TO plain_collector');
    const store = await openStore(pg.url('no_trgm', 'plain_collector'));
    try {
      const mine = events.filter((c) => c.event.identity.name === 'agent-a');
      const parsed = parseBatch(
        new TextEncoder().encode(ndjson(mine)),
        { name: 'agent-a', kind: 'agent', source: 'static' },
        10_000,
      );
      if (!parsed.ok) throw new Error(parsed.error);
      await store.insertBatch(parsed.events, new Date(), { owner: 'agent-a' });
      const indexes = await owner.query(
        "SELECT indexname FROM pg_indexes WHERE tablename = 'byline_events' AND indexname LIKE 'byline_events_%'",
      );
      const names = indexes.rows.map((r: { indexname: string }) => r.indexname);
      expect(names).toEqual(expect.arrayContaining(['byline_events_class', 'byline_events_status']));
      expect(names).not.toContain('byline_events_text');
      expect((await owner.query("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")).rows).toEqual([]);
      // What the collector warns about at start.
      expect((store as PostgresStore).textIndexed).toBe(false);
      expect((stores.find(([n]) => n === 'postgres')![1] as PostgresStore).textIndexed).toBe(true);
      for (const filter of [{ text: '100%_off' }, { text: 'e 🍮' }, { text: 'C:\\temp' }]) {
        const expected = scan(mine, filter);
        expect(expected.length).toBeGreaterThan(0);
        expect(await query(store, filter, 7)).toEqual(expected);
      }
    } finally {
      await store.close();
      await owner.end();
    }
  });
});

describe('retention deletes the text index entries with their events', () => {
  test('sqlite: after the oldest events go, a text search finds only what remains', async () => {
    const store = stores[0]![1];
    const retired = await store.retire({ days: 1 }, new Date(T0 + 86_400_000 + 150));
    expect(retired.length).toBe(2);
    const kept = events.filter((c) => Date.parse(c.event.time) >= T0 + 150);
    for (const filter of [{ text: 'customers' }, { text: '🍮' }, { statementClass: 'misc' as const }]) {
      const expected = scan(kept, filter);
      expect(expected.length).toBeGreaterThan(0);
      expect(await query(store, filter, 50)).toEqual(expected);
    }
  });
});
