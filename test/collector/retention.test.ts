/**
 * Retention against both stores (SQLite in a temp dir, a real PostgreSQL): old prefixes of streams
 * are deleted per namespace (or globally), a checkpoint is recorded, and `verifyTrail` on what is
 * left proves the remainder intact from the checkpoint and says what was retired and when; deleting
 * the checkpoint or more events is still caught.
 */

import { execFile } from 'node:child_process';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type ChainedEvent, describeRetirement, ReceiptSigner, type StoredPosition, verifyTrail } from '@byline/api';
import {
  type EventStore,
  ndjson,
  openStore,
  parseBatch,
  SampleStream,
  startCollector,
  startRetention,
} from '@byline/collector';
import pg from 'pg';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { startPostgres, type TestPostgres } from '../harness/postgres.js';
import { call } from './http.js';

let pgServer: TestPostgres;
let dir: string;
let databases = 0;
const open: EventStore[] = [];
const DAY = 86_400_000;
const NOW = new Date('2026-12-06T12:00:00Z');

beforeAll(async () => {
  pgServer = await startPostgres();
  dir = mkdtempSync(join(tmpdir(), 'byline-retention-'));
});

afterAll(async () => {
  await pgServer?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

afterEach(async () => {
  for (const s of open.splice(0)) await s.close();
});

/** A stream in `namespace` whose events are `ages` days old, oldest first. */
function streamOf(namespace: string | null, ages: number[]): ChainedEvent[] {
  const s = new SampleStream();
  return ages.map((age) => {
    const e = s.nextEvent();
    e.time = new Date(NOW.getTime() - age * DAY).toISOString();
    e.identity.namespace = namespace;
    return s.writer.append(e);
  });
}

/** Waits until a collector's retention pass has left `count` events in its store. */
async function untilStored(store: EventStore, count: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  while ((await store.query({}, 10)).events.length !== count) {
    if (Date.now() > deadline) throw new Error('retention never ran');
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** `byline verify` (the compiled CLI) over a SQLite store: its exit code and what it printed. */
function verifyStore(path: string, ...extra: string[]): Promise<{ code: number; stdout: string }> {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
  return promisify(execFile)(
    process.execPath,
    [join(root, 'cli/bin/byline.mjs'), 'verify', '--store', `sqlite:${path}`, '--allow-unsigned', ...extra],
    { cwd: root },
  ).then(
    ({ stdout }) => ({ code: 0, stdout }),
    (e: { code: number; stdout: string }) => ({ code: e.code, stdout: e.stdout }),
  );
}

function ingest(events: readonly ChainedEvent[]) {
  const first = events[0]!.event.identity;
  const parsed = parseBatch(
    new TextEncoder().encode(ndjson(events)),
    { name: first.name, kind: 'agent', source: 'static', namespace: first.namespace },
    1_000_000,
  );
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.events;
}

async function stored(store: EventStore): Promise<StoredPosition[]> {
  const page = await store.query({}, 5000);
  return page.events.map((e) => ({ stream: e.key.stream, seq: e.key.seq, json: e.json }));
}

async function check(store: EventStore) {
  const positions = await stored(store);
  const streams = (await store.streams()).map((s) => s.stream);
  return verifyTrail(positions, await store.evidence(streams));
}

type Backend = {
  store: EventStore;
  raw: (sql: string, values?: unknown[]) => Promise<void>;
  /** The first row `sql` reads, straight from the database. */
  one: (sql: string, values?: unknown[]) => Promise<Record<string, unknown>>;
};

const backends: [string, () => Promise<Backend>][] = [
  [
    'sqlite',
    async () => {
      const path = join(dir, `trail-${++databases}`, 'trail.db');
      const store = await openStore(`sqlite:${path}`);
      const Database = (await import('better-sqlite3')).default;
      return {
        store,
        raw: async (sql, values = []) => {
          const db = new Database(path);
          db.prepare(sql).run(...values);
          db.close();
        },
        one: async (sql, values = []) => {
          const db = new Database(path, { readonly: true });
          const row = db.prepare(sql).get(...values) as Record<string, unknown>;
          db.close();
          return row;
        },
      };
    },
  ],
  [
    'postgres',
    async () => {
      const name = `retention_${++databases}`;
      const admin = pgServer.client();
      await admin.connect();
      await admin.query(`CREATE DATABASE ${name}`);
      await admin.end();
      const store = await openStore(pgServer.url(name));
      return {
        store,
        raw: async (sql, values = []) => {
          const c = new pg.Client({ connectionString: pgServer.url(name) });
          await c.connect();
          let n = 0;
          await c.query(
            sql.replace(/\?/g, () => `$${++n}`),
            values,
          );
          await c.end();
        },
        one: async (sql, values = []) => {
          const c = new pg.Client({ connectionString: pgServer.url(name) });
          await c.connect();
          let n = 0;
          const { rows } = await c.query(
            sql.replace(/\?/g, () => `$${++n}`),
            values,
          );
          await c.end();
          return rows[0];
        },
      };
    },
  ],
];

describe.each(backends)('%s store', (_name, make) => {
  async function fresh(): Promise<Backend> {
    const b = await make();
    open.push(b.store);
    return b;
  }

  test('retires old prefixes per namespace; the remainder verifies from the checkpoint, which says what went and when', async () => {
    const { store } = await fresh();
    const short = streamOf('payments', [40, 35, 31, 5, 1]);
    const long = streamOf('archive', [40, 35, 31, 5]);
    const fallback = streamOf(null, [20, 12, 3]);
    for (const s of [short, long, fallback]) await store.insertBatch(ingest(s), NOW);
    expect((await check(store)).problems).toEqual([]);

    const done = await store.retire({ days: 10, namespaces: { payments: 30, archive: 365 } }, NOW);
    expect(done.map((d) => [d.namespace, d.retired, d.checkpoint.throughSeq])).toEqual(
      expect.arrayContaining([
        ['payments', 3, 3],
        [null, 2, 2],
      ]),
    );
    const left = (await stored(store)).map((p) => JSON.parse(p.json).id);
    expect(left.sort()).toEqual([...short.slice(3), ...long, ...fallback.slice(2)].map((e) => e.event.id).sort());

    const report = await check(store);
    expect(report.problems).toEqual([]);
    const payments = report.retired!.find((r) => r.stream === short[0]!.event.chain.stream)!;
    expect(payments).toMatchObject({ throughSeq: 3, throughHash: short[2]!.event.chain.hash, count: 3 });
    expect(payments.retiredAt).toBe(NOW.toISOString());
    const digest = createHash('sha256');
    digest.update('');
    for (const e of short.slice(0, 3)) digest.update(e.event.chain.hash);
    expect(payments.digest).toBe(digest.digest('hex'));
    expect(describeRetirement(payments)).toMatch(/seq 1–3: 3 events retired at 2026-12-06T12:00:00.000Z/);

    // A later pass extends the checkpoint; the digest chains over both.
    const later = new Date(NOW.getTime() + DAY / 2); // cutoff 1.5 days ago: the 5-day-old event goes
    const again = await store.retire({ namespaces: { payments: 2 } }, later);
    expect(again.map((d) => [d.retired, d.checkpoint.throughSeq, d.checkpoint.count])).toEqual([[1, 4, 4]]);
    const chained = createHash('sha256');
    chained.update(payments.digest);
    chained.update(short[3]!.event.chain.hash);
    expect(again[0]!.checkpoint.digest).toBe(chained.digest('hex'));
    expect((await check(store)).problems).toEqual([]);
    expect(await store.retire({ namespaces: { payments: 2 } }, later)).toEqual([]);
  });

  test('events an exporter has not delivered yet are kept, however old', async () => {
    const { store } = await fresh();
    const events = streamOf(null, [40, 30, 20, 15]);
    await store.insertBatch(ingest(events.slice(0, 2)), NOW);
    await store.insertBatch(ingest(events.slice(2)), NOW);
    expect(await store.retire({ days: 10, exportedThrough: { tx: '0', ord: 0 } }, NOW)).toEqual([]);
    const delivered = (await store.follow({}, { tx: '0', ord: 0 }, 2)).position;
    const done = await store.retire({ days: 10, exportedThrough: delivered }, NOW);
    expect(done.map((d) => d.checkpoint.throughSeq)).toEqual([2]);
    expect((await stored(store)).map((p) => p.seq)).toEqual([3, 4]);
  });

  test('without its checkpoint, or with more deleted, the remainder does not verify', async () => {
    const { store, raw } = await fresh();
    const events = streamOf(null, [30, 20, 15, 1, 0]);
    const stream = events[0]!.event.chain.stream;
    await store.insertBatch(ingest(events), NOW);
    await store.retire({ days: 10 }, NOW);
    expect((await check(store)).problems).toEqual([]);

    // An insider deletes the next event too: a removal after the checkpoint.
    await raw('DELETE FROM byline_events WHERE id = ?', [events[3]!.event.id]);
    expect((await check(store)).problems).toEqual([{ kind: 'removed', stream, from: 4, to: 4 }]);

    // And then deletes the checkpoint: the whole prefix shows as removed, nothing says retired.
    await raw('DELETE FROM byline_retirements WHERE stream = ?', [stream]);
    const report = await check(store);
    expect(report.retired).toBeUndefined();
    expect(report.problems).toContainEqual({ kind: 'removed', stream, from: 1, to: 4 });
  });

  test('an event resent after its seq was retired is acknowledged, not stored again, and noted beside the checkpoint', async () => {
    const { store, one } = await fresh();
    const events = streamOf(null, [30, 20, 15, 1, 0]);
    const stream = events[0]!.event.chain.stream;
    await store.insertBatch(ingest(events.slice(0, 4)), NOW);
    await store.retire({ days: 10 }, NOW);
    expect((await stored(store)).map((p) => p.seq)).toEqual([4]);

    // A sidecar that never saw the first answer resends the whole batch, plus one new event.
    const resent = await store.insertBatch(ingest(events), NOW);
    expect(resent).toMatchObject({ accepted: 1, duplicates: 1, retired: 3, markers: [] });
    expect((await stored(store)).map((p) => p.seq)).toEqual([4, 5]);
    const report = await check(store);
    expect(report.problems).toEqual([]);
    expect(report.retired).toEqual([expect.objectContaining({ stream, throughSeq: 3, count: 3 })]);
    // Noted beside the checkpoint: how many, and when the last came.
    const again = await store.insertBatch(ingest(events.slice(1, 2)), new Date(NOW.getTime() + 1000));
    expect(again).toMatchObject({ accepted: 0, duplicates: 0, retired: 1 });
    const note = await one('SELECT resent, last_resent_at AS last FROM byline_retirements WHERE stream = ?', [stream]);
    expect(Number(note.resent)).toBe(4);
    expect(new Date(note.last as string | Date).getTime()).toBe(NOW.getTime() + 1000);
    expect((await stored(store)).map((p) => p.seq)).toEqual([4, 5]);
  });

  test('with a signer, each checkpoint is stored with its signature and verifies with the key', async () => {
    const { store } = await fresh();
    const signer = new ReceiptSigner(
      generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    );
    const events = streamOf(null, [30, 20, 1]);
    await store.insertBatch(ingest(events), NOW);
    const sign = (stream: string, c: Parameters<ReceiptSigner['checkpoint']>[1]) => signer.checkpoint(stream, c);
    const [done] = await store.retire({ days: 10, sign }, NOW);
    expect(done!.checkpoint.signature).toMatch(/^[A-Za-z0-9_-]{86}$/);
    const report = verifyTrail(
      await stored(store),
      await store.evidence((await store.streams()).map((s) => s.stream)),
      { receiptKey: signer.key },
    );
    expect(report.problems).toEqual([]);
    expect(report.retired).toEqual([expect.objectContaining({ throughSeq: 2, signature: done!.checkpoint.signature })]);
  });

  test('a forged checkpoint hash does not link to the remainder', async () => {
    const { store, raw } = await fresh();
    const events = streamOf(null, [30, 20, 1]);
    await store.insertBatch(ingest(events), NOW);
    await store.retire({ days: 10 }, NOW);
    await raw('UPDATE byline_retirements SET through_hash = ?', ['0'.repeat(64)]);
    expect((await check(store)).problems).toEqual([
      { kind: 'unlinked', stream: events[0]!.event.chain.stream, seq: 3, id: events[2]!.event.id },
    ]);
  });
});

describe('the collector runs retention from its config', () => {
  test('at start it retires what is past retention; byline verify says the rest is intact and what was retired', async () => {
    const path = join(dir, `collector-${++databases}`, 'trail.db');
    const seed = await openStore(`sqlite:${path}`);
    const old = streamOf(null, [400, 380, 1]);
    await seed.insertBatch(ingest(old), new Date());
    await seed.close();
    const collector = await startCollector(
      {
        listen: '127.0.0.1:0',
        store: `sqlite:${path}`,
        auth: { static: [{ token: 'retention-reader-0123456789', reader: true }] },
        retention: { days: 365 },
      },
      { logger: pino({ level: 'silent' }) },
    );
    try {
      await untilStored(collector.store, 1);
    } finally {
      await collector.close();
    }
    const { code, stdout } = await verifyStore(path);
    expect(code, stdout).toBe(0);
    expect(stdout).toMatch(/^intact chains: 1 events in 1 stream/);
    expect(stdout).toContain('retired by retention');
    expect(stdout).toMatch(new RegExp(`stream ${old[0]!.event.chain.stream} seq 1–2: 2 events retired at `));
  });
});

describe('a collector with a receipt key signs its checkpoints', () => {
  test('byline verify --receipt-key: a checkpoint the collector signed verifies; one an insider moved over more events does not', async () => {
    const path = join(dir, `collector-${++databases}`, 'trail.db');
    const keyFile = join(dir, `receipt-${databases}.pem`);
    const pem = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    writeFileSync(keyFile, pem, { mode: 0o600 });
    const receiptKey = new ReceiptSigner(pem).key;
    const seed = await openStore(`sqlite:${path}`);
    const events = streamOf(null, [400, 380, 300, 1]);
    await seed.insertBatch(ingest(events), new Date());
    await seed.close();
    const collector = await startCollector(
      {
        listen: '127.0.0.1:0',
        store: `sqlite:${path}`,
        auth: { static: [{ token: 'retention-reader-0123456789', reader: true }] },
        retention: { days: 350 },
        receipts: { keyFile },
      },
      { logger: pino({ level: 'silent' }) },
    );
    try {
      await untilStored(collector.store, 2);
    } finally {
      await collector.close();
    }
    const verify = (...extra: string[]) => verifyStore(path, ...extra);
    expect(await verify(`--receipt-key=${receiptKey}`)).toMatchObject({ code: 0 });

    // An insider deletes the next (300-day-old) event too and moves the checkpoint over it: hash,
    // count and digest rewritten so that the remainder links. Only the signature gives it away.
    const Database = (await import('better-sqlite3')).default;
    const db = new Database(path);
    db.prepare('DELETE FROM byline_events WHERE id = ?').run(events[2]!.event.id);
    db.prepare('UPDATE byline_retirements SET through_seq = 3, through_hash = ?, event_count = 3').run(
      events[2]!.event.chain.hash,
    );
    db.prepare('UPDATE byline_streams SET first_seq = 4, event_count = 1').run();
    db.close();
    const unkeyed = await verify();
    expect(unkeyed.code, unkeyed.stdout).toBe(0); // what a checkpoint without a signature cannot tell
    const keyed = await verify(`--receipt-key=${receiptKey}`);
    expect(keyed.code, keyed.stdout).toBe(1);
    expect(keyed.stdout).toContain(
      `stream ${events[0]!.event.chain.stream} seq 1–3: the retention checkpoint carries no valid signature`,
    );
  });
});

describe('a sidecar resending what retention already retired', () => {
  test('over HTTP: acknowledged (200, counted as retired), not stored, counted in a metric; verify stays intact', async () => {
    const WRITER = 'retention-writer-0123456789';
    const path = join(dir, `collector-${++databases}`, 'trail.db');
    const seed = await openStore(`sqlite:${path}`);
    const old = streamOf(null, [400, 380, 1]);
    await seed.insertBatch(ingest(old), new Date());
    await seed.close();
    const collector = await startCollector(
      {
        listen: '127.0.0.1:0',
        store: `sqlite:${path}`,
        auth: { static: [{ token: WRITER, identity: 'billing-agent' }] },
        retention: { days: 365 },
      },
      { logger: pino({ level: 'silent' }) },
    );
    try {
      await untilStored(collector.store, 1);
      // The sidecar never got the answer to its first batch, and sends it again.
      const r = await call(collector.port, 'POST', '/v1/events', { token: WRITER, body: ndjson(old) });
      expect(r.status, r.text).toBe(200);
      expect(r.json).toEqual({ accepted: 0, duplicates: 1, retired: 2 });
      expect((await collector.store.query({}, 10)).events.map((e) => e.key.seq)).toEqual([3]);
      const metrics = (await call(collector.port, 'GET', '/metrics')).text;
      expect(metrics).toMatch(/^byline_collector_events_retired_resent_total 2$/m);
      expect(metrics).toMatch(/^byline_collector_events_stored_total 0$/m);
    } finally {
      await collector.close();
    }
    const { code, stdout } = await verifyStore(path);
    expect(code, stdout).toBe(0);
    expect(stdout).toMatch(/^intact chains: 1 events in 1 stream/);
  });
});

describe('retention and exporters', () => {
  test('a pass waits for every configured exporter, and keeps what the slowest has not delivered', async () => {
    const store = await openStore(`sqlite:${join(dir, `runner-${++databases}`, 'trail.db')}`);
    open.push(store);
    const events = streamOf(null, [400, 390, 380]);
    await store.insertBatch(ingest(events.slice(0, 1)), NOW);
    await store.insertBatch(ingest(events.slice(1)), NOW);
    const runner = startRetention({ days: 30 }, store, pino({ level: 'silent' }), ['otel', 'siem']);
    try {
      await runner.runOnce();
      expect(await stored(store)).toHaveLength(3); // neither exporter has a position yet
      const first = (await store.follow({}, { tx: '0', ord: 0 }, 1)).position;
      await store.saveExportPosition('otel', first);
      await runner.runOnce();
      expect(await stored(store)).toHaveLength(3); // siem still has none
      await store.saveExportPosition('siem', (await store.follow({}, { tx: '0', ord: 0 }, 10)).position);
      await runner.runOnce();
      expect((await stored(store)).map((p) => p.seq)).toEqual([2, 3]); // otel has delivered only the first
    } finally {
      await runner.stop();
    }
  });
});
