/**
 * The collector's HTTP API as a shipper and a reader use it: a real collector in-process on
 * loopback with a SQLite store in a temp dir, real HTTP requests, events chained by ChainWriter.
 * Every bad request gets a clear 4xx, stores nothing, and the collector keeps serving.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AuditEvent, type ChainedEvent, ChainWriter, canonicalJson } from '@byline/api';
import { ndjson, type RunningCollector, SampleStream, startCollector } from '@byline/collector';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { call, metric, rawExchange } from './http.js';

const WRITER = 'writer-token-billing-0123456789';
const SUPPORT = 'writer-token-support-0123456789';
const READER = 'reader-token-0123456789abcdef';

let dir: string;
let collector: RunningCollector;
let port: number;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'byline-collector-'));
  collector = await startCollector(
    {
      listen: '127.0.0.1:0',
      store: `sqlite:${join(dir, 'trail.db')}`,
      auth: {
        static: [
          { token: WRITER, identity: 'billing-agent' },
          { token: SUPPORT, identity: 'support-agent' },
          { token: READER, reader: true },
        ],
      },
      limits: { maxBatchBytes: 1024 * 1024, maxBatchEvents: 600 },
    },
    { logger: pino({ level: process.env.BYLINE_TEST_LOG ?? 'silent' }) },
  );
  port = collector.port;
});

afterAll(async () => {
  await collector?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const post = (events: readonly ChainedEvent[] | string, token = WRITER, headers: Record<string, string> = {}) =>
  call(port, 'POST', '/v1/events', { token, body: typeof events === 'string' ? events : ndjson(events), headers });

const get = (path: string, token = READER) => call(port, 'GET', path, { token });

/** Every event the reader sees for a query, following cursors. */
async function fetchAll(query: string, limit = 5000): Promise<{ events: AuditEvent[]; pages: number }> {
  const events: AuditEvent[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const sep = query ? '&' : '';
    const r = await get(`/v1/events?${query}${sep}limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`);
    expect(r.status, r.text).toBe(200);
    events.push(...r.json.events.map((e: { event: AuditEvent }) => e.event));
    cursor = r.json.nextCursor;
    pages += 1;
  } while (cursor);
  return { events, pages };
}

async function count(): Promise<number> {
  return (await fetchAll('')).events.length;
}

async function metrics(): Promise<string> {
  const r = await call(port, 'GET', '/metrics');
  expect(r.status).toBe(200);
  return r.text;
}

