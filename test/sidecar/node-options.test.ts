/**
 * The injected sidecar runs with the operator's NODE_OPTIONS (DEFAULT_SIDECAR_NODE_OPTIONS unless a
 * platform team sets --sidecar-node-options). Node refuses to start at all on an option it does
 * not allow in NODE_OPTIONS, which would crash-loop every agent pod: so the compiled sidecar must
 * start and serve with the default, and every option the operator accepts must be one Node takes.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { checkNodeOptions, DEFAULT_SIDECAR_NODE_OPTIONS } from '../../operator/src/injection/sidecar-settings.js';
import { AUTH_USERS, freePort, startPostgres, TEST_PASSWORD, type TestPostgres } from '../harness/postgres.js';

const cli = join(resolve(import.meta.dirname, '../..'), 'cli/bin/byline.mjs');
let db: TestPostgres;
let dir: string;

beforeAll(async () => {
  db = await startPostgres();
  dir = mkdtempSync(join(tmpdir(), 'byline-node-options-'));
});

afterAll(async () => {
  await db?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('every option --sidecar-node-options accepts is one Node takes in NODE_OPTIONS', () => {
  for (const option of [DEFAULT_SIDECAR_NODE_OPTIONS, '--max-semi-space-size=2 --max-old-space-size=64']) {
    expect(checkNodeOptions(option)).toEqual({ nodeOptions: option });
    const out = execFileSync(process.execPath, ['-e', 'process.stdout.write("ok")'], {
      env: { ...process.env, NODE_OPTIONS: option },
    });
    expect(out.toString(), option).toBe('ok');
  }
  // What Node refuses there (its GC flag below), the operator refuses too, before any pod gets it.
  expect(() =>
    execFileSync(process.execPath, ['-e', '0'], {
      env: { ...process.env, NODE_OPTIONS: '--single-threaded-gc' },
      stdio: 'pipe',
    }),
  ).toThrow(/not allowed in NODE_OPTIONS/);
  expect(checkNodeOptions('--single-threaded-gc')).toHaveProperty('problem');
  expect(checkNodeOptions('--min-semi-space-size=1')).toHaveProperty('problem');
});

test('the compiled sidecar starts with the default NODE_OPTIONS and records what it forwards', async () => {
  const port = await freePort();
  const metricsPort = await freePort();
  const audit = join(dir, 'audit.jsonl');
  writeFileSync(join(dir, 'password'), TEST_PASSWORD, { mode: 0o600 });
  writeFileSync(
    join(dir, 'byline.yaml'),
    [
      'identity: { static: { name: node-options-agent, kind: agent } }',
      'routes:',
      '  - name: db',
      `    listen: 127.0.0.1:${port}`,
      `    upstream: { host: 127.0.0.1, port: ${db.port}, database: postgres, sslMode: disable }`,
      `    credentials: { mode: inject, username: ${AUTH_USERS.scram}, passwordFile: ${join(dir, 'password')} }`,
      `audit: { spoolDir: ${join(dir, 'spool')}, durability: batch, sinks: [ { file: ${audit} } ] }`,
      `metrics: { listen: 127.0.0.1:${metricsPort} }`,
      '',
    ].join('\n'),
  );
  const child = spawn(process.execPath, [cli, 'sidecar', '--config', join(dir, 'byline.yaml')], {
    env: { ...process.env, NODE_OPTIONS: DEFAULT_SIDECAR_NODE_OPTIONS },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  try {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const ready = await fetch(`http://127.0.0.1:${metricsPort}/readyz`).then(
        (r) => r.status === 200,
        () => false,
      );
      if (ready) break;
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`sidecar not ready:\n${output}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const client = new pg.Client({ host: '127.0.0.1', port, user: AUTH_USERS.scram, database: 'postgres' });
    await client.connect();
    try {
      const res = await client.query('select $1::int + 1 as n', [41]);
      expect(res.rows).toEqual([{ n: 42 }]);
    } finally {
      await client.end();
    }
  } finally {
    child.kill('SIGTERM');
  }
  expect(await exited, output).toBe(0);
  const texts = readFileSync(audit, 'utf8')
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l).statement?.text);
  expect(texts).toContain('select $1::int + 1 as n');
});
