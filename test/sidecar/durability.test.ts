/**
 * Nothing reaches Postgres, and no result reaches the client, before the statement's begin record
 * is where the durability setting promises: strict mode holds results until the fsync of their
 * begin records (whatever the client does meanwhile), and a begin record that cannot be written
 * (a full disk, on a real tmpfs) stops the statement with 53100 instead of letting it run unrecorded.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AuditEvent, SidecarConfigSchema, validate } from '@byline/api';
import { type RunningSidecar, startSidecar } from '@byline/sidecar';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { dataRow, fields, query, startup, types, WireConnection } from '../differential/wire.js';
import { AUTH_USERS, startPostgres, TEST_PASSWORD, type TestPostgres } from '../harness/postgres.js';

let db: TestPostgres;
let dir: string;
let passwordFile: string;

beforeAll(async () => {
  db = await startPostgres();
  dir = mkdtempSync(join(tmpdir(), 'byline-durability-'));
  passwordFile = join(dir, 'pw');
  writeFileSync(passwordFile, TEST_PASSWORD);
  const admin = db.client();
  await admin.connect();
  await admin.query(`create table spool_full (id int, note text); grant all on spool_full to ${AUTH_USERS.scram}`);
  await admin.end();
});

afterAll(async () => {
  await db?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function sidecarWith(
  spoolDir: string,
  durability: 'batch' | 'strict',
  auditFile: string,
  onBacklogFull: 'reject' | 'drop' = 'reject',
): Promise<RunningSidecar> {
  const config = validate(
    SidecarConfigSchema,
    {
      identity: { static: { name: 'durability-agent', kind: 'agent' } },
      routes: [
        {
          name: 'durable',
          listen: '127.0.0.1:0',
          upstream: { host: db.host, port: db.port, database: 'postgres', sslMode: 'disable' },
          credentials: { mode: 'inject', username: AUTH_USERS.scram, passwordFile },
        },
      ],
      audit: { spoolDir, durability, onBacklogFull, sinks: [{ file: auditFile }] },
    },
    'durability test config',
  );
  return startSidecar(config, { logger: pino({ level: process.env.BYLINE_TEST_LOG ?? 'silent' }) });
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('strict durability', () => {
  test('a result waiting for its fsync is not released by anything the client sends meanwhile', async () => {
    const s = await sidecarWith(join(dir, 'strict-spool'), 'strict', join(dir, 'strict.jsonl'));
    // The fsync is made as slow as the test likes: its completion is held back until released.
    const spool = s.spool!;
    const realWhenDurable = spool.whenDurable.bind(spool);
    let holding = false;
    const held: (() => void)[] = [];
    spool.whenDurable = (then: () => void) => {
      if (holding) held.push(() => realWhenDurable(then));
      else realWhenDurable(then);
    };
    const conn = await WireConnection.open({ host: '127.0.0.1', port: s.routes[0]!.port });
    try {
      await conn.send([startup({ user: AUTH_USERS.scram, database: 'postgres' })]);
      await conn.read('Z');
      holding = true;
      await conn.send([query("select 'first'")]);
      await pause(300);
      expect(types(conn.takeQueued())).toBe('');
      // Old code: a client message (its read) flushed the client outbox, fsync or not.
      await conn.send([query("select 'second'")]);
      await pause(300);
      expect(types(conn.takeQueued())).toBe('');
      expect(held.length).toBeGreaterThan(0);
      holding = false;
      for (const release of held.splice(0)) release();
      const first = await conn.read('Z');
      const second = await conn.read('Z');
      expect(dataRow(first.find((m) => m.type === 'D')!)).toEqual(['first']);
      expect(dataRow(second.find((m) => m.type === 'D')!)).toEqual(['second']);
    } finally {
      holding = false;
      for (const release of held.splice(0)) release();
      conn.destroy();
      await s.close();
    }
  });
});

describe('strict durability with a slow client', () => {
  test('a large result arrives whole: backpressure and the fsync hold neither undo each other nor deadlock', async () => {
    const s = await sidecarWith(join(dir, 'strict-slow-spool'), 'strict', join(dir, 'strict-slow.jsonl'));
    const spool = s.spool!;
    const realWhenDurable = spool.whenDurable.bind(spool);
    let holding = false;
    const held: (() => void)[] = [];
    spool.whenDurable = (then: () => void) => {
      if (holding) held.push(() => realWhenDurable(then));
      else realWhenDurable(then);
    };
    const conn = await WireConnection.open({ host: '127.0.0.1', port: s.routes[0]!.port });
    try {
      await conn.send([startup({ user: AUTH_USERS.scram, database: 'postgres' })]);
      await conn.read('Z');
      // The client stops reading: the sidecar's writes back up and it stops reading Postgres.
      conn.socket.pause();
      await conn.send([query("select repeat('x', 2000) from generate_series(1, 10000)")]);
      await pause(500);
      // Now the fsyncs are slow too, while the client starts reading again.
      holding = true;
      conn.socket.resume();
      await pause(300);
      holding = false;
      for (const release of held.splice(0)) release();
      const answer = await conn.read('Z', 30_000);
      expect(answer.filter((m) => m.type === 'D').length).toBe(10_000);
      expect(types(answer.filter((m) => m.type !== 'D'))).toBe('TCZ');
    } finally {
      holding = false;
      for (const release of held.splice(0)) release();
      conn.destroy();
      await s.close();
    }
  });
});

// ------------------------------------------------------------------ a full disk

function mountTmpfs(path: string): void {
  mkdirSync(path, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', path], { stdio: 'pipe' });
}

/**
 * Whether a small real tmpfs can be mounted here (tried and undone at once: the tests mount it in
 * beforeAll, so a filtered run that skips them leaves nothing mounted); a loud warning when not.
 */
