/**
 * Fault injection under load, with real processes: the sidecar and the collector run as the
 * `byline` CLI in child processes and are killed with SIGKILL at arbitrary points while clients
 * keep working; the collector is also away for a while. Afterwards every statement Postgres's own
 * log says it executed must have exactly one stored event — none lost, none duplicated — and the
 * only events Postgres has no log line for are ones whose result is honestly `unknown`.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AuditEvent } from '@byline/api';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { children, Service, sleep, storedEvents } from '../harness/byline-process.js';
import { reconcile, waitForLog } from '../harness/log-match.js';
import { AUTH_USERS, freePort, startPostgres, TEST_PASSWORD, type TestPostgres } from '../harness/postgres.js';

const IDENTITY = 'fault-agent';

let db: TestPostgres;
let dir: string;

beforeAll(async () => {
  db = await startPostgres({ logStatements: true });
  const c = db.client();
  await c.connect();
  await c.query('create table ledger (worker int, n int, note text)');
  await c.end();
  dir = mkdtempSync(join(tmpdir(), 'byline-faults-'));
});

afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  await db?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function setUp(name: string, spool: { maxSpoolBytes?: number; segmentBytes?: number } = {}) {
  const root = join(dir, name);
  const collectorPort = await freePort();
  const sidecarPort = await freePort();
  const reader = join(root, 'reader.token');
  const writer = join(root, 'writer.token');
  const password = join(root, 'password');
  rmSync(root, { recursive: true, force: true });
  mkdirSync(root, { recursive: true });
  for (const [f, t] of [
    [reader, 'reader-secret-0123456789'],
    [writer, 'writer-secret-0123456789'],
    [password, TEST_PASSWORD],
  ] as const) {
    writeFileSync(f, `${t}\n`);
  }
  writeFileSync(
    join(root, 'collector.yaml'),
    [
      `listen: 127.0.0.1:${collectorPort}`,
      `store: sqlite:${join(root, 'trail.db')}`,
      'auth:',
      '  static:',
      `    - { tokenFile: ${writer}, identity: ${IDENTITY} }`,
      `    - { tokenFile: ${reader}, reader: true }`,
      'log: { level: warn }',
    ].join('\n'),
  );
  writeFileSync(
    join(root, 'sidecar.yaml'),
    [
      `identity: { static: { name: ${IDENTITY}, kind: agent } }`,
      'routes:',
      '  - name: faults',
      `    listen: 127.0.0.1:${sidecarPort}`,
      `    upstream: { host: 127.0.0.1, port: ${db.port}, database: postgres, sslMode: disable }`,
      `    credentials: { mode: inject, username: ${AUTH_USERS.scram}, passwordFile: ${password}, acceptAnyUser: true }`,
      'audit:',
      '  params: full',
      `  spoolDir: ${join(root, 'spool')}`,
      ...(spool.maxSpoolBytes ? [`  maxSpoolBytes: ${spool.maxSpoolBytes}`] : []),
      ...(spool.segmentBytes ? [`  segmentBytes: ${spool.segmentBytes}`] : []),
      `  sinks: [ { collector: { url: 'http://127.0.0.1:${collectorPort}', tokenFile: ${writer} } } ]`,
      'log: { level: warn }',
    ].join('\n'),
  );
  return {
    collector: new Service(['collector', '--config', join(root, 'collector.yaml')], collectorPort),
    sidecar: new Service(['sidecar', '--config', join(root, 'sidecar.yaml')], sidecarPort),
    collectorUrl: `http://127.0.0.1:${collectorPort}`,
    readerToken: 'reader-secret-0123456789',
  };
}

/** Clients that keep going through the sidecar, reconnecting whenever it goes away. */
function load(port: number, workers: number, stop: { now: boolean }) {
  const done: Promise<number>[] = [];
  for (let w = 1; w <= workers; w++) {
    done.push(
      (async () => {
        let n = 0;
        while (!stop.now) {
          const client = new pg.Client({
            host: '127.0.0.1',
            port,
            user: 'w',
            database: 'postgres',
            application_name: `fault-${w}`,
          });
          client.on('error', () => {});
          try {
            await client.connect();
            while (!stop.now) {
              await sleep(4); // an agent thinks between statements; keeps the trail to a few thousand
              n++;
              if (n % 3 === 0) await client.query(`insert into ledger values (${w}, ${n}, 'simple')`);
              else await client.query('insert into ledger values ($1, $2, $3)', [w, n, 'extended']);
            }
            await client.end();
          } catch {
            await client.end().catch(() => {});
            await sleep(30);
          }
        }
        return n;
      })(),
    );
  }
  return Promise.all(done);
}

