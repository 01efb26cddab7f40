/**
 * `node cli/bin/byline.mjs collector --config FILE` run as an operator runs it, in a child process,
 * here with a real PostgreSQL store: it starts, takes and serves events, and exits 0 on SIGTERM. A
 * config with a mistake exits 2 naming the field, before anything starts.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { canonicalJson } from '@byline/api';
import { ndjson, SampleStream } from '@byline/collector';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { freePort, startPostgres, type TestPostgres } from '../harness/postgres.js';
import { call } from './http.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = join(ROOT, 'cli/bin/byline.mjs');
const WRITER = 'cli-writer-token-0123456789';
const READER = 'cli-reader-token-0123456789';

let db: TestPostgres;
let dir: string;

beforeAll(async () => {
  db = await startPostgres();
  dir = mkdtempSync(join(tmpdir(), 'byline-collector-cli-'));
  writeFileSync(join(dir, 'reader.token'), `${READER}\n`);
});

afterAll(async () => {
  await db?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function spawnCli(args: string[]): { child: ChildProcess; exited: Promise<Exit> } {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let stdout = '';
  child.stdout!.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<Exit>((r) => child.once('close', (code, signal) => r({ code, signal, stdout, stderr })));
  return { child, exited };
}

async function runCli(args: string[]): Promise<Exit> {
  const { child, exited } = spawnCli(args);
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  try {
    return await exited;
  } finally {
    clearTimeout(timer);
  }
}

function configFile(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

async function waitReady(port: number, exited: Promise<Exit>): Promise<void> {
  let done: Exit | undefined;
  void exited.then((e) => {
    done = e;
  });
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (done) throw new Error(`the collector exited with ${done.code} before serving:\n${done.stderr}`);
    const ok = await call(port, 'GET', '/readyz').then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the collector was not ready within 20 s');
}

describe('byline collector', () => {
  test('starts on a PostgreSQL store, takes and serves events, exits 0 on SIGTERM', async () => {
    const port = await freePort();
    const config = configFile(
      'collector.yaml',
      `# a collector config as an operator writes it
listen: 127.0.0.1:${port}
store: ${db.url()}
auth:
  static:
    - { token: "${WRITER}", identity: billing-agent }
    - { tokenFile: ${join(dir, 'reader.token')}, reader: true }
limits: { maxBatchBytes: 1048576, maxBatchEvents: 500 }
log: { level: warn }
`,
    );
    const { child, exited } = spawnCli(['collector', '--config', config]);
    try {
      await waitReady(port, exited);
      const events = new SampleStream({ identity: 'billing-agent' }).take(25);
      const posted = await call(port, 'POST', '/v1/events', { token: WRITER, body: ndjson(events) });
      expect(posted.json).toEqual({ accepted: 25, duplicates: 0 });
      const page = await call(port, 'GET', '/v1/events?table=customers', { token: READER });
      expect(page.status).toBe(200);
      const want = events.filter((e) => e.event.statement?.tables?.includes('customers')).map((e) => e.json);
      expect(page.json.events.map((e: { event: unknown }) => canonicalJson(e.event))).toEqual(want);
      expect((await call(port, 'GET', '/v1/streams', { token: READER })).json.streams).toHaveLength(1);
    } finally {
      child.kill('SIGTERM');
    }
    const exit = await exited;
    // The shutdown is logged like the start (info, on stdout: this config logs warn and up); stderr is for errors.
    expect(exit.stderr).toBe('');
    expect(exit.code).toBe(0);
  });

  test.each<[string, string, RegExp]>([
    [
      'an unknown field',
      `listen: 127.0.0.1:1\nstore: sqlite:/tmp/x.db\nauth: { static: [ { token: "${WRITER}", identity: a } ] }\nlimits: { maxBatchBites: 10 }\n`,
      /limits\.maxBatchBites: unknown field \(did you mean "maxBatchBytes"\?\)/,
    ],
    [
      'a store that is neither sqlite nor postgres',
      `listen: 127.0.0.1:1\nstore: mysql://x\nauth: { static: [ { token: "${WRITER}", identity: a } ] }\n`,
      /store: expected sqlite:PATH or postgres:\/\/user:password@host:5432\/database, got "mysql:\/\/x"/,
    ],
    [
      'a listen address without a port',
      `listen: localhost\nstore: sqlite:/tmp/x.db\nauth: { static: [ { token: "${WRITER}", identity: a } ] }\n`,
      /listen: expected host:port with a port from 0 to 65535, got "localhost"/,
    ],
    [
      'both token and tokenFile',
      `listen: 127.0.0.1:1\nstore: sqlite:/tmp/x.db\nauth: { static: [ { token: "${WRITER}", tokenFile: /etc/hostname, reader: true } ] }\n`,
      /auth\.static\[0\]: give exactly one of "token" and "tokenFile"/,
    ],
    [
      'neither identity nor reader',
      `listen: 127.0.0.1:1\nstore: sqlite:/tmp/x.db\nauth: { static: [ { token: "${WRITER}" } ] }\n`,
      /auth\.static\[0\]: give exactly one of "identity" \(a writer\) and "reader: true"/,
    ],
    [
      'a token file that cannot be read',
      `listen: 127.0.0.1:1\nstore: sqlite:/tmp/x.db\nauth: { static: [ { tokenFile: /nonexistent/token, reader: true } ] }\n`,
      /auth\.static\[0\]\.tokenFile: cannot read \/nonexistent\/token/,
    ],
    [
      'a short token',
      `listen: 127.0.0.1:1\nstore: sqlite:/tmp/x.db\nauth: { static: [ { token: "short", reader: true } ] }\n`,
      /auth\.static\[0\]\.token: shorter than 16 characters\n$/,
    ],
    [
      'the same token twice',
      `listen: 127.0.0.1:1\nstore: sqlite:/tmp/x.db\nauth: { static: [ { token: "${WRITER}", reader: true }, { token: "${WRITER}", identity: a } ] }\n`,
      /auth\.static\[1\]: the same token as auth\.static\[0\]/,
    ],
  ])('a config with %s exits 2 naming the field', async (_name, yaml, message) => {
    const exit = await runCli(['collector', '--config', configFile('bad.yaml', yaml)]);
    expect(exit.code).toBe(2);
    expect(exit.stderr).toMatch(/^byline collector: invalid collector config \(.*bad\.yaml\):\n {2}- /);
    expect(exit.stderr).toMatch(message);
  });

  test('no --config exits 2; a store that cannot be reached exits 1 saying so', async () => {
    const none = await runCli(['collector']);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('--config FILE is required');
    const closedPort = await freePort();
    const unreachable = await runCli([
      'collector',
      '--config',
      configFile(
        'unreachable.yaml',
        `listen: 127.0.0.1:0\nstore: postgres://byline:secret-pw@127.0.0.1:${closedPort}/trail\nauth: { static: [ { token: "${WRITER}", reader: true } ] }\n`,
      ),
    ]);
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toContain(`cannot open the store postgres://byline:***@127.0.0.1:${closedPort}/trail`);
    expect(unreachable.stderr).not.toContain('secret-pw');
  });
});
