/**
 * Protocol fidelity with a real Postgres: what a client is told about its backend, what happens
 * before a startup packet, who may log in through an inject route, how long startup may take,
 * where a CancelRequest goes, and that startup parameters reach Postgres byte for byte.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type RouteConfig, SidecarConfigSchema, validate } from '@byline/api';
import { type RunningSidecar, startSidecar } from '@byline/sidecar';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  type BackendMessage,
  cancelRequest,
  dataRow,
  fields,
  keyData,
  message,
  query,
  startup,
  types,
  WireConnection,
} from '../differential/wire.js';
import { AUTH_USERS, freePort, startPostgres, TEST_PASSWORD, type TestPostgres } from '../harness/postgres.js';
import { eventually } from '../harness/sidecar.js';

let db: TestPostgres;
let dir: string;
let passwordFile: string;

beforeAll(async () => {
  db = await startPostgres();
  dir = mkdtempSync(join(tmpdir(), 'byline-fidelity-'));
  passwordFile = join(dir, 'pw');
  writeFileSync(passwordFile, TEST_PASSWORD);
});

afterAll(async () => {
  await db?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

type Credentials = RouteConfig['credentials'];

function route(name: string, extra: Partial<RouteConfig> = {}): RouteConfig {
  return {
    name,
    listen: '127.0.0.1:0',
    upstream: { host: db.host, port: db.port, database: 'postgres', sslMode: 'disable' },
    credentials: { mode: 'inject', username: AUTH_USERS.scram, passwordFile } as Credentials,
    ...extra,
  } as RouteConfig;
}

async function withSidecar<T>(
  routes: RouteConfig[],
  fn: (s: RunningSidecar) => Promise<T>,
  limits: { authenticationTimeoutMs?: number } = {},
): Promise<T> {
  const config = validate(
    SidecarConfigSchema,
    {
      identity: { static: { name: 'fidelity-agent', kind: 'agent' } },
      routes,
      audit: { sinks: [{ file: join(dir, `audit-${Math.random()}.jsonl`) }] },
      ...(Object.keys(limits).length > 0 ? { limits } : {}),
    },
    'fidelity test config',
  );
  const s = await startSidecar(config, { logger: pino({ level: process.env.BYLINE_TEST_LOG ?? 'silent' }) });
  try {
    return await fn(s);
  } finally {
    await s.close();
  }
}

const target = (s: RunningSidecar, i = 0) => ({ host: '127.0.0.1', port: s.routes[i]!.port });

/** Starts a session over the raw protocol; returns the connection and its startup answer. */
async function openSession(
  s: RunningSidecar,
  params: Record<string, string> = { user: AUTH_USERS.scram, database: 'postgres' },
  i = 0,
): Promise<{ conn: WireConnection; startupAnswer: BackendMessage[] }> {
  const conn = await WireConnection.open(target(s, i));
  await conn.send([startup(params)]);
  const startupAnswer = await conn.read('Z');
  return { conn, startupAnswer };
}

async function scalar(conn: WireConnection, sql: string): Promise<string | null> {
  await conn.send([query(sql)]);
  const answer = await conn.read('Z');
  const row = answer.find((m) => m.type === 'D');
  if (!row) throw new Error(`no row for ${sql}: ${types(answer)} ${JSON.stringify(answer.map(fields))}`);
  return dataRow(row)[0]!;
}

/** Writes `bytes` on a fresh connection and returns everything received until the sidecar closes it. */
function rawExchange(
  s: RunningSidecar,
  bytes: Buffer | null,
  timeoutMs = 3000,
): Promise<{ received: Buffer; closed: boolean }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const socket = netConnect({ host: '127.0.0.1', port: s.routes[0]!.port });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ received: Buffer.concat(chunks), closed: false });
    }, timeoutMs);
    socket.on('connect', () => {
      if (bytes) socket.write(bytes);
    });
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ received: Buffer.concat(chunks), closed: true });
    });
  });
}