describe('ingest and query', () => {
  test('a round trip: what the sidecar sent comes back byte for byte, paged by cursor', async () => {
    const s = new SampleStream({ identity: 'billing-agent', startMs: Date.UTC(2025, 0, 1) });
    const events = s.take(1100);
    for (let i = 0; i < events.length; i += 550) {
      const r = await post(events.slice(i, i + 550));
      expect(r.status, r.text).toBe(200);
      expect(r.json).toEqual({ accepted: 550, duplicates: 0 });
    }
    const first = await get(`/v1/events?stream=${s.stream}`);
    expect(first.status).toBe(200);
    expect(first.headers['content-type']).toMatch(/^application\/json/);
    expect(first.json.events).toHaveLength(500); // the default page
    expect(first.json.nextCursor).toEqual(expect.any(String));
    expect(first.json.markers).toEqual([]);
    expect(first.json.events[0].receivedAt).toMatch(/^\d{4}-\d{2}-\d{2}T/);
    // Spliced, not re-serialized: the response holds each line as sent, and parses back to it.
    expect(first.text).toContain(`{"event":${events[0]!.json},"receivedAt":`);
    expect(canonicalJson(first.json.events[499].event)).toBe(events[499]!.json);

    const all = await fetchAll(`stream=${s.stream}`, 500);
    expect(all.pages).toBe(3);
    expect(all.events.map((e) => canonicalJson(e))).toEqual(events.map((e) => e.json));
  });

  test('a retried batch is acknowledged and stored once', async () => {
    const s = new SampleStream({ identity: 'billing-agent' });
    const batch = s.take(40);
    expect((await post(batch)).json).toEqual({ accepted: 40, duplicates: 0 });
    expect((await post(batch)).json).toEqual({ accepted: 0, duplicates: 40 });
    const overlap = [...batch.slice(30), ...s.take(5)];
    expect((await post(overlap)).json).toEqual({ accepted: 5, duplicates: 10 });
    expect((await fetchAll(`stream=${s.stream}`)).events).toHaveLength(45);
    expect(metric(await metrics(), 'byline_collector_events_duplicate_total')).toBeGreaterThanOrEqual(50);
  });

  test('filters: identity, table, route, database, session, approval, stream, type, since and until, with paging', async () => {
    const t0 = Date.UTC(2024, 5, 1, 12, 0, 0);
    const billing = new SampleStream({ identity: 'billing-agent', startMs: t0, sessionLength: 6 }).take(40);
    const support = new SampleStream({
      identity: 'support-agent',
      route: 'crm-db',
      database: 'crm',
      startMs: t0 + 3,
      approval: 'INC-1234',
    }).take(30);
    expect((await post(billing)).status).toBe(200);
    expect((await post(support, SUPPORT)).status).toBe(200);
    const inWindow = (e: AuditEvent) => Date.parse(e.time) >= t0 && Date.parse(e.time) < t0 + 100;
    const window = `since=${new Date(t0).toISOString()}&until=${new Date(t0 + 100).toISOString()}`;
    const ids = (list: AuditEvent[]) => list.map((e) => e.id).sort();
    const every = [...billing, ...support].map((e) => e.event);

    const check = async (query: string, keep: (e: AuditEvent) => boolean) => {
      const { events, pages } = await fetchAll(`${window}&${query}`, 7);
      expect(ids(events), query).toEqual(ids(every.filter(keep)));
      // Ordered by time, then stream, then seq.
      const keys = events.map((e) => [Date.parse(e.time), e.chain.stream, e.chain.seq] as const);
      const sorted = [...keys].sort((a, b) => a[0] - b[0] || (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : a[2] - b[2]));
      expect(keys).toEqual(sorted);
      return pages;
    };
    expect(await check('identity=support-agent', (e) => e.identity.name === 'support-agent')).toBeGreaterThan(2);
    await check('table=customers', (e) => e.statement?.tables?.includes('customers') ?? false);
    await check('table=billing.ledger', (e) => e.statement?.tables?.includes('billing.ledger') ?? false);
    await check('route=crm-db', (e) => e.target.route === 'crm-db');
    await check('database=orders', (e) => e.target.database === 'orders');
    const session = billing[10]!.event.session.id;
    await check(`session=${session}`, (e) => e.session.id === session);
    await check('approval=INC-1234', (e) => e.authz?.approval?.name === 'INC-1234');
    await check(`stream=${billing[0]!.event.chain.stream}`, (e) => e.chain.stream === billing[0]!.event.chain.stream);
    await check('type=session.end', (e) => e.type === 'session.end');
    await check(
      'identity=billing-agent&table=customers',
      (e) => e.identity.name === 'billing-agent' && !!e.statement?.tables?.includes('customers'),
    );
    const narrow = `since=${new Date(t0 + 10).toISOString()}&until=${new Date(t0 + 20).toISOString()}`;
    const { events } = await fetchAll(narrow);
    expect(ids(events)).toEqual(
      ids(every.filter((e) => Date.parse(e.time) >= t0 + 10 && Date.parse(e.time) < t0 + 20)),
    );
    expect(every.filter(inWindow)).toHaveLength(70);
  });
});

describe('chain checks at ingest', () => {
  test('a gap is marked and counted, and resolved when the late batch arrives', async () => {
    const s = new SampleStream({ identity: 'billing-agent' });
    const events = s.take(12);
    const before = metric(await metrics(), 'byline_collector_chain_problems_total{kind="gap"}')!;
    expect((await post([...events.slice(0, 4), ...events.slice(8)])).json).toEqual({ accepted: 8, duplicates: 0 });
    const streams = (await get('/v1/streams')).json.streams as { stream: string }[];
    expect(streams.find((x) => x.stream === s.stream)).toEqual({
      stream: s.stream,
      firstSeq: 1,
      lastSeq: 12,
      count: 8,
      headHash: events[11]!.event.chain.hash,
      openMarkers: [
        {
          stream: s.stream,
          seq: 9,
          kind: 'gap',
          detail: 'seqs 5–8 are missing',
          detectedAt: expect.any(String),
          resolvedAt: null,
        },
      ],
    });
    expect(metric(await metrics(), 'byline_collector_chain_problems_total{kind="gap"}')).toBe(before + 1);

    expect((await post(events.slice(4, 8))).json).toEqual({ accepted: 4, duplicates: 0 });
    const after = (await get('/v1/streams')).json.streams.find((x: { stream: string }) => x.stream === s.stream);
    expect(after).toMatchObject({ count: 12, openMarkers: [] });
    const page = await get(`/v1/events?stream=${s.stream}`);
    expect(page.json.markers).toEqual([
      expect.objectContaining({ seq: 9, kind: 'gap', resolvedAt: expect.any(String) }),
    ]);
    expect(metric(await metrics(), 'byline_collector_chain_gaps_resolved_total')).toBeGreaterThanOrEqual(1);
  });

  test('a break (an event whose prev does not link) is stored, marked and counted', async () => {
    const s = new SampleStream({ identity: 'billing-agent' });
    const events = s.take(3);
    // A writer that lost its place: correct hashes over a wrong prev.
    const lost = new ChainWriter(s.stream, 3, events[1]!.event.chain.hash);
    const broken = lost.append(s.nextEvent());
    const before = metric(await metrics(), 'byline_collector_chain_problems_total{kind="break"}')!;
    expect((await post([...events, broken])).json).toEqual({ accepted: 4, duplicates: 0 });
    const page = await get(`/v1/events?stream=${s.stream}`);
    expect(page.json.events).toHaveLength(4);
    expect(page.json.markers).toEqual([
      expect.objectContaining({ seq: 4, kind: 'break', detail: expect.stringContaining('is not the hash of seq 3') }),
    ]);
    expect(metric(await metrics(), 'byline_collector_chain_problems_total{kind="break"}')).toBe(before + 1);
  });
});

