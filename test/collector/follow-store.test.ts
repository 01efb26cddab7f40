/**
 * Following the store in insertion order, against both stores (SQLite in a temp dir, a real
 * PostgreSQL from the harness): every event stored after a position comes back exactly once, in
 * commit order, whatever its own time; and in PostgreSQL a transaction that commits after a later
 * one is never skipped.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChainedEvent } from '@byline/api';
import {
  decodeFollowCursor,
  type EventFilter,
  type EventStore,
  encodeFollowCursor,
  FOLLOW_START,
  type FollowPosition,
  ndjson,
  openStore,
  parseBatch,
  SampleStream,
} from '@byline/collector';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { startPostgres, type TestPostgres } from '../harness/postgres.js';

let pg: TestPostgres;
let dir: string;
let databases = 0;
const open: EventStore[] = [];

beforeAll(async () => {
  pg = await startPostgres();
  dir = mkdtempSync(join(tmpdir(), 'byline-follow-'));
});

afterAll(async () => {
  await pg?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

afterEach(async () => {
  for (const s of open.splice(0)) await s.close();
});

function ingest(events: readonly ChainedEvent[]) {
  const identity = events[0]?.event.identity.name ?? 'billing-agent';
  const parsed = parseBatch(
    new TextEncoder().encode(ndjson(events)),
    { name: identity, kind: 'agent', source: 'static' },
    1_000_000,
  );
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.events;
}

async function newPgDatabase(): Promise<string> {
  const name = `follow_${++databases}`;
  const admin = pg.client();
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  return name;
}

const backends: [string, () => Promise<EventStore>][] = [
  ['sqlite', async () => openStore(`sqlite:${join(dir, `trail-${++databases}`, 'trail.db')}`)],
  ['postgres', async () => openStore(pg.url(await newPgDatabase()))],
];

/** Everything after `from`, page by page, and the position after it. */
async function drain(store: EventStore, from: FollowPosition, filter: EventFilter = {}, pageSize = 7) {
  const ids: string[] = [];
  let at = from;
  for (;;) {
    const page = await store.follow(filter, at, pageSize);
    ids.push(...page.events.map((e) => e.key.id));
    at = page.position;
    if (page.events.length === 0) return { ids, at };
  }
}

describe.each(backends)('%s store', (_name, make) => {
  async function fresh(): Promise<EventStore> {
    const store = await make();
    open.push(store);
    return store;
  }

  test('returns events in insertion order, not time order, each once across pages and resumes', async () => {
    const store = await fresh();
    const late = new SampleStream({ startMs: Date.UTC(2026, 0, 1) }); // older times, stored last
    const early = new SampleStream({ startMs: Date.UTC(2026, 11, 1) });
    const first = early.take(10);
    const second = late.take(10);
    await store.insertBatch(ingest(first), new Date());
    const mid = await drain(store, FOLLOW_START);
    expect(mid.ids).toEqual(first.map((e) => e.event.id));
    await store.insertBatch(ingest(second), new Date());
    const third = early.take(5);
    await store.insertBatch(ingest(third), new Date());
    // Resuming from the cursor (through its text form, as a reader holds it) gives only the rest.
    const resumed = decodeFollowCursor(encodeFollowCursor(mid.at))!;
    const rest = await drain(store, resumed);
    expect(rest.ids).toEqual([...second, ...third].map((e) => e.event.id));
    // A retried batch stores nothing, so nothing comes back twice.
    await store.insertBatch(ingest(second), new Date());
    expect((await drain(store, rest.at)).ids).toEqual([]);
    expect(await store.followEnd()).toEqual(rest.at);
  });

  test('a filtered follow moves its position past events that do not match', async () => {
    const store = await fresh();
    const billing = new SampleStream({ identity: 'billing-agent' });
    const support = new SampleStream({ identity: 'support-agent' });
    await store.insertBatch(ingest(billing.take(4)), new Date());
    await store.insertBatch(ingest(support.take(4)), new Date());
    const page = await store.follow({ identity: 'support-agent' }, FOLLOW_START, 100);
    expect(page.events).toHaveLength(4);
    const none = await store.follow({ identity: 'nobody' }, FOLLOW_START, 100);
    expect(none.events).toEqual([]);
    expect(none.position).toEqual(await store.followEnd());
    const more = support.take(2);
    await store.insertBatch(ingest(more), new Date());
    const next = await store.follow({ identity: 'support-agent' }, none.position, 100);
    expect(next.events.map((e) => e.key.id)).toEqual(more.map((e) => e.event.id));
  });

  test('class, status and text filter a follow as they filter a query', async () => {
    const store = await fresh();
    const events = new SampleStream({ identity: 'billing-agent', sessionLength: 5 }).take(40);
    await store.insertBatch(ingest(events), new Date());
    const ids = (match: (e: (typeof events)[number]['event']) => boolean) =>
      events.filter((c) => match(c.event)).map((c) => c.event.id);
    const cases: [EventFilter, string[]][] = [
      [{ statementClass: 'ddl' }, ids((e) => e.statement?.class === 'ddl')],
      [{ status: 'ok', type: 'statement' }, ids((e) => e.type === 'statement')],
      [{ text: 'billing.ledger' }, ids((e) => e.statement?.text.includes('billing.ledger') ?? false)],
      [
        { text: 'where id = $1', statementClass: 'read' },
        ids((e) => e.statement?.text.includes('where id = $1') ?? false),
      ],
      [{ text: '%' }, []],
    ];
    for (const [filter, expected] of cases) {
      expect(expected.length > 0 || filter.text === '%', JSON.stringify(filter)).toBe(true);
      expect((await drain(store, FOLLOW_START, filter)).ids, JSON.stringify(filter)).toEqual(expected);
    }
  });

  test('exporter positions and dead letters are kept per exporter', async () => {
    const store = await fresh();
    expect(await store.exportPosition('siem')).toBeUndefined();
    await store.saveExportPosition('siem', { tx: '0', ord: 5 });
    await store.saveExportPosition('siem', { tx: '0', ord: 9 });
    expect(await store.exportPosition('siem')).toEqual({ tx: '0', ord: 9 });
    expect(await store.exportPosition('otel')).toBeUndefined();
    await store.recordDeadLetters('siem', ['a', 'b'], 'HTTP 400: bad', 3);
    expect((await store.deadLetters('siem')).map((d) => [d.eventId, d.attempts, d.error])).toEqual([
      ['a', 3, 'HTTP 400: bad'],
      ['b', 3, 'HTTP 400: bad'],
    ]);
    expect(await store.deadLetters('otel')).toEqual([]);
  });
});

