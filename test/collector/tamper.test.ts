/**
 * Tamper evidence against an insider with write access to the store: events stored by a real
 * collector (heads signed as a sidecar signs them, keys receipted by the collector) are then
 * edited, deleted, reordered, forged and rewritten directly in its SQLite store; `byline verify`,
 * through the API and straight from the store, must fail and name each. And a writer may only
 * extend its own streams.
 */
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import {
  type ChainedEvent,
  ChainWriter,
  formatSignedHeadHeader,
  HeadSigner,
  ReceiptSigner,
  SIGNED_HEAD_HEADER,
  type UnchainedEvent,
} from '@byline/api';
import { ndjson, type RunningCollector, SampleStream, startCollector } from '@byline/collector';
import Database from 'better-sqlite3';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';

const run = promisify(execFile);
const cli = join(resolve(import.meta.dirname, '../..'), 'cli/bin/byline.mjs');
const WRITER = 'writer-token-0123456789';
const OTHER = 'other-writer-token-0123456789';
const READER = 'reader-token-0123456789';

let dir: string;
let collector: RunningCollector;
let dbPath: string;
let readerFile: string;
let sample: SampleStream;
let events: ChainedEvent[];
const signer = new HeadSigner();
const receiptPem = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
/** The collector's receipt key, as an auditor holds it apart from the store. */
const receiptKey = new ReceiptSigner(receiptPem).key;

async function verify(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [cli, 'verify', ...args]);
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

/** `byline verify` both ways (the API serves the receipt key; from the store, the auditor gives it); both must say the same. */
async function verifyBoth(...extra: string[]): Promise<{ code: number; lines: string[] }> {
  const api = await verify('--collector', collector.url, '--token-file', readerFile, ...extra);
  const store = await verify('--store', `sqlite:${dbPath}`, '--receipt-key', receiptKey, ...extra);
  expect(store, 'from the store as through the API').toEqual(api);
  return {
    code: api.code,
    lines: api.stdout
      .trim()
      .split('\n')
      .map((l) => l.trim()),
  };
}

/** POSTs a batch as a sidecar does: its head signed (unless `sign` is false). */
async function post(batch: readonly ChainedEvent[], token = WRITER, sign: HeadSigner | false = signer) {
  const headers: Record<string, string> = {
    authorization: `Bearer ${token}`,
    'content-type': 'application/x-ndjson',
  };
  if (sign) {
    const { stream, seq, hash } = batch[batch.length - 1]!.event.chain;
    headers[SIGNED_HEAD_HEADER] = formatSignedHeadHeader(sign.sign({ stream, seq, hash }));
  }
  return fetch(`${collector.url}/v1/events`, { method: 'POST', headers, body: ndjson(batch) });
}

function withDb<T>(work: (db: Database.Database) => T): T {
  const db = new Database(dbPath);
  try {
    return work(db);
  } finally {
    db.close();
  }
}

/** A forged event for `stream` at `seq`, linking to `prev`, with a valid hash. */
function forge(seq: number, prev: string | null, text = 'delete from customers'): ChainedEvent {
  const base: UnchainedEvent = sample.nextEvent();
  return new ChainWriter(sample.stream, seq - 1, prev).append({
    ...base,
    context: { task: text, traceparent: null, tags: {} },
  });
}

function insertRaw(db: Database.Database, e: ChainedEvent): void {
  const c = e.event.chain;
  db.prepare(
    `INSERT INTO byline_events (id, time_us, event_type, identity_name, session_id, session_seq, route, database_name,
       stream, chain_seq, chain_prev, chain_hash, approval_name, received_at, event)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?)`,
  ).run(
    e.event.id,
    Date.parse(e.event.time) * 1000,
    e.event.type,
    e.event.identity.name,
    e.event.session.id,
    e.event.session.seq,
    e.event.target.route,
    e.event.target.database,
    c.stream,
    c.seq,
    c.prev,
    c.hash,
    new Date().toISOString(),
    e.json,
  );
}

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'byline-tamper-'));
  dbPath = join(dir, 'trail.db');
  readerFile = join(dir, 'reader.token');
  writeFileSync(readerFile, `${READER}\n`);
  writeFileSync(join(dir, 'receipt.pem'), receiptPem);
  collector = await startCollector(
    {
      listen: '127.0.0.1:0',
      store: `sqlite:${dbPath}`,
      receipts: { keyFile: join(dir, 'receipt.pem') },
      auth: {
        static: [
          { token: WRITER, identity: 'tamper-agent' },
          { token: OTHER, identity: 'other-agent' },
          { token: READER, reader: true },
        ],
      },
    },
    { logger: pino({ level: 'silent' }) },
  );
  sample = new SampleStream({ identity: 'tamper-agent' });
  events = sample.take(10);
  expect((await post(events.slice(0, 5))).status).toBe(200);
  expect((await post(events.slice(5))).status).toBe(200);
});

