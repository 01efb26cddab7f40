/**
 * What the spool and the shipper do when things go wrong, with real processes (the `byline` CLI
 * as collector and sidecar), a real Postgres and a real client: a corrupted spool segment, a
 * statement larger than the collector's batch limit, an event the collector refuses for good,
 * an identity changed while the spool holds events, and a SIGTERM while the collector is away.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AuditEvent, ChainWriter, type UnchainedEvent } from '@byline/api';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { decodeRecords, encodeRecord, RecordType } from '../../sidecar/src/spool/record-codec.js';
import { children, Service, sleep, storedEvents, waitFor } from '../harness/byline-process.js';
import { AUTH_USERS, freePort, startPostgres, TEST_PASSWORD, type TestPostgres } from '../harness/postgres.js';

const READER = 'reader-secret-0123456789';
const WRITER = 'writer-secret-0123456789';

let db: TestPostgres;
let dir: string;

beforeAll(async () => {
  db = await startPostgres();
  dir = mkdtempSync(join(tmpdir(), 'byline-spool-integrity-'));
});

afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  await db?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface Setup {
  root: string;
  spoolDir: string;
  collector: Service;
  sidecar: Service;
  url: string;
  metricsPort: number;
  /** Rewrites both configs for another identity name (the collector's token then writes only for it). */
  rename(identity: string): void;
}

async function setUp(name: string, options: { drainSeconds?: number } = {}): Promise<Setup> {
  const root = join(dir, name);
  mkdirSync(root, { recursive: true });
  const [collectorPort, sidecarPort, metricsPort] = [await freePort(), await freePort(), await freePort()];
  const files = { reader: join(root, 'reader.token'), writer: join(root, 'writer.token'), pw: join(root, 'pw') };
  writeFileSync(files.reader, `${READER}\n`);
  writeFileSync(files.writer, `${WRITER}\n`);
  writeFileSync(files.pw, TEST_PASSWORD);
  const spoolDir = join(root, 'spool');
  const url = `http://127.0.0.1:${collectorPort}`;
  const write = (identity: string) => {
    writeFileSync(
      join(root, 'collector.yaml'),
      [
        `listen: 127.0.0.1:${collectorPort}`,
        `store: sqlite:${join(root, 'trail.db')}`,
        'auth:',
        '  static:',
        `    - { tokenFile: ${files.writer}, identity: ${identity} }`,
        `    - { tokenFile: ${files.reader}, reader: true }`,
        'log: { level: warn }',
      ].join('\n'),
    );
    writeFileSync(
      join(root, 'sidecar.yaml'),
      [
        `identity: { static: { name: ${identity}, kind: agent } }`,
        'routes:',
        '  - name: spool-db',
        `    listen: 127.0.0.1:${sidecarPort}`,
        `    upstream: { host: 127.0.0.1, port: ${db.port}, database: postgres, sslMode: disable }`,
        `    credentials: { mode: inject, username: ${AUTH_USERS.scram}, passwordFile: ${files.pw}, acceptAnyUser: true }`,
        'audit:',
        '  params: full',
        `  spoolDir: ${spoolDir}`,
        ...(options.drainSeconds !== undefined ? [`  drainSeconds: ${options.drainSeconds}`] : []),
        `  sinks: [ { collector: { url: '${url}', tokenFile: ${files.writer} } } ]`,
        `metrics: { listen: 127.0.0.1:${metricsPort} }`,
        'log: { level: info }',
      ].join('\n'),
    );
  };
  write('spool-agent');
  return {
    root,
    spoolDir,
    collector: new Service(['collector', '--config', join(root, 'collector.yaml')], collectorPort),
    sidecar: new Service(['sidecar', '--config', join(root, 'sidecar.yaml')], sidecarPort),
    url,
    metricsPort,
    rename: write,
  };
}

async function run(port: number, statements: string[], applicationName = 'spool-test'): Promise<void> {
  const client = new pg.Client({
    host: '127.0.0.1',
    port,
    user: AUTH_USERS.scram,
    database: 'postgres',
    application_name: applicationName,
  });
  await client.connect();
  try {
    for (const s of statements) await client.query(s);
  } finally {
    await client.end();
  }
}

const stored = (s: Setup) => storedEvents(s.url, READER);
const texts = (events: AuditEvent[]) => events.filter((e) => e.type === 'statement').map((e) => e.statement!.text);

function segments(spoolDir: string): string[] {
  return readdirSync(spoolDir)
    .filter((f) => f.startsWith('segment-'))
    .sort();
}