describe('cursor text', () => {
  test('refuses what it did not hand out', () => {
    expect(decodeFollowCursor('nope!')).toBeUndefined();
    expect(decodeFollowCursor(Buffer.from('[1,2,3]').toString('base64url'))).toBeUndefined();
    expect(decodeFollowCursor(Buffer.from('["f","-1",2]').toString('base64url'))).toBeUndefined();
    expect(decodeFollowCursor(Buffer.from('["f","18446744073709551616",2]').toString('base64url'))).toBeUndefined();
    expect(decodeFollowCursor(encodeFollowCursor({ tx: '18446744073709551615', ord: 3 }))).toEqual({
      tx: '18446744073709551615',
      ord: 3,
    });
  });
});

describe('postgres: ids that commit out of order', () => {
  test('a row whose transaction commits after a later one is delivered, never skipped', async () => {
    const name = await newPgDatabase();
    const store = await openStore(pg.url(name));
    open.push(store);
    const slow = ingest(new SampleStream().take(1))[0]!;
    const fast = ingest(new SampleStream().take(3));
    // A writer that took its ingest_ord first but has not committed yet.
    const writer = pg.client(name);
    await writer.connect();
    try {
      await writer.query('BEGIN');
      await writer.query(
        `INSERT INTO byline_events (id, time_us, event_type, identity_name, session_id, session_seq, route,
           database_name, stream, chain_seq, chain_prev, chain_hash, approval_name, received_at, event)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, now(), $14)`,
        [
          slow.id,
          slow.timeUs,
          slow.type,
          slow.identity,
          slow.sessionId,
          slow.sessionSeq,
          slow.route,
          slow.database,
          slow.stream,
          slow.seq,
          slow.prev,
          slow.hash,
          slow.approval,
          slow.json,
        ],
      );
      // A later writer commits first: its ords are higher, its rows visible.
      await store.insertBatch(fast, new Date());
      const before = await store.follow({}, FOLLOW_START, 100);
      // Handing these out now would move the reader past the slow writer's row.
      expect(before.events).toEqual([]);
      expect(before.position).toEqual(FOLLOW_START);
      await writer.query('COMMIT');
    } finally {
      await writer.end();
    }
    const after = await drain(store, FOLLOW_START);
    expect(after.ids).toEqual([slow.id, ...fast.map((e) => e.id)]);
  });
});
