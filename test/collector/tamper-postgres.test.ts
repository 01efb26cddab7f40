/**
 * The insider's tampering of tamper.test.ts against the PostgreSQL store: a collector on a real
 * PostgreSQL, an event inserted beside a real one and a key of the insider's own written into the
 * database, found by `byline verify --store postgres://…` with the collector's receipt key.
 */
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { ChainWriter, formatSignedHeadHeader, HeadSigner, ReceiptSigner, SIGNED_HEAD_HEADER } from '@byline/api';
import { ndjson, type RunningCollector, SampleStream, startCollector } from '@byline/collector';
import pino from 'pino';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { startPostgres, type TestPostgres } from '../harness/postgres.js';

const run = promisify(execFile);
const cli = join(resolve(import.meta.dirname, '../..'), 'cli/bin/byline.mjs');
const WRITER = 'pg-writer-token-0123456789';
const READER = 'pg-reader-token-0123456789';

let dir: string;
let pg: TestPostgres;
let collector: RunningCollector;
let url: string;
const pem = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
const receiptKey = new ReceiptSigner(pem).key;

async function verify(...args: string[]): Promise<{ code: number; stdout: string }> {
  try {
    const { stdout } = await run(process.execPath, [cli, 'verify', ...args]);
    return { code: 0, stdout };
  } catch (e) {
    const err = e as { code: number; stdout: string };
    return { code: err.code, stdout: err.stdout };
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'byline-tamper-pg-'));
  writeFileSync(join(dir, 'receipt.pem'), pem);
  pg = await startPostgres();
  const admin = pg.client();
  await admin.connect();
  await admin.query('CREATE DATABASE trail');
  await admin.end();
  url = pg.url('trail');
  collector = await startCollector(
    {
      listen: '127.0.0.1:0',
      store: url,
      receipts: { keyFile: join(dir, 'receipt.pem') },
      auth: {
        static: [
          { token: WRITER, identity: 'pg-agent' },
          { token: READER, reader: true },
        ],
      },
    },
    { logger: pino({ level: 'silent' }) },
  );
});

afterAll(async () => {
  await collector?.close();
  await pg?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('verify from a PostgreSQL store names an inserted event and a key the collector never receipted', async () => {
  const sample = new SampleStream({ identity: 'pg-agent' });
  const events = sample.take(6);
  const { stream, seq, hash } = events[5]!.event.chain;
  const res = await fetch(`${collector.url}/v1/events`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${WRITER}`,
      'content-type': 'application/x-ndjson',
      [SIGNED_HEAD_HEADER]: formatSignedHeadHeader(new HeadSigner().sign({ stream, seq, hash })),
    },
    body: ndjson(events),
  });
  expect(res.status).toBe(200);
  expect(await verify('--store', url, '--receipt-key', receiptKey)).toEqual({
    code: 0,
    stdout:
      'intact: 6 events in 1 stream, every chain verified and covered by 1 signed head (keys receipted by the collector)\n',
  });

  // The insider: an event beside seq 4, linking to seq 3, and a key of their own with a head it signed.
  const forged = new ChainWriter(stream, 3, events[2]!.event.chain.hash).append(sample.nextEvent());
  const insider = new HeadSigner();
  const head = insider.sign({ stream, seq, hash });
  const db = pg.client('trail');
  await db.connect();
  try {
    const e = forged.event;
    await db.query(
      `INSERT INTO byline_events (id, time_us, event_type, identity_name, session_id, session_seq, route, database_name,
         stream, chain_seq, chain_prev, chain_hash, approval_name, received_at, event)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, NULL, now(), $13)`,
      [
        e.id,
        Date.parse(e.time) * 1000,
        e.type,
        e.identity.name,
        e.session.id,
        e.session.seq,
        e.target.route,
        e.target.database,
        stream,
        4,
        e.chain.prev,
        e.chain.hash,
        forged.json,
      ],
    );
    await db.query(
      `INSERT INTO byline_stream_keys (stream, public_key, owner, receipt, registered_at) VALUES ($1, $2, $3, NULL, now())`,
      [stream, insider.key, 'static:pg-agent'],
    );
    await db.query(
      `INSERT INTO byline_signed_heads (stream, seq, hash, public_key, signature, received_at)
       VALUES ($1, $2, $3, $4, $5, now())`,
      [stream, head.seq, head.hash, head.key, head.sig],
    );
  } finally {
    await db.end();
  }
  const result = await verify('--store', url, '--receipt-key', receiptKey);
  expect(result.code).toBe(1);
  expect(result.stdout.trim().split('\n')).toEqual([
    'NOT INTACT: 2 problems in 7 events:',
    expect.stringMatching(new RegExp(`^  stream ${stream} seq 4: 2 events hold this seq \\(.*${forged.event.id}.*\\)`)),
    `  stream ${stream}: key ${insider.key} has no valid receipt from the collector (it was not registered by the collector)`,
  ]);
});
