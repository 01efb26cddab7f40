/**
 * The collector's exporters against receivers started by the test: an HTTP webhook receiver (a
 * SIEM's HTTP collector) and an OTLP/HTTP logs receiver that decodes what OpenTelemetry's exporter
 * sends. Each receiver answers 503 for a while, then goes away entirely while the collector is
 * restarted; afterwards every stored event has arrived (repeats allowed, at least once), and the
 * first arrival of each event is in store order, so in chain order within every stream.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { ChainedEvent, CollectorConfig } from '@byline/api';
import { ndjson, type RunningCollector, SampleStream, startCollector } from '@byline/collector';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { freePort } from '../harness/postgres.js';
import { call } from './http.js';

const WRITER = 'export-writer-token-0123456789';
const READER = 'export-reader-token-0123456789';

let dir: string;
let n = 0;
const running: RunningCollector[] = [];
const receivers: Receiver[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'byline-export-'));
});

afterEach(async () => {
  for (const c of running.splice(0)) await c.close();
  for (const r of receivers.splice(0)) await r.stop();
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A receiver on a fixed port: `ok`, `unavailable` (503), or stopped (connection refused). */
class Receiver {
  mode: 'ok' | 'unavailable' = 'ok';
  /** Event ids, in the order they arrived (repeats included). */
  readonly arrived: string[] = [];
  /** Raw decoded items, per arrival. */
  readonly items: unknown[] = [];
  requests = 0;
  refused = 0;
  private server: Server | undefined;

  constructor(
    readonly port: number,
    private readonly take: (body: Buffer, req: IncomingMessage) => { ids: string[]; items: unknown[] } | 'refuse',
  ) {}

