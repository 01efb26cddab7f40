/**
 * Tamper evidence: events stored by a real collector are then edited, deleted and reordered
 * directly in its SQLite store, as someone with access to the database could; `byline verify`,
 * through the API and straight from the store, must fail and name each.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { ndjson, type RunningCollector, SampleStream, startCollector } from '@byline/collector';
import Database from 'better-sqlite3';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';

const run = promisify(execFile);
const cli = join(resolve(import.meta.dirname, '../..'), 'cli/bin/byline.mjs');
const WRITER = 'writer-token-0123456789';
const READER = 'reader-token-0123456789';

let dir: string;
let collector: RunningCollector;
let dbPath: string;
let readerFile: string;

async function verify(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [cli, 'verify', ...args]);
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'byline-tamper-'));
  dbPath = join(dir, 'trail.db');
  readerFile = join(dir, 'reader.token');
  writeFileSync(readerFile, `${READER}\n`);
  collector = await startCollector(
    {
      listen: '127.0.0.1:0',
      store: `sqlite:${dbPath}`,
      auth: {
        static: [
          { token: WRITER, identity: 'tamper-agent' },
          { token: READER, reader: true },
        ],
      },
    },
    { logger: pino({ level: 'silent' }) },
  );
  const stream = new SampleStream({ identity: 'tamper-agent' });
  const res = await fetch(`${collector.url}/v1/events`, {
    method: 'POST',
    headers: { authorization: `Bearer ${WRITER}`, 'content-type': 'application/x-ndjson' },
    body: ndjson(stream.take(10)),
  });
  expect(res.status).toBe(200);
});

afterAll(async () => {
  await collector?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('byline verify', () => {
  test('an untouched trail is intact, through the API and from the store', async () => {
    const api = await verify('--collector', collector.url, '--token-file', readerFile);
    expect(api).toMatchObject({ code: 0, stdout: 'intact: 10 events in 1 stream, every chain verified\n' });
    const store = await verify('--store', `sqlite:${dbPath}`);
    expect(store).toMatchObject({ code: 0, stdout: 'intact: 10 events in 1 stream, every chain verified\n' });
  });

  test('an edited, a deleted and two reordered events are each named', async () => {
    const db = new Database(dbPath);
    try {
      const rows = db
        .prepare('SELECT id, chain_seq AS seq, event AS json FROM byline_events ORDER BY chain_seq')
        .all() as {
        id: string;
        seq: number;
        json: string;
      }[];
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
    } finally {
      db.close();
    }
    for (const args of [
      ['--collector', collector.url, '--token-file', readerFile],
      ['--store', `sqlite:${dbPath}`],
    ]) {
      const result = await verify(...args);
      expect(result.code, result.stderr).toBe(1);
      const lines = result.stdout.trim().split('\n');
      expect(lines[0]).toMatch(/^NOT INTACT: 4 problems in 9 events:$/);
      expect(lines.slice(1).map((l) => l.trim().replace(/event [0-9a-f-]{36} /, 'event … '))).toEqual([
        expect.stringMatching(/^stream \S+ seq 2: event … was edited/),
        expect.stringMatching(/^stream \S+ seq 3: an event was removed$/),
        expect.stringMatching(/^stream \S+ seq 7: event … was moved or reordered \(it belongs at stream \S+ seq 8\)$/),
        expect.stringMatching(/^stream \S+ seq 8: event … was moved or reordered \(it belongs at stream \S+ seq 7\)$/),
      ]);
    }
  });
});