describe('BackendKeyData', () => {
  test("the client is told Postgres's real pid, which pg_backend_pid() and a notification's sender agree with", async () => {
    await withSidecar([route('fidelity')], async (s) => {
      const { conn, startupAnswer } = await openSession(s);
      try {
        const told = keyData(startupAnswer.find((m) => m.type === 'K')!);
        expect(Number(await scalar(conn, 'select pg_backend_pid()'))).toBe(told.pid);
        await conn.send([query("listen fidelity_channel; notify fidelity_channel, 'self'")]);
        const answer = await conn.read('Z');
        const notification = answer.find((m) => m.type === 'A')!;
        expect(notification.body.readInt32BE(0)).toBe(told.pid);
        // The secret is the sidecar's own: it is registered for this session, so cancels must come through it.
        expect(s.sessions).toBe(1);
      } finally {
        conn.destroy();
      }
    });
  });

  test("the key is the sidecar's own: sent straight to Postgres with the real pid, it cancels nothing", async () => {
    await withSidecar([route('fidelity')], async (s) => {
      const { conn, startupAnswer } = await openSession(s);
      const admin = db.client();
      await admin.connect();
      try {
        const { pid, key } = keyData(startupAnswer.find((m) => m.type === 'K')!);
        const sleep = 'select pg_sleep(30) as bypass';
        await conn.send([query(sleep)]);
        const sleeping = async () =>
          (
            await admin.query(
              "select count(*)::int as n from pg_stat_activity where query = $1 and wait_event = 'PgSleep'",
              [sleep],
            )
          ).rows[0].n as number;
        await eventually(async () => expect(await sleeping()).toBe(1));
        const direct = await WireConnection.open({ host: db.host, port: db.port });
        await direct.send([cancelRequest(pid, key)]);
        await direct.read('close');
        direct.destroy();
        await new Promise((r) => setTimeout(r, 500));
        expect(await sleeping()).toBe(1);
        // Through the sidecar the same key works.
        const via = await WireConnection.open(target(s));
        await via.send([cancelRequest(pid, key)]);
        await via.read('close');
        via.destroy();
        expect(fields((await conn.read('Z', 5000)).find((m) => m.type === 'E')!).C).toBe('57014');
      } finally {
        await admin.end();
        conn.destroy();
      }
    });
  });

  test("a CancelRequest received on another route's listener cancels the query on the session's own upstream", async () => {
    // Route "elsewhere" points at a port where nothing listens: a cancel sent there would be lost.
    const nowhere = await freePort();
    const elsewhere = route('elsewhere', {
      upstream: { host: '127.0.0.1', port: nowhere, database: 'postgres', sslMode: 'disable' },
    });
    await withSidecar([route('fidelity'), elsewhere], async (s) => {
      const { conn, startupAnswer } = await openSession(s);
      try {
        const { pid, key } = keyData(startupAnswer.find((m) => m.type === 'K')!);
        const sleep = 'select pg_sleep(30)';
        await conn.send([query(sleep)]);
        const admin = db.client();
        await admin.connect();
        try {
          await eventually(async () => {
            const r = await admin.query(
              "select count(*)::int as n from pg_stat_activity where query = $1 and wait_event = 'PgSleep'",
              [sleep],
            );
            expect(r.rows[0].n).toBe(1);
          });
        } finally {
          await admin.end();
        }
        const cancelConn = await WireConnection.open(target(s, 1));
        await cancelConn.send([cancelRequest(pid, key)]);
        expect(await cancelConn.read('close')).toEqual([]);
        cancelConn.destroy();
        const answer = await conn.read('Z', 5000);
        expect(types(answer)).toBe('TEZ');
        expect(fields(answer[1]!)).toMatchObject({ C: '57014', M: 'canceling statement due to user request' });
      } finally {
        conn.destroy();
      }
    });
  });
});

describe('before the startup packet, the sidecar behaves like Postgres: it closes without a reply', () => {
  const cases: [string, Buffer][] = [
    ['a Terminate', message('X')],
    ['a Query', query('select 1')],
    ['a length of 3', Buffer.from([0, 0, 0, 3])],
    ['a length of 10001', Buffer.concat([Buffer.from([0, 0, 0x27, 0x11]), Buffer.alloc(10_001 - 4)])],
  ];
  for (const [what, bytes] of cases) {
    test(`${what} before any startup packet`, async () => {
      await withSidecar([route('fidelity')], async (s) => {
        const { received, closed } = await rawExchange(s, bytes);
        expect(closed).toBe(true);
        expect(received.length).toBe(0);
        await eventually(async () => expect(s.sessions).toBe(0));
      });
    });
  }

  test('an unsupported protocol version still gets its FATAL 0A000, as from Postgres', async () => {
    await withSidecar([route('fidelity')], async (s) => {
      const { received, closed } = await rawExchange(s, startup({ user: 'x' }, 2 << 16));
      expect(closed).toBe(true);
      expect(String.fromCharCode(received[0]!)).toBe('E');
      expect(received.toString('latin1')).toContain('0A000');
    });
  });
});