afterEach(async () => {
  await collector?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const noIds = (l: string) => l.replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, 'ID');

describe('byline verify', () => {
  test('an untouched trail is intact, every event covered by a signed head, through the API and from the store', async () => {
    expect(await verifyBoth()).toEqual({
      code: 0,
      lines: [
        'intact: 10 events in 1 stream, every chain verified and covered by 2 signed heads (keys receipted by the collector)',
      ],
    });
  });

  test('an edited, a deleted and two reordered events are each named', async () => {
    withDb((db) => {
      const rows = db
        .prepare('SELECT id, chain_seq AS seq, event AS json FROM byline_events ORDER BY chain_seq')
        .all() as { id: string; seq: number; json: string }[];
      expect(rows.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      const [, second, third, , , , seventh, eighth] = rows;
      // Edit: change the statement's row count inside event 2.
      db.prepare('UPDATE byline_events SET event = ? WHERE id = ?').run(
        second!.json.replace(/"rows":\d+/, '"rows":999'),
        second!.id,
      );
      // Delete event 3.
      db.prepare('DELETE FROM byline_event_tables WHERE event_id = ?').run(third!.id);
      db.prepare('DELETE FROM byline_events WHERE id = ?').run(third!.id);
      // Reorder 7 and 8: each row now holds the other's event.
      db.prepare('UPDATE byline_events SET event = ? WHERE id = ?').run(eighth!.json, seventh!.id);
      db.prepare('UPDATE byline_events SET event = ? WHERE id = ?').run(seventh!.json, eighth!.id);
    });
    const { code, lines } = await verifyBoth();
    expect(code).toBe(1);
    expect(lines.map(noIds)).toEqual([
      'NOT INTACT: 4 problems in 9 events:',
      expect.stringMatching(/^stream ID seq 2: event ID was edited/),
      'stream ID seq 3: an event was removed',
      'stream ID seq 7: event ID was moved or reordered (it belongs at stream ID seq 8)',
      'stream ID seq 8: event ID was moved or reordered (it belongs at stream ID seq 7)',
    ]);
  });

  test('a forged event inserted at an existing seq, with a valid prev and hash, is named', async () => {
    // At seq 10, the head: no later event's prev can give it away, and it links to seq 9.
    const forged = forge(10, events[8]!.event.chain.hash);
    withDb((db) => insertRaw(db, forged));
    const { code, lines } = await verifyBoth();
    expect(code).toBe(1);
    expect(lines[0]).toBe('NOT INTACT: 1 problem in 11 events:');
    expect(lines[1]).toMatch(/^stream \S+ seq 10: 2 events hold this seq \(.*\): a fork or an inserted event$/);
    expect(lines[1]).toContain(forged.event.id);
  });

  test('a fork the collector saw at ingest is named twice: as the duplicate seq and as its marker', async () => {
    const twin = forge(4, events[2]!.event.chain.hash);
    expect((await post([twin])).status).toBe(200);
    const { code, lines } = await verifyBoth();
    expect(code).toBe(1);
    expect(lines.map(noIds)).toEqual([
      'NOT INTACT: 2 problems in 11 events:',
      expect.stringMatching(/^stream ID seq 4: 2 events hold this seq/),
      expect.stringMatching(/^stream ID seq 4: the collector recorded a fork at ingest: seq 4 is held by/),
    ]);
  });

  test('an event sent again with other content is not stored, but its marker is named', async () => {
    const original = events[9]!.event;
    const { chain, ...unchained } = original;
    const impostor = new ChainWriter(chain.stream, chain.seq - 1, chain.prev).append({
      ...unchained,
      context: { task: 'not what ran', traceparent: null, tags: {} },
    });
    expect(impostor.event.id).toBe(original.id);
    expect((await post([impostor])).status).toBe(200);
    const { code, lines } = await verifyBoth();
    expect(code).toBe(1);
    expect(lines.map(noIds)).toEqual([
      'NOT INTACT: 1 problem in 10 events:',
      expect.stringMatching(
        /^stream ID seq 10: the collector recorded a fork at ingest: event ID arrived again with different content/,
      ),
    ]);
  });

  test('a history rewritten from seq 6 with valid hashes and links does not carry the signed head', async () => {
    // The insider replaces events 6–10 with a forged chain linking to event 5: every hash and link checks out.
    withDb((db) => {
      db.prepare('DELETE FROM byline_event_tables').run();
      db.prepare('DELETE FROM byline_events WHERE chain_seq >= 6').run();
      let prev = events[4]!.event.chain.hash;
      for (let seq = 6; seq <= 10; seq++) {
        const forged = forge(seq, prev, `forged ${seq}`);
        insertRaw(db, forged);
        prev = forged.event.chain.hash;
      }
    });
    let result = await verifyBoth();
    expect(result.code).toBe(1);
    expect(result.lines.map(noIds)).toEqual([
      'NOT INTACT: 2 problems in 10 events:',
      expect.stringMatching(
        /^stream ID seq 10: the sidecar signed hash [0-9a-f]{12}… at this seq, but no stored event has it/,
      ),
      expect.stringMatching(/^stream ID seq 6–10: no signed head covers these 5 events/),
    ]);
    // Deleting the signature that gives it away leaves the forgery unsigned, which is named too.
    withDb((db) => db.prepare('DELETE FROM byline_signed_heads WHERE seq = 10').run());
    result = await verifyBoth();
    expect(result.lines.map(noIds)).toEqual([
      'NOT INTACT: 1 problem in 10 events:',
      expect.stringMatching(/^stream ID seq 6–10: no signed head covers these 5 events/),
    ]);
    // --allow-unsigned (trails from writers that do not sign) reports it and passes.
    result = await verifyBoth('--allow-unsigned');
    expect(result.code).toBe(0);
    expect(result.lines[0]).toBe(
      'intact chains: 10 events in 1 stream, every chain verified; 1 signed head, but not everything is signed (--allow-unsigned):',
    );
  });

  test('dropping the tail is named, by the signed head and by the head the collector recorded', async () => {
    withDb((db) => {
      db.prepare('DELETE FROM byline_event_tables').run();
      db.prepare('DELETE FROM byline_events WHERE chain_seq >= 8').run();
    });
    let result = await verifyBoth();
    // 6–7 were vouched for only by the head at 10, which is gone.
    expect(result.lines.map(noIds)).toEqual([
      'NOT INTACT: 3 problems in 7 events:',
      'stream ID seq 8–10: 3 events were removed',
      expect.stringMatching(/^stream ID seq 10: the sidecar signed hash .* but no stored event has it/),
      expect.stringMatching(/^stream ID seq 6–7: no signed head covers these 2 events/),
    ]);
    // Also covering its tracks in the stream's head row: the signature still names the cut.
    withDb((db) => db.prepare('UPDATE byline_streams SET last_seq = 7').run());
    result = await verifyBoth();
    expect(result.lines.map(noIds)).toEqual([
      'NOT INTACT: 2 problems in 7 events:',
      expect.stringMatching(/^stream ID seq 10: the sidecar signed hash .* but no stored event has it/),
      expect.stringMatching(/^stream ID seq 6–7: no signed head covers these 2 events/),
    ]);
  });

  test("deleting the stream's row does not hide its edited events from verify", async () => {
    withDb((db) => {
      const row = db.prepare('SELECT id, event FROM byline_events WHERE chain_seq = 4').get() as {
        id: string;
        event: string;
      };
      db.prepare('UPDATE byline_events SET event = ? WHERE id = ?').run(
        row.event.replace('"database":"orders"', '"database":"0rders"'),
        row.id,
      );
      db.prepare('DELETE FROM byline_streams').run();
    });
    const { code, lines } = await verifyBoth();
    expect(code).toBe(1);
    expect(lines.map(noIds)).toEqual([
      'NOT INTACT: 1 problem in 10 events:',
      expect.stringMatching(/^stream ID seq 4: /),
    ]);
  });

  test('a head signed by a key that is not registered for the stream is named', async () => {
    const forger = new HeadSigner();
    const { stream, seq, hash } = events[9]!.event.chain;
    const head = forger.sign({ stream, seq, hash });
    withDb((db) =>
      db
        .prepare(
          `INSERT INTO byline_signed_heads (stream, seq, hash, public_key, signature, received_at)
           VALUES (?, ?, ?, ?, ?, ?)`,
        )
        .run(stream, seq, hash, head.key, head.sig, new Date().toISOString()),
    );
    const { code, lines } = await verifyBoth();
    expect(code).toBe(1);
    expect(lines.map(noIds)).toEqual([
      'NOT INTACT: 1 problem in 10 events:',
      `stream ID seq 10: the head is signed by key ${head.key}, which was not registered for this stream`,
    ]);
  });
});

describe('keys the collector receipted', () => {
  test('an insider who registers a key of their own and signs a forged history with it is caught by the receipt', async () => {
    const insider = new HeadSigner();
    const forgedHead = withDb((db) => {
      db.prepare('DELETE FROM byline_event_tables').run();
      db.prepare('DELETE FROM byline_events WHERE chain_seq >= 6').run();
      db.prepare('DELETE FROM byline_signed_heads WHERE seq >= 6').run();
      let prev = events[4]!.event.chain.hash;
      let last: ChainedEvent | undefined;
      for (let seq = 6; seq <= 10; seq++) {
        last = forge(seq, prev, `forged ${seq}`);
        insertRaw(db, last);
        prev = last.event.chain.hash;
      }
      const head = insider.sign(last!.event.chain);
      db.prepare(
        `INSERT INTO byline_stream_keys (stream, public_key, owner, receipt, registered_at) VALUES (?, ?, ?, ?, ?)`,
      ).run(sample.stream, insider.key, 'static:tamper-agent', null, new Date().toISOString());
      db.prepare(
        `INSERT INTO byline_signed_heads (stream, seq, hash, public_key, signature, received_at) VALUES (?, ?, ?, ?, ?, ?)`,
      ).run(sample.stream, head.seq, head.hash, head.key, head.sig, new Date().toISOString());
      return head;
    });
    const { code, lines } = await verifyBoth();
    expect(code).toBe(1);
    expect(lines.map(noIds)).toEqual([
      'NOT INTACT: 2 problems in 10 events:',
      `stream ID: key ${forgedHead.key} has no valid receipt from the collector (it was not registered by the collector)`,
      expect.stringMatching(/^stream ID seq 6–10: no signed head covers these 5 events/),
    ]);
    // Honest limit: from the store alone, without the collector's receipt key, the forgery passes.
    const blind = await verify('--store', `sqlite:${dbPath}`);
    expect(blind).toMatchObject({ code: 0 });
    expect(blind.stdout).toBe('intact: 10 events in 1 stream, every chain verified and covered by 2 signed heads\n');
  });

  test('a collector whose receipts key is missing or not Ed25519 does not start, naming the file', async () => {
    const rsa = join(dir, 'rsa.pem');
    writeFileSync(
      rsa,
      generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' }),
    );
    for (const [keyFile, problem] of [
      [rsa, 'expected an Ed25519 private key, got rsa'],
      [join(dir, 'missing.pem'), 'ENOENT'],
    ] as const) {
      const starting = startCollector(
        {
          listen: '127.0.0.1:0',
          store: `sqlite:${join(dir, 'other.db')}`,
          receipts: { keyFile },
          auth: { static: [{ token: READER, reader: true }] },
        },
        { logger: pino({ level: 'silent' }) },
      );
      await expect(starting).rejects.toThrow(`receipts.keyFile: cannot use ${keyFile}: `);
      await expect(starting).rejects.toThrow(problem);
    }
  });

  test('--help prints the usage, with the receipt key and unsigned options', async () => {
    const result = await verify('--help');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^usage: byline verify /);
    expect(result.stdout).toContain('--receipt-key KEY');
    expect(result.stdout).toContain('--allow-unsigned');
  });

  test('a receipt key that is not a key is a usage error', async () => {
    const result = await verify('--store', `sqlite:${dbPath}`, '--receipt-key', 'nope');
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--receipt-key: key must be a raw Ed25519 public key (32 bytes) in base64url');
  });
});

describe('GET /v1/evidence', () => {
  const get = async (query: string, token = READER) => {
    const res = await fetch(`${collector.url}/v1/evidence${query}`, { headers: { authorization: `Bearer ${token}` } });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  test("answers a reader with the stream's markers, keys, signed heads and the collector's receipt key", async () => {
    const { status, body } = await get(`?stream=${sample.stream}&stream=unknown-stream`);
    expect(status).toBe(200);
    expect(body).toEqual({
      receiptKey,
      streams: [
        {
          stream: sample.stream,
          lastSeq: 10,
          markers: [],
          keys: [{ key: signer.key, owner: 'static:tamper-agent', receipt: expect.any(String) }],
          heads: [expect.objectContaining({ seq: 5 }), expect.objectContaining({ seq: 10 })],
        },
        { stream: 'unknown-stream', markers: [], keys: [], heads: [] },
      ],
    });
    expect(await get('')).toEqual({ status: 200, body: { receiptKey, streams: [] } });
  });

  test('refuses writers, unknown parameters, empty and too many streams, naming the problem', async () => {
    expect((await get(`?stream=${sample.stream}`, WRITER)).status).toBe(403);
    const cases: [string, string][] = [
      ['?streams=x', 'unknown query parameter "streams" (only "stream" is taken)'],
      ['?stream=', 'stream must not be empty'],
      [`?${Array.from({ length: 101 }, (_, i) => `stream=s${i}`).join('&')}`, 'at most 100 streams per request'],
    ];
    for (const [query, error] of cases) expect(await get(query)).toEqual({ status: 400, body: { error } });
  });
});

describe('stream ownership', () => {
  test('another writer may not append to a stream, even with events in its own name: 403, nothing stored', async () => {
    // The other writer continues the stream correctly (seq 11, prev = head), as itself.
    const base = new SampleStream({ identity: 'other-agent' }).nextEvent();
    const intruder = new ChainWriter(sample.stream, 10, events[9]!.event.chain.hash).append(base);
    const res = await post([intruder], OTHER);
    expect(res.status).toBe(403);
    const body = (await res.json()) as { error: string; reason: string };
    expect(body.reason).toBe('stream-owner');
    expect(body.error).toBe(
      `batch refused, nothing stored: stream ${sample.stream} belongs to static:tamper-agent; static:other-agent may not append to it (a writer extends only its own streams)`,
    );
    expect(withDb((db) => db.prepare('SELECT count(*) AS n FROM byline_events').get())).toEqual({ n: 10 });
    // The owner itself carries on.
    expect((await post(sample.take(1))).status).toBe(200);
    // And the other writer's own stream is its own.
    expect((await post(new SampleStream({ identity: 'other-agent' }).take(2), OTHER)).status).toBe(200);
  });

  test('an unsigned batch is accepted and counted, and verify names its events unsigned', async () => {
    const metric = async () =>
      Number(
        /^byline_collector_unsigned_batches_total (\d+)$/m.exec(
          await (await fetch(`${collector.url}/metrics`)).text(),
        )?.[1],
      );
    expect(await metric()).toBe(0);
    expect((await post(sample.take(2), WRITER, false)).status).toBe(200);
    expect(await metric()).toBe(1);
    const { code, lines } = await verifyBoth();
    expect(code).toBe(1);
    expect(lines.map(noIds)).toEqual([
      'NOT INTACT: 1 problem in 12 events:',
      expect.stringMatching(/^stream ID seq 11–12: no signed head covers these 2 events/),
    ]);
  });

  test('a signed head that is not an event of the batch, or does not verify, is refused', async () => {
    const batch = sample.take(2);
    const { stream, seq, hash } = batch[1]!.event.chain;
    const good = signer.sign({ stream, seq, hash });
    const send = (header: string) =>
      fetch(`${collector.url}/v1/events`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${WRITER}`,
          'content-type': 'application/x-ndjson',
          [SIGNED_HEAD_HEADER]: header,
        },
        body: ndjson(batch),
      });
    const cases: [string, RegExp][] = [
      [formatSignedHeadHeader({ ...good, seq: 99 }), /no event of this batch has seq 99/],
      [formatSignedHeadHeader({ ...good, sig: new HeadSigner().sign({ stream, seq, hash }).sig }), /does not verify/],
      [formatSignedHeadHeader({ ...good, key: 'abc' }), /key must be a raw Ed25519 public key/],
      ['key=abc', /seq is missing/],
    ];
    for (const [header, error] of cases) {
      const res = await send(header);
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: string }).error).toMatch(error);
    }
    expect((await send(formatSignedHeadHeader(good))).status).toBe(200);
  });
});
