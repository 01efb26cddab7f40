/**
 * What a sidecar hears when verification off the event loop cannot take its batch: a collector
 * (real SQLite store, real HTTP) whose verification workers crash, or are all busy with a full
 * waiting line. Nothing is stored either way; the refused batch is taken once verification works.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import {
  ndjson,
  type RunningCollector,
  SampleStream,
  startCollector,
  startVerifyWorker,
  type VerifyPoolOptions,
} from '@byline/collector';
import pino from 'pino';
import { afterEach, describe, expect, test } from 'vitest';
import { call } from './http.js';

const WRITER = 'verify-writer-token-0123456789';
const READER = 'verify-reader-token-0123456789';
const dirs: string[] = [];
const running: RunningCollector[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((c) => c.close()));
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function collectorWith(verifyPool: VerifyPoolOptions): Promise<RunningCollector> {
  const dir = mkdtempSync(join(tmpdir(), 'byline-verify-pool-'));
  dirs.push(dir);
  const c = await startCollector(
    {
      listen: '127.0.0.1:0',
      store: `sqlite:${join(dir, 'trail.db')}`,
      auth: {
        static: [
          { token: WRITER, identity: 'billing-agent' },
          { token: READER, reader: true },
        ],
      },
    },
    { logger: pino({ level: 'silent' }), verifyPool },
  );
  running.push(c);
  return c;
}

const evalWorker = (onMessage: string) =>
  new Worker(
    `const { parentPort } = require('node:worker_threads'); parentPort.postMessage({ ready: true }); parentPort.on('message', (m) => { ${onMessage} });`,
    { eval: true },
  );

async function stored(c: RunningCollector): Promise<number> {
  const page = await call(c.port, 'GET', '/v1/events', { token: READER });
  expect(page.status).toBe(200);
  return page.json.events.length;
}

describe('ingest through the verification pool', () => {
  test('a worker that crashes mid-batch: 500 naming it, nothing stored; the retry is verified and stored', async () => {
    let started = 0;
    const c = await collectorWith({
      size: 1,
      start: () => (++started === 1 ? evalWorker('process.exit(9)') : startVerifyWorker()),
    });
    const body = ndjson(new SampleStream({ identity: 'billing-agent' }).take(3));
    const crashed = await call(c.port, 'POST', '/v1/events', { token: WRITER, body });
    expect(crashed.status).toBe(500);
    expect(crashed.json).toEqual({
      error:
        'batch refused, nothing stored: the collector could not verify it (the verification worker exited with code 9); retry later',
      reason: 'verify-failed',
    });
    expect(await stored(c)).toBe(0);
    const retried = await call(c.port, 'POST', '/v1/events', { token: WRITER, body });
    expect(retried.json).toEqual({ accepted: 3, duplicates: 0 });
    expect(await stored(c)).toBe(3);
    expect(started).toBe(2);
    const metrics = await call(c.port, 'GET', '/metrics');
    expect(metrics.text).toMatch(/byline_collector_batches_total\{outcome="verify-failed"\} 1/);
  });

  test('all workers busy and the waiting line full: 503 with Retry-After, nothing stored', {
    timeout: 15_000,
  }, async () => {
    const c = await collectorWith({ size: 1, maxWaiting: 0, start: () => evalWorker('/* hangs */') });
    const body = ndjson(new SampleStream({ identity: 'billing-agent' }).take(2));
    const held = call(c.port, 'POST', '/v1/events', { token: WRITER, body });
    // The first batch reaches the (hanging) worker before the second is read.
    await new Promise((r) => setTimeout(r, 200));
    const busy = await call(c.port, 'POST', '/v1/events', { token: WRITER, body });
    expect(busy.status).toBe(503);
    expect(busy.headers['retry-after']).toBe('1');
    expect(busy.json).toEqual({
      error:
        'the collector is busy verifying other batches (all 1 verification worker(s) are busy and 0 batch(es) are waiting); nothing was stored, retry later',
      reason: 'busy',
    });
    expect(await stored(c)).toBe(0);
    const metrics = await call(c.port, 'GET', '/metrics');
    expect(metrics.text).toMatch(/byline_collector_batches_total\{outcome="busy"\} 1/);
    // Shutting down (after its few seconds of grace) drops the batch the hanging worker held: never stored unverified.
    running.splice(running.indexOf(c), 1);
    const closing = c.close();
    const answer = await held.then(
      (r) => r.status,
      (e: Error) => e.message,
    );
    expect(answer).toBe('socket hang up');
    await closing;
  });
});
