/**
 * Live follow over HTTP: `GET /v1/events/follow` against a real collector (SQLite in a temp dir),
 * and `byline trail --follow` run as a person runs it (the built CLI in a child process) while the
 * collector is stopped, written to behind its back, and restarted on the same port: every event
 * is printed exactly once, in the order stored.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CollectorConfig } from '@byline/api';
import { ndjson, openStore, parseBatch, type RunningCollector, SampleStream, startCollector } from '@byline/collector';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { parseCommand, UsageError } from '../../cli/src/command-table.js';
import { COMMANDS } from '../../cli/src/commands.js';
import { trail } from '../../cli/src/trail.js';
import { freePort } from '../harness/postgres.js';
import { call } from './http.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = join(ROOT, 'cli/bin/byline.mjs');
const WRITER = 'follow-writer-token-0123456789';
const READER = 'follow-reader-token-0123456789';

let dir: string;
let n = 0;
const running: RunningCollector[] = [];
const children: ChildProcess[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'byline-follow-http-'));
  writeFileSync(join(dir, 'reader.token'), `${READER}\n`);
});

afterEach(async () => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
  for (const c of running.splice(0)) await c.close();
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function config(store: string, port = 0): CollectorConfig {
  return {
    listen: `127.0.0.1:${port}`,
    store,
    auth: {
      static: [
        { token: WRITER, identity: 'billing-agent' },
        { token: READER, reader: true },
      ],
    },
  };
}

async function start(store: string, port = 0): Promise<RunningCollector> {
  const c = await startCollector(config(store, port), { logger: pino({ level: 'silent' }) });
  running.push(c);
  return c;
}

const post = async (port: number, events: ReturnType<SampleStream['take']>) => {
  const r = await call(port, 'POST', '/v1/events', { token: WRITER, body: ndjson(events) });
  expect(r.status, r.text).toBe(200);
};

describe('GET /v1/events/follow', () => {
  test('waits for new events, answers as soon as they are stored, and resumes from its cursor', async () => {
    const c = await start(`sqlite:${join(dir, `t${++n}`, 'trail.db')}`);
    const s = new SampleStream();
    const before = s.take(3);
    await post(c.port, before);
    const end = await call(c.port, 'GET', '/v1/events/follow?from=end&wait=0', { token: READER });
    expect(end.status, end.text).toBe(200);
    expect(end.json.events).toEqual([]);

    // A waiting follow is answered by the batch stored while it waits.
    const started = Date.now();
    const waiting = call(c.port, 'GET', `/v1/events/follow?cursor=${end.json.nextCursor}&wait=10`, { token: READER });
    await new Promise((r) => setTimeout(r, 400));
    const during = s.take(2);
    await post(c.port, during);
    const woke = await waiting;
    expect(woke.status, woke.text).toBe(200);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(woke.json.events.map((e: { event: { id: string } }) => e.event.id)).toEqual(during.map((e) => e.event.id));

    // From the start, in pages of two, each event once and in the order stored.
    const seen: string[] = [];
    let cursor: string | undefined;
    for (;;) {
      const q = cursor ? `cursor=${cursor}` : 'from=start';
      const r = await call(c.port, 'GET', `/v1/events/follow?${q}&limit=2&wait=0`, { token: READER });
      expect(r.status, r.text).toBe(200);
      seen.push(...r.json.events.map((e: { event: { id: string } }) => e.event.id));
      cursor = r.json.nextCursor;
      if (r.json.events.length === 0) break;
    }
    expect(seen).toEqual([...before, ...during].map((e) => e.event.id));

    // Nothing new: an empty page after `wait` seconds, with the same place to resume.
    const idle = await call(c.port, 'GET', `/v1/events/follow?cursor=${cursor}&wait=1`, { token: READER });
    expect(idle.json).toMatchObject({ events: [], nextCursor: cursor });
  });

  test('bad parameters and writer tokens get clear refusals', async () => {
    const c = await start(`sqlite:${join(dir, `t${++n}`, 'trail.db')}`);
    const ask = (q: string, token = READER) => call(c.port, 'GET', `/v1/events/follow?${q}`, { token });
    const page = await call(c.port, 'GET', '/v1/events?limit=1', { token: READER });
    const cases: [string, RegExp][] = [
      ['cursor=garbage', /not a follow cursor/],
      ['from=middle', /from: expected start or end/],
      ['wait=600', /wait: expected an integer from 0 to 25/],
      ['limit=0', /limit: expected an integer from 1 to 5000/],
      ['cursor=eyJ9&from=end', /either cursor .* or from/],
      ['since=yesterday', /since: expected an RFC 3339 time/],
      ['tail=1', /unknown query parameter "tail"/],
      ['wait=1&wait=2', /wait: given more than once/],
      ['class=select', /class: expected one of read, write, ddl, role, tcl, misc, got "select"/],
      ['status=failed', /status: expected one of ok, error, cancelled, denied, unknown/],
    ];
    expect(page.status).toBe(200);
    for (const [q, message] of cases) {
      const r = await ask(q);
      expect(r.status, q).toBe(400);
      expect(r.json.error, q).toMatch(message);
    }
    expect((await ask('wait=0', WRITER)).status).toBe(403);
    expect((await call(c.port, 'GET', '/v1/events/follow?wait=0')).status).toBe(401);
  });

  test('closing the collector answers a waiting follow at once', async () => {
    const c = await start(`sqlite:${join(dir, `t${++n}`, 'trail.db')}`);
    const waiting = call(c.port, 'GET', '/v1/events/follow?from=end&wait=25', { token: READER });
    await new Promise((r) => setTimeout(r, 300));
    const started = Date.now();
    await c.close();
    const r = await waiting;
    expect(r.status).toBe(200);
    expect(Date.now() - started).toBeLessThan(3000);
  });
});

describe('byline trail --follow', () => {
  test('prints each event once, in the order stored, across a collector restart and writes made while it was down', async () => {
    const port = await freePort();
    const path = join(dir, `t${++n}`, 'trail.db');
    let c = await start(`sqlite:${path}`, port);
    const s = new SampleStream();
    const other = new SampleStream({ identity: 'billing-agent' });
    const batches = [s.take(4), other.take(3), s.take(2), other.take(5)];
    const total = batches.flat().length;

    const child = spawn(
      process.execPath,
      [
        BIN,
        'trail',
        '--follow',
        '--format',
        'json',
        '--since',
        '2000-01-01T00:00:00Z',
        '--limit',
        String(total),
        '--collector',
        `http://127.0.0.1:${port}`,
        '--token-file',
        join(dir, 'reader.token'),
      ],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    children.push(child);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const exited = new Promise<number | null>((r) => child.once('close', (code) => r(code)));
    const lines = () => stdout.split('\n').filter(Boolean);
    const until = async (count: number) => {
      const deadline = Date.now() + 15_000;
      while (lines().length < count) {
        if (Date.now() > deadline) throw new Error(`waited for ${count} lines, have ${lines().length}:\n${stderr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };

    await post(port, batches[0]!);
    await until(4);
    await c.close();
    running.splice(running.indexOf(c), 1);
    // Stored while the collector (and so the follow) is down.
    const direct = await openStore(`sqlite:${path}`);
    const parsed = parseBatch(
      new TextEncoder().encode(ndjson(batches[1]!)),
      { name: 'billing-agent', kind: 'agent', source: 'static' },
      1_000_000,
    );
    if (!parsed.ok) throw new Error(parsed.error);
    await direct.insertBatch(parsed.events, new Date());
    await direct.close();
    await new Promise((r) => setTimeout(r, 700)); // let the follower notice the outage
    c = await start(`sqlite:${path}`, port);
    await post(port, batches[2]!);
    await post(port, batches[3]!);
    expect(await exited, stderr).toBe(0);
    expect(lines()).toEqual(batches.flat().map((e) => e.json));
    expect(stderr).toMatch(/cannot reach the collector .* retrying/);
  });
});

describe('byline trail --class --status --text', () => {
  /** `byline trail ARGS` in this process: what it printed. */
  async function printed(port: number, args: string[]): Promise<string> {
    const trailCommand = COMMANDS.find((c) => c.name === 'trail')!;
    let out = '';
    const sink = {
      write: (t: string) => {
        out += t;
        return true;
      },
    } as unknown as NodeJS.WritableStream;
    const base = ['--collector', `http://127.0.0.1:${port}`, '--token-file', join(dir, 'reader.token')];
    expect(await trail(parseCommand(trailCommand, [...base, ...args]), sink)).toBe(0);
    return out;
  }
  const idsOf = (jsonLines: string) =>
    jsonLines
      .split('\n')
      .filter(Boolean)
      .map((l) => (JSON.parse(l) as { id: string }).id);

  test('print only the matching events, listed and followed; a misspelt class is refused', async () => {
    const c = await start(`sqlite:${join(dir, `t${++n}`, 'trail.db')}`);
    const events = new SampleStream({ sessionLength: 5 }).take(40);
    await post(c.port, events);
    const ddl = events.filter((e) => e.event.statement?.class === 'ddl').map((e) => e.event.id);
    expect(ddl.length).toBeGreaterThan(2);

    const listed = await printed(c.port, [
      '--class',
      'ddl',
      '--status',
      'ok',
      '--text',
      'billing.ledger',
      '--format',
      'json',
    ]);
    expect(idsOf(listed)).toEqual(ddl);
    expect(await printed(c.port, ['--text', 'Billing.Ledger'])).toBe('no events match\n');
    const followed = await printed(c.port, [
      '--follow',
      '--since',
      '2026-01-01T00:00:00Z',
      '--class',
      'ddl',
      '--limit',
      '2',
      '--format',
      'json',
    ]);
    expect(idsOf(followed)).toEqual(ddl.slice(0, 2));
    expect(() => parseCommand(COMMANDS.find((x) => x.name === 'trail')!, ['--class', 'select'])).toThrow(UsageError);
  });
});
