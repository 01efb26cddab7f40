/**
 * One contract, two stores: the same tests against SQLite (a file in a temp dir) and PostgreSQL (a
 * real server from the harness, a fresh database per test). Events are real: chained by ChainWriter
 * and validated by the ingest parser, exactly as the HTTP path hands them over.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ChainedEvent, HeadSigner } from '@byline/api';
import {
  type EventFilter,
  type EventStore,
  type IngestEvent,
  ndjson,
  openStore,
  PostgresStore,
  parseBatch,
  SampleStream,
  StreamOwnerError,
} from '@byline/collector';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { startPostgres, type TestPostgres } from '../harness/postgres.js';

let pg: TestPostgres;
let dir: string;
let databases = 0;
const open: EventStore[] = [];

beforeAll(async () => {
  pg = await startPostgres();
  dir = mkdtempSync(join(tmpdir(), 'byline-store-'));
});

afterAll(async () => {
  await pg?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

afterEach(async () => {
  for (const s of open.splice(0)) await s.close();
});

/** Validated events, as the HTTP path would hand them to the store. */
function ingest(events: readonly ChainedEvent[], identity = events[0]?.event.identity.name ?? 'billing-agent') {
  const parsed = parseBatch(
    new TextEncoder().encode(ndjson(events)),
    { name: identity, kind: 'agent', source: 'static' },
    1_000_000,
  );
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.events;
}

async function all(store: EventStore, filter: EventFilter = {}, pageSize = 5000): Promise<string[]> {
  const out: string[] = [];
  let after: Parameters<EventStore['query']>[2];
  for (;;) {
    const page = await store.query(filter, pageSize, after);
    out.push(...page.events.map((e) => e.json));
    if (!page.next) return out;
    after = page.next;
  }
}

const backends: [string, () => Promise<{ store: EventStore; url: string }>][] = [
  [
    'sqlite',
    async () => {
      const url = `sqlite:${join(dir, `trail-${++databases}`, 'trail.db')}`;
      return { store: await openStore(url), url };
    },
  ],
  [
    'postgres',
    async () => {
      const name = `trail_${++databases}`;
      const admin = pg.client();
      await admin.connect();
      await admin.query(`CREATE DATABASE ${name}`);
      await admin.end();
      const url = pg.url(name);
      return { store: await openStore(url), url };
    },
  ],
];