  async start(): Promise<void> {
    const server = createServer((req, res) => this.handle(req, res));
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    this.server = server;
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => {
      this.requests++;
      if (this.mode === 'unavailable') {
        res.writeHead(503, { 'content-type': 'text/plain' }).end('down for maintenance');
        return;
      }
      let body = Buffer.concat(chunks);
      if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
      const taken = this.take(body, req);
      if (taken === 'refuse') {
        this.refused++;
        res.writeHead(400, { 'content-type': 'text/plain' }).end('malformed event');
        return;
      }
      this.arrived.push(...taken.ids);
      this.items.push(...taken.items);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  }

  async waitFor(ids: readonly string[], ms = 20_000): Promise<void> {
    const deadline = Date.now() + ms;
    for (;;) {
      const have = new Set(this.arrived);
      const missing = ids.filter((id) => !have.has(id));
      if (missing.length === 0) return;
      if (Date.now() > deadline) throw new Error(`${missing.length} of ${ids.length} events never arrived`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

function firstArrivals(arrived: readonly string[]): string[] {
  return [...new Set(arrived)];
}

async function startWith(store: string, exporters: CollectorConfig['exporters']): Promise<RunningCollector> {
  const c = await startCollector(
    {
      listen: '127.0.0.1:0',
      store,
      auth: {
        static: [
          { token: WRITER, identity: 'billing-agent' },
          { token: READER, reader: true },
        ],
      },
      exporters,
    },
    {
      logger: pino({ level: process.env.BYLINE_TEST_LOG ?? 'silent' }),
      exportTuning: { idleMs: 50, initialBackoffMs: 50 },
    },
  );
  running.push(c);
  return c;
}

async function stopCollector(c: RunningCollector): Promise<void> {
  running.splice(running.indexOf(c), 1);
  await c.close();
}

async function post(c: RunningCollector, events: readonly ChainedEvent[]): Promise<void> {
  const r = await call(c.port, 'POST', '/v1/events', { token: WRITER, body: ndjson(events) });
  expect(r.status, r.text).toBe(200);
}

/** The order the store holds events in (insertion order), as the follow API gives it. */
async function storeOrder(c: RunningCollector): Promise<string[]> {
  const page = await c.store.follow({}, { tx: '0', ord: 0 }, 5000);
  return page.events.map((e) => e.key.id);
}

describe('webhook exporter', () => {
  test('through 503s, a receiver outage and a collector restart: everything arrives, in store order; a refused event is dead-lettered', async () => {
    const port = await freePort();
    let poison = '';
    const receiver = new Receiver(port, (body, req) => {
      expect(req.headers['content-type']).toBe('application/x-ndjson');
      const lines = body.toString('utf8').split('\n').filter(Boolean);
      const events = lines.map((l) => JSON.parse(l) as { id: string });
      if (events.some((e) => e.id === poison)) return 'refuse';
      return { ids: events.map((e) => e.id), items: lines };
    });
    receivers.push(receiver);
    receiver.mode = 'unavailable';
    await receiver.start();

    const store = `sqlite:${join(dir, `w${++n}`, 'trail.db')}`;
    const exporters = {
      webhook: [{ name: 'siem', url: `http://127.0.0.1:${port}/ingest`, batchSize: 4, maxBackoffSeconds: 1 }],
    };
    let c = await startWith(store, exporters);
    const a = new SampleStream();
    const b = new SampleStream();
    const sent: ChainedEvent[] = [];
    const send = async (events: ChainedEvent[]) => {
      await post(c, events);
      sent.push(...events);
    };
    await send(a.take(6));
    await send(b.take(5));
    await new Promise((r) => setTimeout(r, 400));
    expect(receiver.arrived).toEqual([]);
    expect(receiver.requests).toBeGreaterThan(1); // retried while unavailable

    receiver.mode = 'ok';
    await receiver.waitFor(sent.map((e) => e.event.id));

    // The receiver goes away; events keep coming; the collector restarts in the middle.
    await receiver.stop();
    const c1 = a.take(3);
    poison = c1[1]!.event.id;
    await send(c1);
    await new Promise((r) => setTimeout(r, 300));
    await stopCollector(c);
    c = await startWith(store, exporters);
    await send(b.take(4));
    await receiver.start();
    const expected = sent.map((e) => e.event.id).filter((id) => id !== poison);
    await receiver.waitFor(expected);

    const order = (await storeOrder(c)).filter((id) => id !== poison);
    expect(firstArrivals(receiver.arrived)).toEqual(order);
    expect(receiver.arrived).not.toContain(poison);
    // What arrived is the stored text, unchanged.
    const byId = new Map(sent.map((e) => [e.event.id, e.json]));
    for (const line of receiver.items as string[]) expect(line).toBe(byId.get(JSON.parse(line).id));
    const dead = await c.store.deadLetters('siem');
    expect(dead.map((d) => d.eventId)).toEqual([poison]);
    expect(dead[0]!.error).toMatch(/HTTP 400: malformed event/);
    expect(receiver.refused).toBeGreaterThanOrEqual(2); // the batch, then the event on its own
  });
});

interface OtlpRecord {
  uid: string;
  body: string;
  attributes: Record<string, unknown>;
  timeUnixNano: string;
  eventName?: string;
  service?: unknown;
}

/** OTLP/HTTP JSON (ExportLogsServiceRequest) → records with plain attribute values. */
function decodeOtlp(body: Buffer): OtlpRecord[] {
  type AnyValue = {
    stringValue?: string;
    intValue?: string | number;
    boolValue?: boolean;
    doubleValue?: number;
    arrayValue?: { values?: AnyValue[] };
  };
  const plain = (v: AnyValue): unknown =>
    v.stringValue ??
    (v.intValue !== undefined ? Number(v.intValue) : undefined) ??
    v.boolValue ??
    v.doubleValue ??
    (v.arrayValue ? (v.arrayValue.values ?? []).map(plain) : undefined);
  const attrs = (list: { key: string; value: AnyValue }[] = []) =>
    Object.fromEntries(list.map((a) => [a.key, plain(a.value)]));
  const req = JSON.parse(body.toString('utf8')) as {
    resourceLogs: {
      resource?: { attributes?: { key: string; value: AnyValue }[] };
      scopeLogs: {
        logRecords: {
          timeUnixNano: string;
          body: AnyValue;
          eventName?: string;
          attributes: { key: string; value: AnyValue }[];
        }[];
      }[];
    }[];
  };
  const out: OtlpRecord[] = [];
  for (const rl of req.resourceLogs) {
    const resource = attrs(rl.resource?.attributes);
    for (const sl of rl.scopeLogs) {
      for (const r of sl.logRecords) {
        const attributes = attrs(r.attributes);
        out.push({
          uid: attributes['log.record.uid'] as string,
          body: plain(r.body) as string,
          attributes,
          timeUnixNano: String(r.timeUnixNano),
          ...(r.eventName ? { eventName: r.eventName } : {}),
          service: resource['service.name'],
        });
      }
    }
  }
  return out;
}

describe('OTLP exporter', () => {
  test('log records with database semantic conventions reach an OTLP/HTTP receiver through outages and a restart', async () => {
    const port = await freePort();
    const receiver = new Receiver(port, (body, req) => {
      expect(req.url).toBe('/v1/logs');
      const records = decodeOtlp(body);
      return { ids: records.map((r) => r.uid), items: records };
    });
    receivers.push(receiver);
    receiver.mode = 'unavailable';
    await receiver.start();

    const store = `sqlite:${join(dir, `o${++n}`, 'trail.db')}`;
    const exporters = {
      otlp: [{ name: 'otel', url: `http://127.0.0.1:${port}/v1/logs`, batchSize: 5, maxBackoffSeconds: 1 }],
    };
    let c = await startWith(store, exporters);
    const s = new SampleStream({ approval: 'month-end-close' });
    const sent: ChainedEvent[] = [];
    const send = async (events: ChainedEvent[]) => {
      await post(c, events);
      sent.push(...events);
    };
    await send(s.take(7));
    await new Promise((r) => setTimeout(r, 500));
    expect(receiver.arrived).toEqual([]);
    receiver.mode = 'ok';
    await receiver.waitFor(sent.map((e) => e.event.id));

    await receiver.stop();
    await send(s.take(4));
    await new Promise((r) => setTimeout(r, 300));
    await stopCollector(c);
    c = await startWith(store, exporters);
    await send(s.take(3));
    await receiver.start();
    await receiver.waitFor(sent.map((e) => e.event.id));
    expect(firstArrivals(receiver.arrived)).toEqual(await storeOrder(c));

    const statement = sent.find((e) => e.event.type === 'statement')!;
    const record = (receiver.items as OtlpRecord[]).find((r) => r.uid === statement.event.id)!;
    expect(record.body).toBe(statement.json);
    expect(record.eventName).toBe('byline.statement');
    expect(record.service).toBe('byline-collector');
    expect(BigInt(record.timeUnixNano)).toBe(BigInt(Date.parse(statement.event.time)) * 1_000_000n);
    expect(record.attributes).toMatchObject({
      'db.system.name': 'postgresql',
      'db.namespace': statement.event.target.database,
      'db.operation.name': statement.event.statement!.command,
      'db.query.text': statement.event.statement!.text,
      'byline.identity.name': 'billing-agent',
      'byline.authz.approval.name': 'month-end-close',
      'byline.chain.seq': statement.event.chain.seq,
    });
  });
});