describe('authenticationTimeoutMs', () => {
  test('connections that never send a startup packet are closed silently once it passes', async () => {
    await withSidecar(
      [route('fidelity')],
      async (s) => {
        const started = Date.now();
        const idle = await Promise.all(Array.from({ length: 20 }, () => rawExchange(s, null, 5000)));
        for (const r of idle) {
          expect(r.closed).toBe(true);
          expect(r.received.length).toBe(0);
        }
        expect(Date.now() - started).toBeGreaterThanOrEqual(250);
        await eventually(async () => expect(s.sessions).toBe(0));
        // A client that goes on normally is unaffected by the timer.
        const { conn } = await openSession(s);
        await new Promise((r) => setTimeout(r, 500));
        expect(await scalar(conn, "select 'still here'")).toBe('still here');
        conn.destroy();
      },
      { authenticationTimeoutMs: 300 },
    );
  });

  test('a client that never answers the password request gets FATAL 08006 naming the limit', async () => {
    const clientPasswordFile = join(dir, 'client-pw');
    writeFileSync(clientPasswordFile, 'local-pass');
    const credentials = { mode: 'inject', username: AUTH_USERS.scram, passwordFile, clientPasswordFile } as Credentials;
    await withSidecar(
      [route('fidelity', { credentials })],
      async (s) => {
        const conn = await WireConnection.open(target(s));
        await conn.send([startup({ user: AUTH_USERS.scram, database: 'postgres' })]);
        const answer = await conn.read('close', 5000);
        expect(types(answer)).toBe('RE');
        expect(fields(answer[1]!)).toMatchObject({
          S: 'FATAL',
          C: '08006',
          M: 'byline: startup and authentication did not finish within 300 ms',
        });
        conn.destroy();
      },
      { authenticationTimeoutMs: 300 },
    );
  });
});

describe('inject mode: which user a client may ask for', () => {
  test("by default a user other than the route's is refused with 28000 naming the expected one", async () => {
    await withSidecar([route('fidelity')], async (s) => {
      const other = new pg.Client({ ...target(s), user: 'agent', database: 'postgres' });
      await expect(other.connect()).rejects.toMatchObject({
        code: '28000',
        message: `byline: route "fidelity" logs in as user "${AUTH_USERS.scram}", not "agent": connect as "${AUTH_USERS.scram}"`,
      });
      const same = new pg.Client({ ...target(s), user: AUTH_USERS.scram, database: 'postgres' });
      await same.connect();
      expect((await same.query('select current_user as u')).rows[0].u).toBe(AUTH_USERS.scram);
      await same.end();
    });
  });

  test('the route user read from usernameFile is the one expected', async () => {
    const usernameFile = join(dir, 'username');
    writeFileSync(usernameFile, `${AUTH_USERS.md5}\n`);
    const credentials = { mode: 'inject', usernameFile, passwordFile } as Credentials;
    await withSidecar([route('fidelity', { credentials })], async (s) => {
      const other = new pg.Client({ ...target(s), user: AUTH_USERS.scram, database: 'postgres' });
      await expect(other.connect()).rejects.toMatchObject({ code: '28000' });
      const same = new pg.Client({ ...target(s), user: AUTH_USERS.md5, database: 'postgres' });
      await same.connect();
      expect((await same.query('select current_user as u')).rows[0].u).toBe(AUTH_USERS.md5);
      await same.end();
    });
  });

  test('acceptAnyUser: any requested name logs in as the route user', async () => {
    const credentials = {
      mode: 'inject',
      username: AUTH_USERS.scram,
      passwordFile,
      acceptAnyUser: true,
    } as Credentials;
    await withSidecar([route('fidelity', { credentials })], async (s) => {
      const other = new pg.Client({ ...target(s), user: 'agent', database: 'postgres' });
      await other.connect();
      expect((await other.query('select current_user as u')).rows[0].u).toBe(AUTH_USERS.scram);
      await other.end();
    });
  });
});

describe('startup parameters', () => {
  test('reach Postgres byte for byte, also when they are not UTF-8', async () => {
    // "é" in LATIN1 is the single byte 0xE9, not valid UTF-8 on its own: decoded and re-encoded
    // as UTF-8 it would become EF BF BD (the replacement character).
    const packet = startupWithRawValue(
      { user: AUTH_USERS.scram, database: 'postgres' },
      'application_name',
      Buffer.from('caf\u00e9', 'latin1'),
    );
    await withSidecar([route('fidelity')], async (s) => {
      const conn = await WireConnection.open(target(s));
      try {
        await conn.send([packet]);
        await conn.read('Z');
        // Postgres keeps application_name ASCII, showing any other byte as a \xNN escape.
        expect(await scalar(conn, "select current_setting('application_name')")).toBe('caf\\xe9');
      } finally {
        conn.destroy();
      }
    });
  });
});

/** A startup packet with one parameter's value given as raw bytes. */
function startupWithRawValue(params: Record<string, string>, name: string, value: Buffer): Buffer {
  const base = startup(params);
  // base ends with the final NUL: insert name\0value\0 before it.
  const body = Buffer.concat([base.subarray(4, base.length - 1), Buffer.from(`${name}\0`), value, Buffer.from([0, 0])]);
  const length = Buffer.alloc(4);
  length.writeInt32BE(body.length + 4);
  return Buffer.concat([length, body]);
}