describe.each(backends)('%s store', (backend, make) => {
  async function fresh(): Promise<EventStore> {
    const { store } = await make();
    open.push(store);
    return store;
  }

  test('stores events verbatim and returns them in time, stream, seq order with their receipt time', async () => {
    const store = await fresh();
    const events = new SampleStream().take(30);
    const received = new Date('2026-11-27T04:00:00.123Z');
    expect(await store.insertBatch(ingest(events), received)).toEqual({
      accepted: 30,
      duplicates: 0,
      markers: [],
      resolved: 0,
      retired: 0,
    });
    const page = await store.query({}, 100);
    expect(page.events.map((e) => e.json)).toEqual(events.map((e) => e.json));
    expect(page.events[0]!.receivedAt).toBe('2026-11-27T04:00:00.123Z');
    expect(page.next).toBeNull();
    expect(await store.streamHead(events[0]!.event.chain.stream)).toEqual({
      seq: 30,
      hash: events[29]!.event.chain.hash,
    });
  });

  test('a batch larger than one multi-row statement is stored whole: every event, every table row, each once', async () => {
    const store = await fresh();
    // 3 streams × 150 events: several full statements and a remainder per stream.
    const streams = [new SampleStream(), new SampleStream(), new SampleStream()];
    const events = streams.flatMap((s) => s.take(150));
    const batch = ingest(events);
    expect(await store.insertBatch(batch, new Date())).toMatchObject({ accepted: 450, duplicates: 0, markers: [] });
    expect(new Set(await all(store))).toEqual(new Set(events.map((e) => e.json)));
    const withOrders = batch.filter((e) => e.tables.includes('orders')).map((e) => e.json);
    expect(withOrders.length).toBeGreaterThan(64);
    expect(new Set(await all(store, { table: 'orders' }))).toEqual(new Set(withOrders));
    expect(await all(store, { table: 'orders' })).toHaveLength(withOrders.length);
    // Retried whole, with the last 10 of each stream new: only those are stored.
    const more = streams.flatMap((s) => s.take(10));
    expect(await store.insertBatch(ingest([...events, ...more]), new Date())).toMatchObject({
      accepted: 30,
      duplicates: 450,
      markers: [],
    });
    expect(await all(store)).toHaveLength(480);
  });

  test('statement texts with quotes, backslashes, control characters and non-ASCII come back byte for byte', async () => {
    const store = await fresh();
    const s = new SampleStream();
    const texts = [
      `select '{"a":"b\\"c"}'::json, E'tab\there', $$back\\slash$$`,
      'select 1 -- line one\nselect 2\r\n\u0001\u001f',
      "select 'żółć ☃ 🦆 \u2028 \u2029 \u00e9'",
      '',
    ];
    const start = s.take(1); // session.start; statements follow
    const statements = texts.map((text) => {
      const e = s.nextEvent();
      return s.writer.append({ ...e, statement: { ...e.statement!, text } });
    });
    const events = [...start, ...statements];
    expect(statements.map((e) => e.event.statement?.text)).toEqual(texts);
    expect(await store.insertBatch(ingest(events), new Date())).toMatchObject({ accepted: events.length });
    expect(await all(store)).toEqual(events.map((e) => e.json));
  });

  test('a retried batch is acknowledged as duplicates and stores nothing twice', async () => {
    const store = await fresh();
    const events = ingest(new SampleStream().take(10));
    await store.insertBatch(events.slice(0, 6), new Date());
    const retry = await store.insertBatch(events, new Date());
    expect(retry).toMatchObject({ accepted: 4, duplicates: 6, markers: [] });
    expect(await store.insertBatch(events, new Date())).toMatchObject({ accepted: 0, duplicates: 10 });
    expect(await all(store)).toEqual(events.map((e) => e.json));
    const [summary] = await store.streams();
    expect(summary).toMatchObject({ firstSeq: 1, lastSeq: 10, count: 10, openMarkers: [] });
  });

  test('the same event twice in one batch is stored once', async () => {
    const store = await fresh();
    const events = ingest(new SampleStream().take(3));
    expect(await store.insertBatch([...events, events[1]!], new Date())).toMatchObject({ accepted: 3, duplicates: 1 });
    expect(await all(store)).toHaveLength(3);
  });

  test('a batch that fails part-way stores nothing', async () => {
    const store = await fresh();
    const s = new SampleStream();
    await store.insertBatch(ingest(s.take(2)), new Date());
    const next = ingest(s.take(5));
    // A value the database refuses (NOT NULL), after four good rows.
    const poisoned = [...next.slice(0, 4), { ...next[4]!, route: null } as unknown as IngestEvent];
    await expect(store.insertBatch(poisoned, new Date())).rejects.toThrow();
    expect(await all(store)).toHaveLength(2);
    expect(await store.streamHead(s.stream)).toMatchObject({ seq: 2 });
    expect(await store.insertBatch(next, new Date())).toMatchObject({ accepted: 5, markers: [] });
  });

  test('filters: identity, table, route, database, session, approval, stream, type, class, status, text, since and until', async () => {
    const store = await fresh();
    const t0 = Date.UTC(2026, 10, 27, 3, 0, 0);
    const billing = new SampleStream({ identity: 'billing-agent', startMs: t0, sessionLength: 4 }).take(12);
    const support = new SampleStream({
      identity: 'support-agent',
      route: 'crm-db',
      database: 'crm',
      startMs: t0 + 5,
      approval: 'ticket-42',
    }).take(8);
    await store.insertBatch(ingest(billing), new Date());
    await store.insertBatch(ingest(support), new Date());
    const texts = (list: ChainedEvent[], keep: (e: ChainedEvent) => boolean) =>
      list
        .filter(keep)
        .sort(
          (a, b) =>
            a.event.time.localeCompare(b.event.time) || a.event.chain.stream.localeCompare(b.event.chain.stream),
        )
        .map((e) => e.json);
    const both = [...billing, ...support];

    expect(await all(store, { identity: 'support-agent' })).toEqual(texts(support, () => true));
    expect(await all(store, { identity: 'nobody' })).toEqual([]);
    expect(await all(store, { table: 'customers' })).toEqual(
      texts(both, (e) => e.event.statement?.tables?.includes('customers') ?? false),
    );
    expect(await all(store, { table: 'billing.ledger' })).toEqual(
      texts(both, (e) => e.event.statement?.tables?.includes('billing.ledger') ?? false),
    );
    expect(await all(store, { route: 'crm-db' })).toEqual(texts(support, () => true));
    expect(await all(store, { database: 'orders' })).toEqual(texts(billing, () => true));
    const session = billing[6]!.event.session.id;
    expect(await all(store, { session })).toEqual(texts(billing, (e) => e.event.session.id === session));
    expect(await all(store, { approval: 'ticket-42' })).toEqual(texts(support, (e) => e.event.type === 'statement'));
    expect(await all(store, { stream: billing[0]!.event.chain.stream })).toEqual(texts(billing, () => true));
    expect(await all(store, { type: 'session.start' })).toEqual(texts(both, (e) => e.event.type === 'session.start'));
    const since = (t0 + 7) * 1000;
    const until = (t0 + 10) * 1000;
    expect(await all(store, { sinceUs: since, untilUs: until })).toEqual(
      texts(both, (e) => Date.parse(e.event.time) * 1000 >= since && Date.parse(e.event.time) * 1000 < until),
    );
    expect(await all(store, { statementClass: 'ddl' })).toEqual(texts(both, (e) => e.event.statement?.class === 'ddl'));
    expect(await all(store, { status: 'ok', type: 'statement' })).toEqual(
      texts(both, (e) => e.event.type === 'statement' && e.event.result?.status === 'ok'),
    );
    expect(await all(store, { status: 'denied' })).toEqual([]);
    // A substring, exactly as written: neither case-folded nor a LIKE pattern.
    expect(await all(store, { text: 'update customers' })).toEqual(
      texts(both, (e) => e.event.statement?.text.includes('update customers') ?? false),
    );
    expect(await all(store, { text: 'update customers' })).not.toEqual([]);
    expect(await all(store, { text: 'UPDATE CUSTOMERS' })).toEqual([]);
    expect(await all(store, { text: 'upd%' })).toEqual([]);
    expect(await all(store, { identity: 'billing-agent', table: 'customers', sinceUs: since })).toEqual(
      texts(
        billing,
        (e) => (e.event.statement?.tables?.includes('customers') ?? false) && Date.parse(e.event.time) * 1000 >= since,
      ),
    );
  });

  test('keyset paging walks every event exactly once, also through ties in time and with filters', async () => {
    const store = await fresh();
    // Two streams with the same clock: every time appears twice, so order falls to stream, then seq.
    const a = new SampleStream({ startMs: Date.UTC(2026, 10, 27) }).take(23);
    const b = new SampleStream({ startMs: Date.UTC(2026, 10, 27) }).take(23);
    await store.insertBatch(ingest([...a, ...b]), new Date());
    const everything = await all(store, {}, 1000);
    expect(everything).toHaveLength(46);
    const [first, second] = [a[0]!.event.chain.stream, b[0]!.event.chain.stream].sort();
    const byStream = new Map([
      [a[0]!.event.chain.stream, a],
      [b[0]!.event.chain.stream, b],
    ]);
    expect(everything.slice(0, 2)).toEqual([byStream.get(first!)![0]!.json, byStream.get(second!)![0]!.json]);
    for (const size of [1, 4, 7, 45, 46]) expect(await all(store, {}, size)).toEqual(everything);
    const pages: number[] = [];
    let after: Parameters<EventStore['query']>[2];
    do {
      const page = await store.query({ table: 'customers' }, 3, after);
      pages.push(page.events.length);
      after = page.next ?? undefined;
    } while (after);
    expect(pages.reduce((x, y) => x + y, 0)).toBe((await all(store, { table: 'customers' })).length);
    expect(pages.length).toBeGreaterThan(2);
  });

  test('a gap is marked, and resolved when a late batch fills it', async () => {
    const store = await fresh();
    const s = new SampleStream();
    const events = s.take(10);
    const first = await store.insertBatch(ingest([...events.slice(0, 3), ...events.slice(6)]), new Date());
    expect(first.markers).toEqual([
      expect.objectContaining({
        stream: s.stream,
        seq: 7,
        kind: 'gap',
        detail: 'seqs 4–6 are missing',
        resolvedAt: null,
      }),
    ]);
    let [summary] = await store.streams();
    expect(summary).toMatchObject({ lastSeq: 10, count: 7, openMarkers: [{ seq: 7, kind: 'gap' }] });
    const late = await store.insertBatch(ingest(events.slice(3, 6)), new Date());
    expect(late).toMatchObject({ accepted: 3, markers: [], resolved: 1 });
    [summary] = await store.streams();
    expect(summary).toMatchObject({
      firstSeq: 1,
      lastSeq: 10,
      count: 10,
      headHash: events[9]!.event.chain.hash,
      openMarkers: [],
    });
    const markers = await store.markers([s.stream]);
    expect(markers).toEqual([expect.objectContaining({ seq: 7, kind: 'gap', resolvedAt: expect.any(String) })]);
  });

  test('a break (prev that does not link) and a fork (a seq held twice) are marked and the events kept', async () => {
    const store = await fresh();
    const s = new SampleStream();
    await store.insertBatch(ingest(s.take(3)), new Date());
    // A writer that lost its position: continues from the wrong prev.
    const { ChainWriter } = await import('@byline/api');
    const lost = new ChainWriter(s.stream, 3, 'f'.repeat(64));
    const broken = lost.append(s.nextEvent());
    const r1 = await store.insertBatch(ingest([broken]), new Date());
    expect(r1.markers).toEqual([expect.objectContaining({ seq: 4, kind: 'break' })]);
    // A second writer on the same stream: a different event with seq 2.
    const twin = new ChainWriter(
      s.stream,
      1,
      (await store.query({}, 1)).events[0]!.json.match(/"hash":"([0-9a-f]{64})"/)![1],
    );
    const forked = twin.append(s.nextEvent());
    const r2 = await store.insertBatch(ingest([forked]), new Date());
    expect(r2.markers).toEqual([expect.objectContaining({ seq: 2, kind: 'fork' })]);
    expect(await all(store)).toHaveLength(5);
    const [summary] = await store.streams();
    expect(summary!.openMarkers.map((m) => `${m.kind}:${m.seq}`)).toEqual(['fork:2', 'break:4']);
    expect(summary).toMatchObject({ lastSeq: 4, count: 5 });
  });

  test('an id that comes back with different content is not stored, and is marked', async () => {
    const store = await fresh();
    const [original] = ingest(new SampleStream().take(1));
    await store.insertBatch([original!], new Date());
    const impostor = { ...original!, hash: 'a'.repeat(64), json: original!.json.replace('"rows":null', '"rows":0') };
    const result = await store.insertBatch([impostor], new Date());
    expect(result).toMatchObject({ accepted: 0, duplicates: 1 });
    expect(result.markers).toEqual([expect.objectContaining({ kind: 'fork', seq: 1 })]);
    expect(result.markers[0]!.detail).toContain('arrived again with different content');
    expect(await all(store)).toEqual([original!.json]);
  });

  test('a stream belongs to the writer that opened it: another is refused and nothing of its batch is stored', async () => {
    const store = await fresh();
    const s = new SampleStream();
    const other = new SampleStream();
    await store.insertBatch(ingest(s.take(3)), new Date(), { owner: 'static:billing-agent' });
    const more = ingest([...other.take(2), ...s.take(2)]);
    const refused = store.insertBatch(more, new Date(), { owner: 'static:intruder' });
    await expect(refused).rejects.toBeInstanceOf(StreamOwnerError);
    await expect(refused).rejects.toThrow(
      `stream ${s.stream} belongs to static:billing-agent; static:intruder may not append to it`,
    );
    expect(await all(store)).toHaveLength(3);
    expect(await store.insertBatch(more, new Date(), { owner: 'static:billing-agent' })).toMatchObject({ accepted: 4 });
    // A stream opened without an owner (before owners were recorded) is taken by its next writer,
    // but only by one writing for the identity its events carry.
    const legacy = new SampleStream();
    await store.insertBatch(ingest(legacy.take(1)), new Date());
    const foreign = new SampleStream({ identity: 'support-agent' }, legacy.stream);
    foreign.writer.append(foreign.nextEvent()); // seq 1 is taken: the foreign events go on from seq 2
    await expect(
      store.insertBatch(ingest(foreign.take(1)), new Date(), { owner: 'static:support-agent' }),
    ).rejects.toThrow(
      `stream ${legacy.stream} belongs to the identity "billing-agent" (opened before stream owners were recorded)`,
    );
    await store.insertBatch(ingest(legacy.take(1)), new Date(), { owner: 'static:billing-agent' });
    await expect(store.insertBatch(ingest(legacy.take(1)), new Date(), { owner: 'static:b' })).rejects.toThrow(
      StreamOwnerError,
    );
  });

  test('batches arriving together are each all-or-nothing: a refused one stores nothing, the others everything', async () => {
    const store = await fresh();
    const mine = new SampleStream();
    const theirs = new SampleStream();
    await store.insertBatch(ingest(mine.take(2)), new Date(), { owner: 'static:billing-agent' });
    const firstOfTheirs = ingest(theirs.take(3));
    const refusedBatch = ingest([...new SampleStream().take(2), ...mine.take(1)]);
    const laterOfTheirs = ingest(theirs.take(3));
    // Handed over in one turn, as several shippers' requests finishing together are.
    const settled = await Promise.allSettled([
      store.insertBatch(firstOfTheirs, new Date(), { owner: 'static:billing-agent' }),
      store.insertBatch(refusedBatch, new Date(), { owner: 'static:intruder' }),
      store.insertBatch(laterOfTheirs, new Date(), { owner: 'static:billing-agent' }),
      store.insertBatch(firstOfTheirs, new Date(), { owner: 'static:billing-agent' }),
    ]);
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    expect((settled[1] as PromiseRejectedResult).reason).toBeInstanceOf(StreamOwnerError);
    // Of the first batch and its retry in the same group, one stores it and the other is its duplicate
    // (which one is the store's order: PostgreSQL's pool may take the retry's stream lock first), and
    // the chain links across the group.
    const answers = settled.map((s) => (s.status === 'fulfilled' ? s.value : undefined));
    const stored = { accepted: 3, duplicates: 0, markers: [], resolved: 0, retired: 0 };
    const duplicate = { accepted: 0, duplicates: 3, markers: [], resolved: 0, retired: 0 };
    expect([answers[1], answers[2]]).toEqual([undefined, stored]);
    expect([answers[0], answers[3]]).toEqual(expect.arrayContaining([stored, duplicate]));
    expect(await all(store)).toHaveLength(8);
    expect(await all(store, { stream: theirs.stream })).toEqual(
      [...firstOfTheirs, ...laterOfTheirs].map((e) => e.json),
    );
    expect(await store.streamHead(mine.stream)).toMatchObject({ seq: 2 });
  });

  test('statement texts of batches stored together are searchable, and none of a refused batch', async () => {
    const store = await fresh();
    const mine = new SampleStream();
    await store.insertBatch(ingest(mine.take(1)), new Date(), { owner: 'static:billing-agent' });
    // Each batch's statements name a needle of their own.
    const needled = (s: SampleStream, needle: string, n: number) =>
      ingest(
        Array.from({ length: n }, () => {
          const e = s.nextEvent();
          if (e.statement) e.statement = { ...e.statement, text: `${e.statement.text} /* ${needle} */` };
          return s.writer.append(e);
        }),
      );
    const first = needled(new SampleStream(), 'needle-first', 4);
    const refused = needled(mine, 'needle-refused', 4);
    const second = needled(new SampleStream(), 'needle-second', 4);
    const settled = await Promise.allSettled([
      store.insertBatch(first, new Date(), { owner: 'static:billing-agent' }),
      store.insertBatch(refused, new Date(), { owner: 'static:intruder' }),
      store.insertBatch(second, new Date(), { owner: 'static:billing-agent' }),
    ]);
    expect(settled.map((x) => x.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    const statements = (list: typeof first) => list.filter((e) => e.type === 'statement').map((e) => e.json);
    expect(statements(first).length).toBeGreaterThan(0);
    expect(await all(store, { text: 'needle-first' })).toEqual(statements(first));
    expect(await all(store, { text: 'needle-second' })).toEqual(statements(second));
    expect(await all(store, { text: 'needle-refused' })).toEqual([]);
    expect(await all(store, { text: 'needle-' })).toHaveLength(statements(first).length + statements(second).length);
  });

  test('signed heads register their key once and come back as evidence, with the head seq and every marker', async () => {
    const store = await fresh();
    const s = new SampleStream();
    const signer = new HeadSigner();
    const events = s.take(6);
    const headOf = (e: ChainedEvent) => signer.sign(e.event.chain);
    // The first receipt is kept; a later one for the same key changes nothing. A key first seen
    // without one gets one from its next batch.
    let receipt: string | undefined;
    const writer = (e: ChainedEvent) => ({
      owner: 'static:billing-agent',
      signedHead: headOf(e),
      ...(receipt ? { keyReceipt: receipt } : {}),
    });
    await store.insertBatch(ingest(events.slice(0, 2)), new Date(), writer(events[1]!));
    receipt = 'receipt-1';
    await store.insertBatch(ingest(events.slice(0, 2)), new Date(), writer(events[1]!)); // a retry, now receipted
    receipt = 'receipt-2';
    await store.insertBatch(ingest(events.slice(4)), new Date(), writer(events[5]!)); // leaves a gap at 3–4
    await store.insertBatch(ingest(events.slice(4)), new Date(), writer(events[5]!)); // a retry: nothing twice
    const [evidence] = await store.evidence([s.stream]);
    expect(evidence).toEqual({
      stream: s.stream,
      lastSeq: 6,
      markers: [{ seq: 5, kind: 'gap', detail: 'seqs 3–4 are missing', resolvedAt: null }],
      keys: [{ key: signer.key, owner: 'static:billing-agent', receipt: 'receipt-1' }],
      heads: [headOf(events[1]!), headOf(events[5]!)].map(({ stream, seq, hash, key, sig }) => ({
        stream,
        seq,
        hash,
        key,
        sig,
      })),
    });
    await store.insertBatch(ingest(events.slice(2, 4)), new Date(), { owner: 'static:billing-agent' });
    const [after] = await store
      .evidence([s.stream, 'no-such-stream'])
      .then((list) => list.filter((e) => e.stream === s.stream));
    expect(after!.markers).toEqual([expect.objectContaining({ kind: 'gap', resolvedAt: expect.any(String) })]);
    expect(await store.evidence([])).toEqual([]);
    expect(await store.evidence(['no-such-stream'])).toEqual([
      { stream: 'no-such-stream', markers: [], keys: [], heads: [] },
    ]);
  });

  test('init is idempotent, and a second store on the same database sees the same trail', async () => {
    const { store, url } = await make();
    open.push(store);
    await store.init();
    await store.insertBatch(ingest(new SampleStream().take(4)), new Date());
    const again = await openStore(url);
    open.push(again);
    expect(await all(again)).toHaveLength(4);
    await again.ping();
  });

  test.runIf(backend === 'postgres')(
    'replicas writing the same streams at once store every event once and keep the chains whole',
    async () => {
      const { url, store } = await make();
      open.push(store);
      const replicas = [store, new PostgresStore(url), new PostgresStore(url)];
      open.push(replicas[1]!, replicas[2]!);
      const streams = [new SampleStream(), new SampleStream()];
      const batches = streams.flatMap((s) => Array.from({ length: 8 }, () => ingest(s.take(25))));
      // Every batch goes to two replicas (a retry racing the original), in a shuffled order.
      const sends = batches.flatMap((b, i) => [
        { b, r: replicas[i % 3]! },
        { b, r: replicas[(i + 1) % 3]! },
      ]);
      sends.sort(() => Math.random() - 0.5);
      const results = await Promise.all(sends.map(({ b, r }) => r.insertBatch(b, new Date())));
      expect(results.reduce((n, r) => n + r.accepted, 0)).toBe(400);
      expect(results.reduce((n, r) => n + r.duplicates, 0)).toBe(400);
      expect(await all(store)).toHaveLength(400);
      const summaries = await store.streams();
      expect(summaries.map((s) => ({ ...s, stream: undefined }))).toEqual([
        expect.objectContaining({ firstSeq: 1, lastSeq: 200, count: 200, openMarkers: [] }),
        expect.objectContaining({ firstSeq: 1, lastSeq: 200, count: 200, openMarkers: [] }),
      ]);
      const markers = await store.markers(streams.map((s) => s.stream));
      expect(markers.every((m) => m.kind === 'gap' && m.resolvedAt !== null)).toBe(true);
    },
  );
});