describe('fault injection under load', () => {
  test('kill -9 of sidecar and collector, and a collector outage: 0 lost, 0 duplicated', async () => {
    const { collector, sidecar, collectorUrl, readerToken } = await setUp('kills');
    await collector.start();
    await sidecar.start();
    const stop = { now: false };
    const running = load(sidecar.port, 3, stop);
    const kills = { sidecar: 0, collector: 0 };
    const killSidecar = async () => {
      await sidecar.kill();
      kills.sidecar++;
      await sidecar.start();
    };
    const killCollector = async () => {
      await collector.kill();
      kills.collector++;
      await sleep(500);
      await collector.start();
    };
    const collectorAway = async () => {
      await collector.kill('SIGTERM');
      await sleep(1500);
      await collector.start();
    };
    const chaos: [number, () => Promise<void>][] = [
      [1200, killSidecar],
      [900, killCollector],
      [900, killSidecar],
      [500, collectorAway],
      [700, killSidecar],
      [700, async () => {}],
    ];
    for (const [wait, act] of chaos) {
      await sleep(wait + Math.floor(Math.random() * 300));
      await act();
    }
    stop.now = true;
    await running;
    // A clean stop ships what is left; the trail then holds everything.
    await sidecar.kill('SIGTERM');
    await sidecar.start();
    const log = (await waitForLog(db)).filter((e) => e.user === AUTH_USERS.scram);
    let events: AuditEvent[] = [];
    const deadline = Date.now() + 30_000;
    for (;;) {
      events = await storedEvents(collectorUrl, readerToken);
      const statements = events.filter((e) => e.type === 'statement');
      const r = reconcile(log, statements);
      if (r.missing.length === 0 || Date.now() > deadline) break;
      await sleep(500);
    }
    await sidecar.kill('SIGTERM');
    await collector.kill('SIGTERM');

    const statements = events.filter((e) => e.type === 'statement');
    const r = reconcile(log, statements);
    const unknown = statements.filter((e) => e.result?.status === 'unknown');
    console.log(
      `fault injection: ${kills.sidecar} sidecar kills, ${kills.collector} collector kills; ` +
        `Postgres executed ${r.statements} statements; events stored ${statements.length}; ` +
        `lost ${r.missing.length}, duplicated ${r.duplicated.length}, unknown results ${unknown.length}`,
    );
    expect(r.statements).toBeGreaterThan(100);
    expect(r.missing).toEqual([]);
    expect(r.duplicated).toEqual([]);
    // Events Postgres has no line for: only statements the sidecar forwarded but never saw
    // answered (killed in between), or ones Postgres refused before executing.
    expect(r.extra.filter((e) => e.result?.status !== 'unknown')).toEqual([]);
    expect(new Set(events.map((e) => e.id)).size).toBe(events.length);
    const positions = new Set(events.map((e) => `${e.session.id}/${e.session.seq}`));
    expect(positions.size).toBe(events.length);
    expect(events.every((e) => e.identity.name === IDENTITY)).toBe(true);
    // Every statement ran under the route's one decision, those recovered from a begin record
    // after a kill (its decision record resolved in its segment) as much as the others.
    expect(new Set(statements.map((e) => JSON.stringify(e.authz)))).toEqual(
      new Set([JSON.stringify({ approval: null, decision: 'allow', rule: statements[0]!.authz!.rule })]),
    );
    // Every session that was open when the sidecar died was closed by the restart.
    const started = new Set(events.filter((e) => e.type === 'session.start').map((e) => e.session.id));
    const ended = new Set(events.filter((e) => e.type === 'session.end').map((e) => e.session.id));
    expect([...started].filter((s) => !ended.has(s))).toEqual([]);
  }, 120_000);

  test('a spool cap small enough to fill: statements are refused with a clear error, then served again', async () => {
    const { collector, sidecar, collectorUrl, readerToken } = await setUp('full', {
      maxSpoolBytes: 65_536,
      segmentBytes: 4096,
    });
    await sidecar.start(); // the collector is down: nothing can be shipped
    const client = new pg.Client({
      host: '127.0.0.1',
      port: sidecar.port,
      user: 'w',
      database: 'postgres',
      application_name: 'fill',
    });
    await client.connect();
    let refused: Error | null = null;
    let ran = 0;
    for (let i = 0; i < 5000 && !refused; i++) {
      try {
        await client.query(`insert into ledger values (99, ${i}, '${'x'.repeat(200)}')`);
        ran++;
      } catch (e) {
        refused = e as Error;
      }
    }
    expect(refused?.message).toMatch(/^byline: statement refused: the audit spool is full/);
    expect((refused as Error & { code?: string }).code).toBe('53400');
    // The session is still usable once the collector drains the backlog.
    await collector.start();
    const deadline = Date.now() + 30_000;
    let again: Error | null = null;
    for (;;) {
      try {
        await client.query(`insert into ledger values (99, -1, 'after')`);
        again = null;
        break;
      } catch (e) {
        again = e as Error;
        if (Date.now() > deadline) break;
        await sleep(200);
      }
    }
    expect(again).toBeNull();
    await client.end();
    // Every statement that ran is recorded; the refused ones never reached Postgres.
    const log = (await waitForLog(db)).filter((e) => e.applicationName === 'fill' && e.user === AUTH_USERS.scram);
    expect(log.length).toBe(ran + 1);
    const recorded = async () =>
      (await storedEvents(collectorUrl, readerToken, { identity: IDENTITY })).filter(
        (e) => e.type === 'statement' && e.session.applicationName === 'fill' && e.result?.status === 'ok',
      ).length;
    const shipped = Date.now() + 15_000;
    while ((await recorded()) < ran + 1 && Date.now() < shipped) await sleep(200);
    expect(await recorded()).toBe(ran + 1);
    await sidecar.kill('SIGTERM');
    await collector.kill('SIGTERM');
  }, 120_000);
});