describe('bad input gets a clear 4xx, stores nothing, and the collector keeps serving', () => {
  const valid = () => new SampleStream({ identity: 'billing-agent' }).take(3);
  const lines = () => ndjson(valid()).trimEnd().split('\n');

  test.each<[string, () => Promise<Awaited<ReturnType<typeof call>>>, number, RegExp]>([
    ['malformed JSON', () => post([lines()[0], '{"v":1,"id":', lines()[2]].join('\n')), 400, /line 2: not valid JSON/],
    [
      'a schema violation',
      () => post([lines()[0], lines()[1]!.replace('"kind":"agent"', '"kind":"robot"')].join('\n')),
      400,
      /line 2: identity\.kind: expected one of "agent", "human", "service", got "robot"/,
    ],
    [
      'an event altered after it was hashed',
      () => post([lines()[0], lines()[1]!.replace('"rows":1', '"rows":1000')].join('\n')),
      400,
      /line 2: chain\.hash does not match the event's content/,
    ],
    ['an empty body', () => post(''), 400, /holds no events/],
    [
      'a batch over maxBatchBytes (Content-Length)',
      () => post(ndjson(new SampleStream({ identity: 'billing-agent' }).take(600)).repeat(2)),
      413,
      /the body is \d+ bytes; at most 1048576 bytes/,
    ],
    [
      'a batch over maxBatchBytes (chunked, no Content-Length)',
      () =>
        call(port, 'POST', '/v1/events', {
          token: WRITER,
          body: ndjson(new SampleStream({ identity: 'billing-agent' }).take(600)).repeat(2),
          chunked: true,
        }),
      413,
      /more than 1048576 bytes/,
    ],
    [
      'a batch over maxBatchEvents',
      () => post(new SampleStream({ identity: 'billing-agent' }).take(601)),
      413,
      /holds 601 events; at most 600/,
    ],
    ['no token', () => call(port, 'POST', '/v1/events', { body: ndjson(valid()) }), 401, /missing bearer token/],
    ['an unknown token', () => post(valid(), 'not-a-token-of-ours-at-all'), 401, /unknown bearer token/],
    [
      'a malformed Authorization header',
      () => post(valid(), '', { Authorization: 'Basic YTpi' }),
      401,
      /must be "Bearer <token>"/,
    ],
    [
      'a writer claiming another identity',
      () => post(valid(), SUPPORT),
      403,
      /line 1: identity\.name is "billing-agent", but this token writes only for "support-agent"/,
    ],
    ['a reader token writing', () => post(valid(), READER), 403, /may only read/],
    ['a writer token reading events', () => get('/v1/events', WRITER), 403, /queries need a reader token/],
    ['a writer token reading streams', () => get('/v1/streams', WRITER), 403, /queries need a reader token/],
    ['no token reading', () => call(port, 'GET', '/v1/events'), 401, /missing bearer token/],
    [
      'another Content-Type',
      () => post(valid(), WRITER, { 'Content-Type': 'application/json' }),
      415,
      /application\/x-ndjson/,
    ],
    ['a compressed body', () => post(valid(), WRITER, { 'Content-Encoding': 'gzip' }), 415, /not supported/],
    ['an unknown path', () => get('/v2/events'), 404, /no such endpoint: GET \/v2\/events/],
    [
      'a wrong method',
      () => call(port, 'DELETE', '/v1/events', { token: READER }),
      405,
      /DELETE is not allowed on \/v1\/events; use POST, GET/,
    ],
    ['POST to streams', () => call(port, 'POST', '/v1/streams', { token: WRITER, body: 'x' }), 405, /use GET/],
    ['an unknown query parameter', () => get('/v1/events?identiy=x'), 400, /unknown query parameter "identiy"/],
    ['a limit too large', () => get('/v1/events?limit=5001'), 400, /limit: expected an integer from 1 to 5000/],
    ['a limit that is no number', () => get('/v1/events?limit=ten'), 400, /limit: expected an integer/],
    ['a since that is no time', () => get('/v1/events?since=yesterday'), 400, /since: expected an RFC 3339 time/],
    ['a parameter given twice', () => get('/v1/events?route=a&route=b'), 400, /route: given more than once/],
    [
      'a forged cursor',
      () => get('/v1/events?cursor=bm90LWEtY3Vyc29y'),
      400,
      /cursor: not a cursor this collector handed out/,
    ],
    ['a parameter on streams', () => get('/v1/streams?x=1'), 400, /unknown query parameter "x"/],
  ])('%s', async (_name, send, status, message) => {
    const stored = await count();
    const rejectedBefore = await metrics();
    const r = await send();
    expect(r.status, r.text).toBe(status);
    expect(r.headers['content-type']).toMatch(/^application\/json/);
    expect(r.json.error).toMatch(message);
    if (status === 401) expect(r.headers['www-authenticate']).toMatch(/^Bearer/);
    if (status === 405) expect(r.headers.allow).toBeTruthy();
    expect(await count()).toBe(stored);
    // Still serving: a valid batch goes in.
    expect((await post(valid())).json).toEqual({ accepted: 3, duplicates: 0 });
    if (message.source.includes('writes only for')) {
      const series = 'byline_collector_events_rejected_total{reason="identity"}';
      expect(metric(await metrics(), series)).toBe(metric(rejectedBefore, series)! + 3);
    }
  });

  test('a 400 lists the problems line by line', async () => {
    const l = lines();
    const r = await post([l[0]!.replace('"v":1', '"v":2'), l[1], 'nope'].join('\n'));
    expect(r.status).toBe(400);
    expect(r.json.problems).toEqual([
      { line: 1, reason: 'schema', message: expect.stringContaining('line 1: v: expected 1') },
      { line: 3, reason: 'malformed', message: expect.stringContaining('line 3: not valid JSON') },
    ]);
    expect(r.json.error).toContain('(and 1 more problem)');
  });

  test.each([
    ['without a token', ''],
    ['over maxBatchBytes', `Authorization: Bearer ${WRITER}\r\n`],
  ])('an upload refused %s is answered at once and its body never read', async (_name, auth) => {
    // Headers promising 100 MB, and no body at all: waiting for it would time out.
    const reply = await rawExchange(
      port,
      `POST /v1/events HTTP/1.1\r\nHost: x\r\n${auth}Content-Type: application/x-ndjson\r\nContent-Length: 100000000\r\n\r\n`,
    );
    expect(reply).toMatch(/^HTTP\/1\.1 (401|413) /);
    expect(reply.toLowerCase()).toContain('connection: close');
  });

  test('garbage that is not HTTP gets a JSON 400 and the connection closes', async () => {
    const reply = await rawExchange(port, 'HELLO THERE\r\n\r\n');
    expect(reply).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(reply).toContain('"error":"malformed HTTP request');
    expect((await post(valid())).status).toBe(200);
  });

  test('the batch counters say what happened', async () => {
    const text = await metrics();
    for (const outcome of ['accepted', 'bad-request', 'unauthenticated', 'forbidden', 'too-large']) {
      expect(metric(text, `byline_collector_batches_total{outcome="${outcome}"}`), outcome).toBeGreaterThan(0);
    }
    expect(metric(text, 'byline_collector_events_stored_total')).toBeGreaterThan(1000);
    expect(text).toContain('byline_collector_http_request_duration_seconds_bucket{');
    expect(text).toContain('byline_collector_batch_events_bucket{');
  });
});

describe('health', () => {
  test('healthz and readyz answer while the store is up; readyz says 503 once it is not', async () => {
    expect((await call(port, 'GET', '/healthz')).json).toEqual({ status: 'ok' });
    expect((await call(port, 'GET', '/readyz')).json).toEqual({ status: 'ready' });
    const other = await startCollector(
      {
        listen: '127.0.0.1:0',
        store: `sqlite:${join(dir, 'other.db')}`,
        auth: { static: [{ token: READER, reader: true }] },
      },
      { logger: pino({ level: 'silent' }) },
    );
    try {
      await other.store.close();
      const r = await call(other.port, 'GET', '/readyz');
      expect(r.status).toBe(503);
      expect(r.json.error).toMatch(/the store is not reachable/);
      expect((await call(other.port, 'GET', '/healthz')).status).toBe(200);
      const q = await call(other.port, 'GET', '/v1/events', { token: READER });
      expect(q.status).toBe(503);
      expect(q.json.error).toMatch(/could not answer/);
    } finally {
      await other.close();
    }
  });
});