/** A metric's value, summed over its labels (0 when it has no samples yet). */
async function metric(port: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const lines = text.split('\n').filter((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return lines.reduce((sum, l) => sum + Number(l.split(' ').at(-1)), 0);
}

/** Waits (up to 5 s) until the metric reads `value`, and returns what it read last. */
async function metricReaches(port: number, name: string, value: number): Promise<number> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const now = await metric(port, name);
    if (now === value || Date.now() > deadline) return now;
    await sleep(100);
  }
}

describe('spool and shipper under faults', () => {
  test('a corrupted byte in the middle of a segment costs one record: the rest ships, the gap is a spool.damaged event', async () => {
    const s = await setUp('corrupt');
    await s.sidecar.start(); // the collector is away: everything stays in the spool
    await run(
      s.sidecar.port,
      Array.from({ length: 20 }, (_, i) => `select ${i + 1} as n`),
    );
    expect(await s.sidecar.kill('SIGKILL')).toBeNull();
    // Flip one byte in the middle of the events record holding `select 8 as n`.
    const segment = segments(s.spoolDir)[0]!;
    const path = join(s.spoolDir, segment);
    const buf = readFileSync(path);
    const victim = decodeRecords(buf).records.find(
      (r) => r.type === RecordType.events && r.payload.includes('"text":"select 8 as n"'),
    )!;
    buf[(victim.start + victim.end) >> 1]! ^= 0x10;
    writeFileSync(path, buf);

    await s.collector.start();
    await s.sidecar.start();
    await run(s.sidecar.port, ['select 21 as n']);
    const events = await waitFor('the statement after the damage', async () => {
      const e = await stored(s);
      return texts(e).includes('select 21 as n') && e.some((x) => x.type === 'spool.damaged') ? e : undefined;
    });
    const shipped = texts(events);
    for (let i = 1; i <= 21; i++) expect(shipped, `select ${i}`).toContain(`select ${i} as n`);
    // The lost record held the finished event; the statement's begin record survived, so it is
    // still in the trail, honestly with an unknown result.
    const eighth = events.filter((e) => e.statement?.text === 'select 8 as n');
    expect(eighth.map((e) => e.result!.status)).toEqual(['unknown']);
    const damaged = events.filter((e) => e.type === 'spool.damaged');
    expect(damaged).toHaveLength(1);
    const incident = damaged[0]!.incident as Extract<AuditEvent['incident'], { kind: 'spool.damaged' }>;
    expect(incident).toMatchObject({ kind: 'spool.damaged', segment, start: victim.start, end: victim.end });
    // The gap is exactly the lost event's chain position, named by its neighbours.
    const lostSeq = incident.seqAfter! + 1;
    expect(incident.seqBefore).toBe(lostSeq + 1);
    expect(events.some((e) => e.chain.seq === lostSeq && e.chain.stream === damaged[0]!.chain.stream)).toBe(false);
    expect(damaged[0]!.chain.stream).toBe(events.find((e) => e.type === 'statement')!.chain.stream);
    expect(readFileSync(incident.quarantine!)).toEqual(buf);
    expect(s.sidecar.output).toContain(`spool segment ${segment} is damaged at bytes ${victim.start}-${victim.end}`);

    // A restart does not report the same damage twice.
    await s.sidecar.kill('SIGTERM');
    await s.sidecar.start();
    await run(s.sidecar.port, ['select 22 as n']);
    const after = await waitFor('select 22', async () => {
      const e = await stored(s);
      return texts(e).includes('select 22 as n') ? e : undefined;
    });
    expect(after.filter((e) => e.type === 'spool.damaged')).toHaveLength(1);
    await s.sidecar.kill('SIGTERM');
    await s.collector.kill('SIGTERM');
  }, 90_000);

  test('statements trickling in ship in a few batches, not a request each: the shipper lets small batches gather', async () => {
    const s = await setUp('linger');
    await s.collector.start();
    await s.sidecar.start();
    const client = new pg.Client({
      host: '127.0.0.1',
      port: s.sidecar.port,
      user: AUTH_USERS.scram,
      database: 'postgres',
    });
    await client.connect();
    // 40 statements 10 ms apart: without gathering, every one's events would be a request.
    for (let i = 1; i <= 40; i++) {
      await client.query(`select ${i} as n`);
      await sleep(10);
    }
    await client.end();
    await waitFor('every statement stored', async () => {
      const e = await stored(s);
      return texts(e).filter((t) => /^select \d+ as n$/.test(t)).length === 40 ? e : undefined;
    });
    const attempts = await metric(s.metricsPort, 'byline_ship_attempts_total');
    expect(attempts).toBeGreaterThan(0);
    expect(attempts).toBeLessThanOrEqual(15);
    await s.sidecar.kill('SIGTERM');
    await s.collector.kill('SIGTERM');
  }, 60_000);

  test('a 9 MiB Query and a 6 MiB parameter against the collector 8 MiB batch limit ship, cut with length and SHA-256, and so does what follows', async () => {
    const s = await setUp('huge');
    await s.collector.start();
    await s.sidecar.start();
    const literal = 'x'.repeat(9 * 1024 * 1024);
    const text = `select length('${literal}') as n`;
    const client = new pg.Client({
      host: '127.0.0.1',
      port: s.sidecar.port,
      user: AUTH_USERS.scram,
      database: 'postgres',
    });
    await client.connect();
    const { rows } = await client.query(text);
    expect(rows[0].n).toBe(literal.length);
    const param = 'é'.repeat(3 * 1024 * 1024);
    await client.query('select length($1) as huge_param', [param]);
    await client.query('select 2 as after_huge');
    await client.end();
    const events = await waitFor('the statement after the huge one', async () => {
      const e = await stored(s);
      return texts(e).includes('select 2 as after_huge') ? e : undefined;
    });
    const huge = events.find((e) => e.statement?.text.startsWith("select length('xxx"))!;
    expect(huge.result).toMatchObject({ status: 'ok', tag: 'SELECT 1' });
    expect(huge.statement!.truncated!.text).toEqual({
      bytes: Buffer.byteLength(text),
      sha256: createHash('sha256').update(text).digest('hex'),
    });
    expect(text.startsWith(huge.statement!.text)).toBe(true);
    const withParam = events.find((e) => e.statement?.text === 'select length($1) as huge_param')!;
    expect(withParam.statement!.truncated!.params).toEqual([
      { bytes: Buffer.byteLength(param), index: 0, sha256: createHash('sha256').update(param).digest('hex') },
    ]);
    expect(param.startsWith(withParam.statement!.params![0]!)).toBe(true);
    expect(await metric(s.metricsPort, 'byline_events_dead_lettered_total')).toBe(0);
    await s.sidecar.kill('SIGTERM');
    await s.collector.kill('SIGTERM');
  }, 90_000);

  test('an event the collector refuses for good is dead-lettered alone, with a chained marker, and shipping goes on', async () => {
    const s = await setUp('refused');
    await s.sidecar.start();
    await run(
      s.sidecar.port,
      Array.from({ length: 300 }, (_, i) => `select ${i} as before_bad`),
    );
    await s.sidecar.kill('SIGKILL');
    // An event the collector's schema refuses (as from a newer sidecar: v 2), correctly chained
    // after the last one, in the spool among hundreds of good ones.
    const segment = join(s.spoolDir, segments(s.spoolDir).at(-1)!);
    const records = decodeRecords(readFileSync(segment)).records.filter((r) => r.type === RecordType.events);
    const lastLine = records.at(-1)!.payload.split('\n').at(-1)!;
    const last = JSON.parse(lastLine) as AuditEvent;
    const { chain: _, ...rest } = last;
    const bad = new ChainWriter(last.chain.stream, last.chain.seq, last.chain.hash).append({
      ...(rest as UnchainedEvent),
      id: '01939a6e-1d2b-7c3d-8e4f-0123456789ab',
      statement: { ...last.statement!, text: 'select from the future' },
      v: 2 as 1,
    });
    writeFileSync(
      segment,
      encodeRecord(RecordType.events, `{"s":null,"q":null,"n":null,"w":${Date.now()}}\n${bad.json}`),
      {
        flag: 'a',
      },
    );

    await s.collector.start();
    await s.sidecar.start();
    await run(
      s.sidecar.port,
      Array.from({ length: 200 }, (_, i) => `select ${i} as after_bad`),
    );
    const events = await waitFor('the statements after the refused event, and its marker', async () => {
      const e = await stored(s);
      const t = texts(e);
      return t.filter((x) => x.endsWith('as after_bad')).length === 200 &&
        e.some((x) => x.type === 'spool.deadLettered')
        ? e
        : undefined;
    });
    expect(texts(events).filter((x) => x.endsWith('as before_bad'))).toHaveLength(300);
    expect(texts(events)).not.toContain('select from the future');
    const markers = events.filter((e) => e.type === 'spool.deadLettered');
    expect(markers).toHaveLength(1);
    const incident = markers[0]!.incident as Extract<AuditEvent['incident'], { kind: 'spool.deadLettered' }>;
    expect(incident).toMatchObject({
      kind: 'spool.deadLettered',
      status: 400,
      // Its type is the last spooled event's (a statement, or the session's end when the client's
      // close was spooled before the kill).
      events: [{ id: bad.event.id, seq: bad.event.chain.seq, hash: bad.event.chain.hash, type: bad.event.type }],
    });
    expect(incident.reason).toContain('v: expected 1');
    // Kept verbatim, out of the agent's reach.
    expect(readFileSync(join(s.spoolDir, 'dead-letter', incident.file), 'utf8')).toBe(`${bad.json}\n`);
    expect(markers[0]!.chain.seq).toBeGreaterThan(bad.event.chain.seq);
    expect(await metric(s.metricsPort, 'byline_events_dead_lettered_total')).toBe(1);
    expect(s.sidecar.output).toContain('the collector refused an event for good');
    await s.sidecar.kill('SIGTERM');
    await s.collector.kill('SIGTERM');
  }, 90_000);

  test('an identity renamed while the spool holds events: they are dead-lettered with markers under the new one, and shipping goes on', async () => {
    const s = await setUp('identity', { drainSeconds: 0 });
    await s.sidecar.start();
    await run(s.sidecar.port, ['select 1 as old_identity', 'select 2 as old_identity']);
    await s.sidecar.kill('SIGTERM');
    s.rename('renamed-agent');
    await s.collector.start();
    await s.sidecar.start();
    await run(s.sidecar.port, ['select 3 as new_identity']);
    const events = await waitFor('the new identity’s statement and the markers', async () => {
      const e = await stored(s);
      return texts(e).includes('select 3 as new_identity') &&
        e.filter((x) => x.type === 'spool.deadLettered').length >= 4
        ? e
        : undefined;
    });
    expect(events.every((e) => e.identity.name === 'renamed-agent')).toBe(true);
    const markers = events.filter((e) => e.type === 'spool.deadLettered');
    // session.start, two statements, session.end under the old name.
    expect(markers).toHaveLength(4);
    for (const m of markers) expect(m.incident).toMatchObject({ status: 403, kind: 'spool.deadLettered' });
    const deadFiles = readdirSync(join(s.spoolDir, 'dead-letter')).filter((f) => f.endsWith('.ndjson'));
    const dead = deadFiles.map(
      (f) => JSON.parse(readFileSync(join(s.spoolDir, 'dead-letter', f), 'utf8')) as AuditEvent,
    );
    expect(dead.map((e) => e.identity.name)).toEqual(['spool-agent', 'spool-agent', 'spool-agent', 'spool-agent']);
    expect(texts(dead).sort()).toEqual(['select 1 as old_identity', 'select 2 as old_identity']);
    await s.sidecar.kill('SIGTERM');
    await s.collector.kill('SIGTERM');
  }, 90_000);

  test('SIGTERM while the collector is away: the sidecar keeps shipping through the grace period', async () => {
    const s = await setUp('sigterm-ships', { drainSeconds: 20 });
    await s.sidecar.start();
    await run(s.sidecar.port, ['select 1 as before_sigterm', 'select 2 as before_sigterm']);
    expect(await metricReaches(s.metricsPort, 'byline_spool_unshipped_events', 4)).toBe(4);
    const exited = s.sidecar.kill('SIGTERM');
    await sleep(3500); // longer than the old fixed 2 s drain
    await s.collector.start();
    expect(await exited).toBe(0);
    expect(texts(await stored(s)).sort()).toEqual(['select 1 as before_sigterm', 'select 2 as before_sigterm']);
    expect(s.sidecar.output).toContain('shutting down: every event is shipped');
    await s.collector.kill('SIGTERM');
  }, 90_000);

  test('SIGTERM with the collector gone for good: says loudly how many events are left and where', async () => {
    const s = await setUp('sigterm-left', { drainSeconds: 2 });
    await s.sidecar.start();
    await run(s.sidecar.port, ['select 1 as stranded']);
    expect(await metricReaches(s.metricsPort, 'byline_spool_unshipped_events', 3)).toBe(3);
    expect(await metric(s.metricsPort, 'byline_spool_oldest_unshipped_seconds')).toBeGreaterThanOrEqual(0);
    const started = Date.now();
    expect(await s.sidecar.kill('SIGTERM')).toBe(0);
    expect(Date.now() - started).toBeGreaterThanOrEqual(2000);
    expect(s.sidecar.output).toContain(
      `shutting down with 3 events not shipped; they stay in ${s.spoolDir} and ship when a sidecar starts on it again`,
    );
    // They did stay: the next start ships them.
    await s.collector.start();
    await s.sidecar.start();
    await waitFor('the stranded statement', async () =>
      texts(await stored(s)).includes('select 1 as stranded') ? true : undefined,
    );
    await s.sidecar.kill('SIGTERM');
    await s.collector.kill('SIGTERM');
  }, 60_000);
});
