/**
 * Signed heads end to end: a real sidecar in front of a real Postgres ships to a real collector,
 * signing each batch's head with a key of its own; the collector registers the key bound to the
 * writer and stores the signatures; `byline verify` finds every event covered. A restarted sidecar
 * continues its stream with a new key. An insider who rewrites the stored history, with valid
 * hashes and links, cannot make the sidecar's signatures cover it.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { type AuditEvent, ChainWriter, type SidecarConfig, SidecarConfigSchema, validate } from '@byline/api';
import { type RunningCollector, startCollector } from '@byline/collector';
import { type RunningSidecar, startSidecar } from '@byline/sidecar';
import Database from 'better-sqlite3';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { AUTH_USERS, startPostgres, TEST_PASSWORD, type TestPostgres } from '../harness/postgres.js';

const run = promisify(execFile);
const cli = join(resolve(import.meta.dirname, '../..'), 'cli/bin/byline.mjs');
const logger = pino({ level: 'silent' });
const WRITER = 'signing-writer-token-0123456789';
const READER = 'signing-reader-token-0123456789';

let dir: string;
let db: TestPostgres;
let collector: RunningCollector;
let config: SidecarConfig;
let dbPath: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'byline-signed-'));
  dbPath = join(dir, 'trail.db');
  db = await startPostgres();
  collector = await startCollector(
    {
      listen: '127.0.0.1:0',
      store: `sqlite:${dbPath}`,
      auth: {
        static: [
          { token: WRITER, identity: 'signing-agent' },
          { token: READER, reader: true },
        ],
      },
    },
    { logger },
  );
  writeFileSync(join(dir, 'writer.token'), WRITER);
  writeFileSync(join(dir, 'reader.token'), READER);
  writeFileSync(join(dir, 'pw'), TEST_PASSWORD);
  config = validate(
    SidecarConfigSchema,
    {
      identity: { static: { name: 'signing-agent', kind: 'agent' } },
      routes: [
        {
          name: 'signed-db',
          listen: '127.0.0.1:0',
          upstream: { host: db.host, port: db.port, database: 'postgres', sslMode: 'disable' },
          credentials: {
            mode: 'inject',
            username: AUTH_USERS.scram,
            passwordFile: join(dir, 'pw'),
            acceptAnyUser: true,
          },
        },
      ],
      audit: {
        spoolDir: join(dir, 'spool'),
        sinks: [{ collector: { url: collector.url, tokenFile: join(dir, 'writer.token') } }],
      },
    },
    'signed heads test config',
  );
});

afterAll(async () => {
  await collector?.close();
  await db?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Runs statements through a fresh sidecar on the same spool, ships everything, and stops it. */
async function sidecarRuns(...statements: string[]): Promise<void> {
  const sidecar: RunningSidecar = await startSidecar(config, { logger });
  try {
    const client = new pg.Client({ host: '127.0.0.1', port: sidecar.routes[0]!.port, user: 'x', database: 'postgres' });
    await client.connect();
    for (const s of statements) await client.query(s);
    await client.end();
    await sidecar.flush();
    for (const s of sidecar.shippers) expect(await s.drain(10_000)).toBe(true);
  } finally {
    await sidecar.close();
  }
}

async function verify(...args: string[]): Promise<{ code: number; stdout: string }> {
  try {
    const { stdout } = await run(process.execPath, [cli, 'verify', ...args]);
    return { code: 0, stdout };
  } catch (e) {
    const err = e as { code: number; stdout: string };
    return { code: err.code, stdout: err.stdout };
  }
}

const rows = <T>(sql: string): T[] => {
  const d = new Database(dbPath, { readonly: true });
  try {
    return d.prepare(sql).all() as T[];
  } finally {
    d.close();
  }
};

test('every shipped event is covered by a head the sidecar signed, with a new key after a restart', async () => {
  await sidecarRuns("select 'one'", "select 'two'");
  const keys = rows<{ public_key: string; owner: string }>('SELECT public_key, owner FROM byline_stream_keys');
  expect(keys).toEqual([{ public_key: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/), owner: 'static:signing-agent' }]);
  await sidecarRuns("select 'three'");
  const after = rows<{ stream: string; public_key: string }>('SELECT stream, public_key FROM byline_stream_keys');
  expect(after).toHaveLength(2);
  expect(new Set(after.map((k) => k.stream)).size).toBe(1); // one stream, continued across the restart
  const events = rows<{ n: number }>('SELECT count(*) AS n FROM byline_events')[0]!.n;
  expect(events).toBe(7); // two sessions: start, statements, end

  for (const how of [
    ['--store', `sqlite:${dbPath}`],
    ['--collector', collector.url, '--token-file', join(dir, 'reader.token')],
  ]) {
    const result = await verify(...how);
    expect(result.code, result.stdout).toBe(0);
    expect(result.stdout).toMatch(
      /^intact: 7 events in 1 stream, every chain verified and covered by \d+ signed heads?\n$/,
    );
  }
});

test('a history rewritten by an insider, every hash and link valid, is not covered by the signatures', async () => {
  const stored = rows<{ json: string }>('SELECT event AS json FROM byline_events ORDER BY chain_seq').map(
    (r) => JSON.parse(r.json) as AuditEvent,
  );
  // Rewrite what statement 2 said and re-chain everything after it, as an insider would.
  const d = new Database(dbPath);
  try {
    const first = stored[0]!;
    const writer = new ChainWriter(first.chain.stream, first.chain.seq, first.chain.hash);
    for (const e of stored.slice(1)) {
      const { chain: _chain, ...rest } = e;
      const text = rest.statement?.text === "select 'two'" ? "select 'nothing to see'" : rest.statement?.text;
      const rewritten = writer.append({
        ...rest,
        statement: rest.statement ? { ...rest.statement, text: text! } : null,
      });
      d.prepare('UPDATE byline_events SET event = ?, chain_prev = ?, chain_hash = ? WHERE id = ?').run(
        rewritten.json,
        rewritten.event.chain.prev,
        rewritten.event.chain.hash,
        e.id,
      );
    }
  } finally {
    d.close();
  }
  const result = await verify('--store', `sqlite:${dbPath}`);
  expect(result.code).toBe(1);
  const lines = result.stdout.trim().split('\n');
  expect(lines[0], result.stdout).toMatch(/^NOT INTACT: \d+ problems in 7 events:$/);
  expect(lines.some((l) => /the sidecar signed hash .* but no stored event has it/.test(l))).toBe(true);
  // Statement 'two' is at seq 3; whatever the batch boundaries were, nothing from there on is covered.
  const unsigned = lines.map((l) => /seq (\d+)–7: no signed head covers/.exec(l)?.[1]).find(Boolean);
  expect(Number(unsigned), result.stdout).toBeLessThanOrEqual(3);
});