function canMountTmpfs(path: string): boolean {
  try {
    mountTmpfs(path);
    execFileSync('umount', [path]);
    return true;
  } catch (e) {
    console.warn(
      `\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n` +
        `!! SKIPPING the full-disk tests: cannot mount a tmpfs (${(e as Error).message.split('\n')[0]}).\n` +
        `!! They need root (CI runs them as root).\n` +
        `!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n`,
    );
    return false;
  } finally {
    try {
      rmdirSync(path);
    } catch {}
  }
}

/** Fills the file system that holds `path` to the last byte. */
function fill(path: string): void {
  try {
    writeFileSync(path, Buffer.alloc(64 * 1024 * 1024));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
  }
}

const disk = join(tmpdir(), `byline-spool-tmpfs-${process.pid}`);
const mounted = process.platform === 'linux' && canMountTmpfs(disk);

describe.skipIf(!mounted)('a spool on a full disk (real tmpfs)', () => {
  let s: RunningSidecar;
  const auditFile = () => join(dir, 'full.jsonl');
  const filler = join(disk, 'filler');
  // Larger than a page, so the begin record cannot squeeze into the segment's last partial page.
  const note = 'n'.repeat(6000);

  beforeAll(async () => {
    mountTmpfs(disk);
    s = await sidecarWith(join(disk, 'spool'), 'batch', auditFile());
  });

  afterAll(async () => {
    try {
      unlinkSync(filler);
    } catch {}
    await s?.close();
    execFileSync('umount', [disk]);
    rmSync(disk, { recursive: true, force: true });
  });

  const connect = async (name: string) => {
    const c = new pg.Client({
      host: '127.0.0.1',
      port: s.routes[0]!.port,
      user: AUTH_USERS.scram,
      database: 'postgres',
      application_name: name,
    });
    c.on('error', () => {});
    await c.connect();
    return c;
  };

  const rows = async (id: number) => {
    const admin = db.client();
    await admin.connect();
    try {
      return (await admin.query('select count(*)::int as n from spool_full where id = $1', [id])).rows[0].n as number;
    } finally {
      await admin.end();
    }
  };

  const refusedCount = async () =>
    (await s.metrics.refused.get()).values.find((v) => v.labels.reason === 'spool_write')?.value ?? 0;

  test('idle: 53100, the statement never reaches Postgres, the session stays usable, and it is counted', async () => {
    const client = await connect('full-idle');
    await client.query('select 1');
    fill(filler);
    await expect(client.query(`insert into spool_full values (1, '${note}')`)).rejects.toMatchObject({
      code: '53100',
      message: expect.stringMatching(/^byline: statement refused: .*spool.*ENOSPC/),
    });
    // While the disk stays full, the next one is refused too (the spool retries and fails again).
    await expect(client.query(`insert into spool_full values (2, '${note}')`)).rejects.toMatchObject({
      code: '53100',
    });
    expect(await rows(1)).toBe(0);
    expect(await rows(2)).toBe(0);
    expect(await refusedCount()).toBe(2);

    // Room again: the same session goes on, and what it runs now is recorded and runs.
    unlinkSync(filler);
    await client.query(`insert into spool_full values (3, 'after')`);
    expect(await rows(3)).toBe(1);
    await client.end();

    await s.flush();
    const events = readFileSync(auditFile(), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as AuditEvent)
      .filter((e) => e.type === 'statement' && e.session.applicationName === 'full-idle');
    const refused = events.find((e) => e.statement!.text.startsWith('insert into spool_full values (1,'));
    expect(refused?.result).toMatchObject({ status: 'error', sqlstate: '53100' });
    expect(
      events.find((e) => e.statement!.text === "insert into spool_full values (3, 'after')")?.result,
    ).toMatchObject({ status: 'ok', tag: 'INSERT 0 1' });
  });

  test('a statement pipelined behind the startup packet on a full disk: FATAL 53100, never run', async () => {
    fill(filler);
    const conn = await WireConnection.open({ host: '127.0.0.1', port: s.routes[0]!.port });
    try {
      // Held until the session is ready, then replayed: its begin record must be written before it goes.
      await conn.send([
        startup({ user: AUTH_USERS.scram, database: 'postgres', application_name: 'full-early' }),
        query(`insert into spool_full values (6, '${note}')`),
      ]);
      const answer = await conn.read('close', 5000);
      const error = answer.find((m) => m.type === 'E')!;
      expect(fields(error)).toMatchObject({ S: 'FATAL', C: '53100' });
    } finally {
      conn.destroy();
      unlinkSync(filler);
    }
    expect(await rows(6)).toBe(0);
  });

  test('inside a transaction: FATAL 53100, the session ends and Postgres rolls back', async () => {
    const client = await connect('full-tx');
    await client.query('begin');
    await client.query(`insert into spool_full values (4, 'in tx')`);
    fill(filler);
    const before = await refusedCount();
    await expect(client.query(`insert into spool_full values (5, '${note}')`)).rejects.toMatchObject({
      code: '53100',
      severity: 'FATAL',
    });
    unlinkSync(filler);
    expect(await refusedCount()).toBe(before + 1);
    // The transaction never committed: neither its earlier insert nor the refused one is there.
    await new Promise((r) => setTimeout(r, 200));
    expect(await rows(4)).toBe(0);
    expect(await rows(5)).toBe(0);
  });
  test('onBacklogFull: drop keeps statements running on a full disk, and counts those run unrecorded', async () => {
    const dropping = await sidecarWith(join(disk, 'drop-spool'), 'batch', join(dir, 'drop.jsonl'), 'drop');
    const client = new pg.Client({
      host: '127.0.0.1',
      port: dropping.routes[0]!.port,
      user: AUTH_USERS.scram,
      database: 'postgres',
    });
    try {
      await client.connect();
      fill(filler);
      await client.query(`insert into spool_full values (7, '${note}')`);
      await client.query(`insert into spool_full values (8, '${note}')`);
      expect(await rows(7)).toBe(1);
      expect(await rows(8)).toBe(1);
      // The first one's begin record waits in memory for room; the next ones run unrecorded.
      expect((await dropping.metrics.dropped.get()).values[0]?.value).toBe(1);
    } finally {
      await client.end().catch(() => {});
      try {
        unlinkSync(filler);
      } catch {}
      await dropping.close();
    }
  });
});
