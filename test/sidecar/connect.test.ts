/**
 * Connection set-up through the sidecar against a real Postgres that serves TLS: upstream
 * authentication per method, sslMode towards Postgres, TLS towards clients, client passwords,
 * passthrough, database routing, startup parameters, asynchronous messages, and either side
 * closing at any moment. Postgres without TLS is in connect-plain.test.ts.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TLSSocket, connect as tlsConnect } from 'node:tls';
import type { AuditEvent, RouteConfig } from '@byline/api';
import pg from 'pg';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { issueCert, makeCa } from '../harness/certs.js';
import { AUTH_USERS, freePort, startPostgres, TEST_PASSWORD, type TestPostgres } from '../harness/postgres.js';
import { eventually, startTestSidecar, type TestSidecar, type TestSidecarOptions } from '../harness/sidecar.js';

let db: TestPostgres;
let dir: string;
/** Holds TEST_PASSWORD. */
let goodPasswordFile: string;
/** A certificate for the sidecar's client side, issued by `clientCa`. */
let sidecarCert: { certFile: string; keyFile: string };
let clientCa: string;
/** A CA that signed nothing anybody here serves. */
let unrelatedCa: string;

beforeAll(async () => {
  db = await startPostgres({ ssl: true });
  dir = mkdtempSync(join(tmpdir(), 'byline-connect-'));
  goodPasswordFile = join(dir, 'good-password');
  writeFileSync(goodPasswordFile, `${TEST_PASSWORD}\n`);
  clientCa = makeCa(dir, 'client-ca');
  sidecarCert = issueCert(dir, 'client-ca', 'sidecar');
  unrelatedCa = makeCa(dir, 'unrelated-ca');
  const admin = db.client();
  await admin.connect();
  await admin.query('create database other_db');
  await admin.end();
});

afterAll(async () => {
  await db?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

// ---- helpers ------------------------------------------------------------------------------------

function writePassword(name: string, content: string): string {
  const file = join(dir, name);
  writeFileSync(file, content);
  return file;
}

type Upstream = RouteConfig['upstream'];

function upstream(extra: Partial<Upstream> = {}): Upstream {
  return { host: db.host, port: db.port, database: 'postgres', sslMode: 'disable', ...extra };
}

function inject(username: string, passwordFile = goodPasswordFile): RouteConfig['credentials'] {
  // These tests connect as "agent" whatever the role; the user-name policy is tested in startup.test.ts.
  return { mode: 'inject', username, passwordFile, acceptAnyUser: true };
}

async function withSidecar<T>(options: TestSidecarOptions, fn: (s: TestSidecar) => Promise<T>): Promise<T> {
  const s = await startTestSidecar(db, options);
  try {
    return await fn(s);
  } finally {
    await s.close();
  }
}

/** Connects with node-postgres, runs one query, disconnects. */
async function queryVia(s: TestSidecar, sql: string, config: pg.ClientConfig = {}): Promise<pg.QueryResult> {
  const client = new pg.Client({ host: s.host, port: s.port, user: 'agent', database: 'postgres', ...config });
  await client.connect();
  try {
    return await client.query(sql);
  } finally {
    await client.end();
  }
}

/** The error connecting gave, or a failure if it connected. */
async function connectError(s: TestSidecar, config: pg.ClientConfig = {}): Promise<pg.DatabaseError> {
  const client = new pg.Client({ host: s.host, port: s.port, user: 'agent', database: 'postgres', ...config });
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (e) {
    return e as pg.DatabaseError;
  }
  await client.end();
  throw new Error('connected, but should have been refused');
}

const SSL_IN_USE = 'select ssl from pg_stat_ssl where pid = pg_backend_pid()';

interface PsqlResult {
  code: number;
  stdout: string;
  stderr: string;
}

function psql(conninfo: string, command: string, env: Record<string, string> = {}): Promise<PsqlResult> {
  return new Promise((resolve) => {
    execFile(
      'psql',
      ['-X', '-A', '-t', '-w', '-d', conninfo, '-c', command],
      { env: { PATH: process.env.PATH ?? '', ...env }, timeout: 20_000 },
      (error, stdout, stderr) => {
        resolve({ code: error ? ((error as { code?: number }).code ?? -1) : 0, stdout, stderr });
      },
    );
  });
}

function conninfo(s: TestSidecar, extra: string): string {
  return `host=${s.host} port=${s.port} dbname=postgres ${extra}`;
}

function ofType(events: AuditEvent[], type: AuditEvent['type']): AuditEvent[] {
  return events.filter((e) => e.type === type);
}

/** The events once every session that started has ended (a client may return before the sidecar sees its close). */
function settled(s: TestSidecar): Promise<AuditEvent[]> {
  return eventually(async () => {
    const all = await s.events();
    expect(ofType(all, 'session.end')).toHaveLength(ofType(all, 'session.start').length);
    return all;
  });
}

// ---- upstream authentication, inject mode -------------------------------------------------------

describe('inject mode: the sidecar logs in with the route credential', () => {
  test.each([
    ['SCRAM-SHA-256', AUTH_USERS.scram],
    ['md5', AUTH_USERS.md5],
    ['password', AUTH_USERS.password],
  ])('%s: a client without a password runs a query as the injected user', async (_method, user) => {
    await withSidecar({ route: { credentials: inject(user) } }, async (s) => {
      const r = await queryVia(s, 'select current_user as u, session_user as s');
      expect(r.rows).toEqual([{ u: user, s: user }]);
      const events = await settled(s);
      expect(events.map((e) => e.type)).toEqual(['session.start', 'statement', 'session.end']);
      for (const e of events) expect(e.session.dbUser).toBe(user);
      expect(events[0]!.result).toMatchObject({ status: 'ok', sqlstate: null, error: null });
    });
  });

  test('SCRAM-SHA-256-PLUS over a TLS upstream: login works and the link is encrypted', async () => {
    await withSidecar({ route: { upstream: upstream({ sslMode: 'require' }) } }, async (s) => {
      const r = await queryVia(s, `${SSL_IN_USE.replace('select ssl', 'select ssl, current_user as u')}`);
      expect(r.rows).toEqual([{ ssl: true, u: AUTH_USERS.scram }]);
    });
  });

  test('SCRAM-SHA-256-PLUS is what the sidecar picks over TLS: a TLS man in the middle is caught', async () => {
    // A relay that terminates the sidecar's TLS with its own certificate and opens its own TLS to
    // Postgres. sslMode require does not verify certificates, so only channel binding can notice.
    const mitm = await startTlsRelay(db.host, db.port, issueCert(dir, 'unrelated-ca', 'mitm'));
    try {
      await withSidecar(
        { route: { upstream: { host: '127.0.0.1', port: mitm.port, database: 'postgres', sslMode: 'require' } } },
        async (s) => {
          const e = await connectError(s);
          expect(e.code).toBe('28000');
          expect(e.severity).toBe('FATAL');
          expect(e.message).toBe('SCRAM channel binding check failed');
          // The relay saw the client-first message in the clear: the mechanism and the gs2 header.
          const sent = Buffer.concat(mitm.fromClient).toString('latin1');
          expect(sent).toContain('SCRAM-SHA-256-PLUS\0');
          expect(sent).toContain('p=tls-server-end-point,,n=');
          const start = ofType(await s.events(), 'session.start');
          expect(start).toHaveLength(1);
          expect(start[0]!.result).toMatchObject({ status: 'error', sqlstate: '28000' });
        },
      );
    } finally {
      await mitm.close();
    }
  });

  test.each([
    ['SCRAM-SHA-256', AUTH_USERS.scram],
    ['md5', AUTH_USERS.md5],
    ['password', AUTH_USERS.password],
  ])('%s: a wrong password in the file gives the client FATAL 28P01 from Postgres', async (_method, user) => {
    const wrong = writePassword(`wrong-${user}`, 'not-the-password\n');
    await withSidecar({ route: { credentials: inject(user, wrong) } }, async (s) => {
      const e = await connectError(s);
      expect(e.code).toBe('28P01');
      expect(e.severity).toBe('FATAL');
      expect(e.message).toBe(`password authentication failed for user "${user}"`);
      const events = await eventually(async () => {
        const all = await s.events();
        expect(ofType(all, 'session.end')).toHaveLength(1);
        return all;
      });
      expect(events.map((x) => x.type)).toEqual(['session.start', 'session.end']);
      expect(events[0]!.result).toMatchObject({
        status: 'error',
        sqlstate: '28P01',
        error: `password authentication failed for user "${user}"`,
      });
      expect(events[0]!.session.dbUser).toBe(user);
    });
  });

  test('the password file is read again for every connection', async () => {
    const file = writePassword('rotating', 'wrong\n');
    await withSidecar({ route: { credentials: inject(AUTH_USERS.scram, file) } }, async (s) => {
      expect((await connectError(s)).code).toBe('28P01');
      writeFileSync(file, TEST_PASSWORD); // no trailing newline this time
      expect((await queryVia(s, 'select 1 as one')).rows).toEqual([{ one: 1 }]);
      writeFileSync(file, 'rotated-away\r\n');
      expect((await connectError(s)).code).toBe('28P01');
    });
  });

  test('a password file that disappears after start gives a clear FATAL naming it', async () => {
    const file = writePassword('vanishing', TEST_PASSWORD);
    await withSidecar({ route: { credentials: inject(AUTH_USERS.scram, file) } }, async (s) => {
      rmSync(file);
      const e = await connectError(s);
      expect(e.code).toBe('08006');
      expect(e.message).toContain(
        `cannot read the route's credential: ENOENT: no such file or directory, open '${file}'`,
      );
    });
  });
});

// ---- sslMode towards Postgres -------------------------------------------------------------------

describe('upstream sslMode against a Postgres that serves TLS', () => {
  test.each([
    ['disable', false],
    ['prefer', true],
    ['require', true],
  ] as const)('%s → ssl %s', async (sslMode, encrypted) => {
    await withSidecar({ route: { upstream: upstream({ sslMode }) } }, async (s) => {
      expect((await queryVia(s, SSL_IN_USE)).rows).toEqual([{ ssl: encrypted }]);
    });
  });

  test('sslMode defaults to prefer', async () => {
    await withSidecar({ route: { upstream: { host: db.host, port: db.port, database: 'postgres' } } }, async (s) => {
      expect((await queryVia(s, SSL_IN_USE)).rows).toEqual([{ ssl: true }]);
    });
  });

  test('verify-full with the right CA and host name → encrypted', async () => {
    const route = { upstream: upstream({ host: 'localhost', sslMode: 'verify-full', sslRootCertFile: db.caFile! }) };
    await withSidecar({ route }, async (s) => {
      expect((await queryVia(s, SSL_IN_USE)).rows).toEqual([{ ssl: true }]);
      const events = await s.events();
      expect(events[0]!.target).toEqual({ route: 'test-db', host: 'localhost', port: db.port, database: 'postgres' });
    });
  });

  test('verify-full with an unrelated CA → FATAL 08006 about the certificate', async () => {
    const route = { upstream: upstream({ host: 'localhost', sslMode: 'verify-full', sslRootCertFile: unrelatedCa }) };
    await withSidecar({ route }, async (s) => {
      const e = await connectError(s);
      expect(e.code).toBe('08006');
      expect(e.severity).toBe('FATAL');
      expect(e.message).toBe('byline: TLS with the database server failed: unable to verify the first certificate');
      const events = await s.events();
      expect(events.map((x) => x.type)).toEqual(['session.start', 'session.end']);
      expect(events[0]!.result).toMatchObject({ status: 'error', sqlstate: '08006' });
    });
  });
});

// ---- TLS towards clients ------------------------------------------------------------------------

describe('TLS towards clients', () => {
  test('with route tls: psql sslmode=require and verify-full, and node-postgres over TLS', async () => {
    await withSidecar({ route: { tls: sidecarCert } }, async (s) => {
      const required = await psql(conninfo(s, 'user=agent sslmode=require'), '\\conninfo');
      expect(required.stderr).toBe('');
      expect(required.stdout).toMatch(/^SSL connection \(protocol: TLSv1\.3, cipher: [A-Z0-9_]+, compression: off\)$/m);

      const verified = await psql(
        `host=localhost port=${s.port} dbname=postgres user=agent sslmode=verify-full sslrootcert=${clientCa}`,
        `select 'over tls'`,
      );
      expect(verified).toEqual({ code: 0, stdout: 'over tls\n', stderr: '' });

      const client = new pg.Client({
        host: s.host,
        port: s.port,
        user: 'agent',
        database: 'postgres',
        ssl: { rejectUnauthorized: false },
      });
      await client.connect();
      const stream = (client as unknown as { connection: { stream: Socket } }).connection.stream;
      expect(stream).toBeInstanceOf(TLSSocket);
      expect((stream as TLSSocket).getPeerCertificate().subject.CN).toBe('localhost');
      expect((stream as TLSSocket).getPeerCertificate().issuer.CN).toBe('client-ca');
      expect((await client.query('select 42 as n')).rows).toEqual([{ n: 42 }]);
      await client.end();

      const verifiedPg = await queryVia(s, 'select 1 as one', {
        ssl: { ca: readFileSync(clientCa, 'utf8'), servername: 'localhost' },
      });
      expect(verifiedPg.rows).toEqual([{ one: 1 }]);

      const stmts = await s.statements();
      expect(stmts.map((e) => e.statement!.text)).toEqual(["select 'over tls'", 'select 42 as n', 'select 1 as one']);
      expect(stmts[1]!.session.client).toMatch(/^127\.0\.0\.1:\d+$/);
    });
  });

  test('two sidecars in one process serve each its own certificate', async () => {
    const other = issueCert(dir, 'unrelated-ca', 'other-sidecar');
    await withSidecar({ route: { tls: sidecarCert } }, async (first) => {
      await withSidecar({ route: { tls: other } }, async (second) => {
        const issuerOf = async (s: TestSidecar) => {
          const client = new pg.Client({
            host: s.host,
            port: s.port,
            user: 'agent',
            database: 'postgres',
            ssl: { rejectUnauthorized: false },
          });
          await client.connect();
          const stream = (client as unknown as { connection: { stream: TLSSocket } }).connection.stream;
          const issuer = stream.getPeerCertificate().issuer.CN;
          await client.end();
          return issuer;
        };
        expect(await issuerOf(first)).toBe('client-ca');
        expect(await issuerOf(second)).toBe('unrelated-ca');
      });
    });
  });

  test('without route tls: sslmode=require is refused, sslmode=prefer connects in plaintext', async () => {
    await withSidecar({}, async (s) => {
      const required = await psql(conninfo(s, 'user=agent sslmode=require'), 'select 1');
      expect(required.code).toBe(2);
      expect(required.stderr).toContain('server does not support SSL, but SSL was required');

      const preferred = await psql(conninfo(s, 'user=agent sslmode=prefer'), '\\conninfo');
      expect(preferred.code).toBe(0);
      expect(preferred.stdout).toContain(`at port "${s.port}"`);
      expect(preferred.stdout).not.toContain('SSL connection');
      // Only the second connection got as far as a session (psql exits without waiting for its end).
      await eventually(async () => {
        expect((await s.events()).map((e) => e.type)).toEqual(['session.start', 'session.end']);
      });
    });
  });

  test('GSSENCRequest is answered N, and the same connection then starts normally', async () => {
    await withSidecar({}, async (s) => {
      const psqlResult = await psql(conninfo(s, 'user=agent gssencmode=prefer sslmode=disable'), 'select 7');
      expect(psqlResult).toEqual({ code: 0, stdout: '7\n', stderr: '' });

      // libpq sends GSSENCRequest only with a Kerberos credential cache, so send it by hand.
      const wire = await RawWire.open(s.host, s.port);
      try {
        wire.write(int32s(8, 80877104));
        expect((await wire.read(1)).toString('latin1')).toBe('N');
        wire.write(startupPacket({ user: 'agent', database: 'postgres' }));
        const types = await wire.readUntil('Z');
        expect(types[0]).toBe('R');
        expect(types.at(-1)).toBe('Z');
        expect(types).not.toContain('E');
      } finally {
        wire.close();
      }
    });
  });
});

// ---- client passwords ---------------------------------------------------------------------------

describe('clientPasswordFile: local clients must present a password', () => {
  const options = (): TestSidecarOptions => ({
    route: {
      credentials: {
        mode: 'inject',
        username: AUTH_USERS.scram,
        passwordFile: goodPasswordFile,
        clientPasswordFile: writePassword('client-password', 'local-pass\n'),
        acceptAnyUser: true,
      },
    },
  });

  test('the right password works (node-postgres and PGPASSWORD for psql)', async () => {
    await withSidecar(options(), async (s) => {
      expect((await queryVia(s, 'select current_user as u', { password: 'local-pass' })).rows).toEqual([
        { u: AUTH_USERS.scram },
      ]);
      const viaPsql = await psql(conninfo(s, 'user=agent'), 'select current_user', { PGPASSWORD: 'local-pass' });
      expect(viaPsql).toEqual({ code: 0, stdout: `${AUTH_USERS.scram}\n`, stderr: '' });
    });
  });

  test('a wrong password or none is refused with 28P01', async () => {
    await withSidecar(options(), async (s) => {
      const wrong = await connectError(s, { password: 'local-pas' });
      expect(wrong.code).toBe('28P01');
      expect(wrong.message).toBe('byline: password authentication failed for user "agent"');

      const viaPsql = await psql(conninfo(s, 'user=agent'), 'select 1', { PGPASSWORD: 'nope' });
      expect(viaPsql.code).toBe(2);
      expect(viaPsql.stderr).toContain('FATAL:  byline: password authentication failed for user "agent"');

      // postgres.js answers with an empty password when it has none.
      const sql = postgres({ host: s.host, port: s.port, user: 'agent', database: 'postgres', max: 1 });
      await expect(sql`select 1`).rejects.toMatchObject({ code: '28P01' });
      await sql.end();

      // psql without one gives up on its own before sending anything.
      const none = await psql(conninfo(s, 'user=agent'), 'select 1');
      expect(none.code).toBe(2);
      expect(none.stderr).toContain('no password supplied');

      // Nothing reached Postgres, so there is no session to record.
      expect(await s.events()).toEqual([]);
    });
  });
});

// ---- passthrough --------------------------------------------------------------------------------

describe('passthrough mode: the client logs in with its own credential', () => {
  const passthrough: TestSidecarOptions = { route: { credentials: { mode: 'passthrough' } } };

  test('scram_user with node-postgres and psql, md5_user and pw_user; dbUser is the client user', async () => {
    await withSidecar(passthrough, async (s) => {
      const r = await queryVia(s, 'select current_user as u', { user: AUTH_USERS.scram, password: TEST_PASSWORD });
      expect(r.rows).toEqual([{ u: AUTH_USERS.scram }]);
      const viaPsql = await psql(conninfo(s, `user=${AUTH_USERS.scram}`), 'select current_user', {
        PGPASSWORD: TEST_PASSWORD,
      });
      expect(viaPsql).toEqual({ code: 0, stdout: `${AUTH_USERS.scram}\n`, stderr: '' });
      for (const user of [AUTH_USERS.md5, AUTH_USERS.password, 'postgres']) {
        const x = await queryVia(s, 'select current_user as u', { user, password: TEST_PASSWORD });
        expect(x.rows).toEqual([{ u: user }]);
      }
      const stmts = await s.statements();
      expect(stmts.map((e) => e.session.dbUser)).toEqual([
        AUTH_USERS.scram,
        AUTH_USERS.scram,
        AUTH_USERS.md5,
        AUTH_USERS.password,
        'postgres',
      ]);
    });
  });

  test('a wrong password gets 28P01 from Postgres itself', async () => {
    await withSidecar(passthrough, async (s) => {
      for (const user of [AUTH_USERS.scram, AUTH_USERS.md5, AUTH_USERS.password]) {
        const e = await connectError(s, { user, password: 'wrong' });
        expect(e.code).toBe('28P01');
        expect(e.message).toBe(`password authentication failed for user "${user}"`);
      }
      const events = await eventually(async () => {
        const all = await s.events();
        expect(ofType(all, 'session.end')).toHaveLength(3);
        return all;
      });
      const starts = ofType(events, 'session.start');
      expect(starts.map((e) => [e.session.dbUser, e.result!.status, e.result!.sqlstate])).toEqual([
        [AUTH_USERS.scram, 'error', '28P01'],
        [AUTH_USERS.md5, 'error', '28P01'],
        [AUTH_USERS.password, 'error', '28P01'],
      ]);
    });
  });

  test('over a TLS upstream the client is not offered SCRAM-SHA-256-PLUS (it would bind to the wrong TLS)', async () => {
    await withSidecar(
      { route: { credentials: { mode: 'passthrough' }, upstream: upstream({ sslMode: 'require' }) } },
      async (s) => {
        const r = await queryVia(s, SSL_IN_USE, { user: AUTH_USERS.scram, password: TEST_PASSWORD });
        expect(r.rows).toEqual([{ ssl: true }]);
        const viaPsql = await psql(conninfo(s, `user=${AUTH_USERS.scram} sslmode=disable`), SSL_IN_USE, {
          PGPASSWORD: TEST_PASSWORD,
        });
        expect(viaPsql).toEqual({ code: 0, stdout: 't\n', stderr: '' });
      },
    );
  });

  const bothTls = (): TestSidecarOptions => ({
    route: { credentials: { mode: 'passthrough' }, upstream: upstream({ sslMode: 'require' }), tls: sidecarCert },
  });

  test('TLS on both sides: node-postgres, and psql with channel_binding=disable, log in with SCRAM', async () => {
    await withSidecar(bothTls(), async (s) => {
      const r = await queryVia(s, SSL_IN_USE, {
        user: AUTH_USERS.scram,
        password: TEST_PASSWORD,
        ssl: { rejectUnauthorized: false },
      });
      expect(r.rows).toEqual([{ ssl: true }]);
      const viaPsql = await psql(
        conninfo(s, `user=${AUTH_USERS.scram} sslmode=require channel_binding=disable`),
        SSL_IN_USE,
        { PGPASSWORD: TEST_PASSWORD },
      );
      expect(viaPsql).toEqual({ code: 0, stdout: 't\n', stderr: '' });
    });
  });

  // BUG (design question, not fixed): libpq over TLS defaults to channel_binding=prefer. The sidecar
  // hides SCRAM-SHA-256-PLUS, so libpq sends the gs2 flag "y" (I could bind, you cannot), and Postgres,
  // which does offer -PLUS on its own TLS link, refuses that as a downgrade attack ("SCRAM channel
  // binding negotiation error"). The flag is covered by the client proof, so the sidecar cannot
  // rewrite it; passthrough SCRAM needs a plaintext client link or channel_binding=disable.
  test.fails('TLS on both sides: psql with default channel_binding logs in with SCRAM', async () => {
    await withSidecar(bothTls(), async (s) => {
      const viaPsql = await psql(conninfo(s, `user=${AUTH_USERS.scram} sslmode=require`), SSL_IN_USE, {
        PGPASSWORD: TEST_PASSWORD,
      });
      expect(viaPsql).toEqual({ code: 0, stdout: 't\n', stderr: '' });
    });
  });
});

// ---- database routing, replication, unreachable upstream ----------------------------------------

describe('database routing', () => {
  test("the route's database, or none (the user name), is served; any other is refused with 3D000", async () => {
    await withSidecar({}, async (s) => {
      expect((await queryVia(s, 'select current_database() as d')).rows).toEqual([{ d: 'postgres' }]);
      // node-postgres without a database asks for one named after the user.
      const r = await queryVia(s, 'select current_database() as d', { user: 'someone', database: undefined });
      expect(r.rows).toEqual([{ d: 'postgres' }]);
      const viaPsql = await psql(`host=${s.host} port=${s.port} user=agent`, 'select current_database()');
      expect(viaPsql).toEqual({ code: 0, stdout: 'postgres\n', stderr: '' });

      const e = await connectError(s, { database: 'other_db' });
      expect(e.code).toBe('3D000');
      expect(e.severity).toBe('FATAL');
      expect(e.message).toBe('byline: database "other_db" is not served by route "test-db" (it serves "postgres")');
    });
  });

  test('a route without a database passes the requested one on', async () => {
    await withSidecar({ route: { upstream: { host: db.host, port: db.port, sslMode: 'disable' } } }, async (s) => {
      expect((await queryVia(s, 'select current_database() as d', { database: 'other_db' })).rows).toEqual([
        { d: 'other_db' },
      ]);
      const stmts = await s.statements();
      expect(stmts[0]!.target.database).toBe('other_db');
    });
  });

  test('a replication=database startup is refused with 0A000', async () => {
    await withSidecar({}, async (s) => {
      const e = await connectError(s, { replication: 'database' } as pg.ClientConfig);
      expect(e.code).toBe('0A000');
      expect(e.message).toBe('byline: replication connections cannot go through the Byline sidecar');
      const viaPsql = await psql(conninfo(s, 'user=agent replication=database'), 'IDENTIFY_SYSTEM');
      expect(viaPsql.code).toBe(2);
      expect(viaPsql.stderr).toContain('FATAL:  byline: replication connections cannot go through the Byline sidecar');
    });
  });

  test('an unreachable upstream gives FATAL 08006 naming host:port, promptly', async () => {
    const closed = await freePort();
    await withSidecar({ route: { upstream: upstream({ port: closed, sslMode: 'prefer' }) } }, async (s) => {
      const began = Date.now();
      const e = await connectError(s);
      expect(Date.now() - began).toBeLessThan(1000);
      expect(e.code).toBe('08006');
      expect(e.severity).toBe('FATAL');
      expect(e.message).toBe(
        `byline: cannot connect to the database server at 127.0.0.1:${closed}: connect ECONNREFUSED 127.0.0.1:${closed}`,
      );
      const events = await s.events();
      expect(events.map((x) => x.type)).toEqual(['session.start', 'session.end']);
      expect(events[0]!.result).toMatchObject({ status: 'error', sqlstate: '08006' });
    });
  });

  test('an upstream that accepts but never answers times out after connectTimeoutMs', async () => {
    const silent = createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    const port = (silent.address() as { port: number }).port;
    try {
      await withSidecar(
        { route: { upstream: upstream({ port, sslMode: 'prefer', connectTimeoutMs: 300 }) } },
        async (s) => {
          const began = Date.now();
          const e = await connectError(s);
          expect(Date.now() - began).toBeGreaterThanOrEqual(290);
          expect(Date.now() - began).toBeLessThan(2000);
          expect(e.code).toBe('08006');
          expect(e.message).toBe('byline: timed out waiting for the answer to SSLRequest');
        },
      );
    } finally {
      silent.close();
    }
  });
});

// ---- startup parameters, asynchronous messages --------------------------------------------------

describe('startup parameters and asynchronous messages', () => {
  test('options and application_name take effect upstream and in the events; SET application_name too', async () => {
    await withSidecar({}, async (s) => {
      const client = new pg.Client({
        host: s.host,
        port: s.port,
        user: 'agent',
        database: 'postgres',
        application_name: 'nightly-report',
        options: '-c search_path=foo -c statement_timeout=1234',
      });
      await client.connect();
      expect((await client.query('show search_path')).rows).toEqual([{ search_path: 'foo' }]);
      expect((await client.query('show statement_timeout')).rows).toEqual([{ statement_timeout: '1234ms' }]);
      expect((await client.query('select current_setting($1) as a', ['application_name'])).rows).toEqual([
        { a: 'nightly-report' },
      ]);
      await client.query("set application_name = 'renamed'");
      await client.query('select 1');
      await client.end();
      const events = await settled(s);
      expect(events.map((e) => [e.type, e.statement?.text ?? null, e.session.applicationName])).toEqual([
        ['session.start', null, 'nightly-report'],
        ['statement', 'show search_path', 'nightly-report'],
        ['statement', 'show statement_timeout', 'nightly-report'],
        ['statement', 'select current_setting($1) as a', 'nightly-report'],
        ['statement', "set application_name = 'renamed'", 'nightly-report'],
        ['statement', 'select 1', 'renamed'],
        ['session.end', null, 'renamed'],
      ]);
    });
  });

  test('LISTEN/NOTIFY and notices reach the client', async () => {
    await withSidecar({}, async (s) => {
      const client = new pg.Client({ host: s.host, port: s.port, user: 'agent', database: 'postgres' });
      await client.connect();
      const notifications: { channel: string; payload: string | undefined }[] = [];
      const notices: { message: string | undefined; severity: string | undefined; code: string | undefined }[] = [];
      client.on('notification', (n) => notifications.push({ channel: n.channel, payload: n.payload }));
      client.on('notice', (n) => notices.push({ message: n.message, severity: n.severity, code: n.code }));
      await client.query('listen jobs');
      await client.query("notify jobs, 'from myself'");
      // From a direct connection, arriving while the sidecar session is idle.
      const admin = db.client();
      await admin.connect();
      await admin.query("select pg_notify('jobs', 'from elsewhere')");
      await admin.end();
      await eventually(async () => expect(notifications).toHaveLength(2));
      await client.query("do $$ begin raise notice 'hello %', 42; end $$");
      const after = await client.query('select 5 as five');
      expect(after.rows).toEqual([{ five: 5 }]);
      await client.end();
      expect(notifications).toEqual([
        { channel: 'jobs', payload: 'from myself' },
        { channel: 'jobs', payload: 'from elsewhere' },
      ]);
      expect(notices).toEqual([{ message: 'hello 42', severity: 'NOTICE', code: '00000' }]);
      const stmts = await s.statements();
      expect(stmts.map((e) => [e.statement!.text, e.result!.status, e.result!.tag])).toEqual([
        ['listen jobs', 'ok', 'LISTEN'],
        ["notify jobs, 'from myself'", 'ok', 'NOTIFY'],
        ["do $$ begin raise notice 'hello %', 42; end $$", 'ok', 'DO'],
        ['select 5 as five', 'ok', 'SELECT 1'],
      ]);
    });
  });
});

// ---- either side closing ------------------------------------------------------------------------

describe('either side closing at any moment', () => {
  test('the client vanishing mid-query: the statement is recorded and the session ends once', async () => {
    await withSidecar({}, async (s) => {
      const client = new pg.Client({ host: s.host, port: s.port, user: 'agent', database: 'postgres' });
      client.on('error', () => {});
      await client.connect();
      const pending = client.query('select pg_sleep(1)').catch((e: Error) => e);
      await new Promise((r) => setTimeout(r, 200));
      (client as unknown as { connection: { stream: Socket } }).connection.stream.destroy();
      expect(await pending).toBeInstanceOf(Error);
      // Postgres finishes the sleep and answers a socket nobody reads any more; wait past that.
      await new Promise((r) => setTimeout(r, 1500));
      const events = await s.events();
      expect(events.map((e) => e.type)).toEqual(['session.start', 'statement', 'session.end']);
      expect(events[1]!.statement!.text).toBe('select pg_sleep(1)');
      expect(events[1]!.result).toMatchObject({
        status: 'unknown',
        error: 'the connection closed before Postgres answered',
      });
      expect(s.running.sessions).toBe(0);
    });
  });

  test('the client vanishing between statements ends the session and its Postgres backend', async () => {
    await withSidecar({}, async (s) => {
      const client = new pg.Client({ host: s.host, port: s.port, user: 'agent', database: 'postgres' });
      client.on('error', () => {});
      await client.connect();
      const pid = (await client.query('select pg_backend_pid() as pid')).rows[0].pid as number;
      await client.query('begin');
      await client.query('create table vanishing (x int)');
      (client as unknown as { connection: { stream: Socket } }).connection.stream.destroy();
      const admin = db.client();
      await admin.connect();
      await eventually(async () => {
        const r = await admin.query('select count(*)::int as n from pg_stat_activity where pid = $1', [pid]);
        expect(r.rows).toEqual([{ n: 0 }]);
      });
      // The open transaction was rolled back.
      expect((await admin.query("select to_regclass('vanishing') as t")).rows).toEqual([{ t: null }]);
      await admin.end();
      const events = await s.events();
      expect(events.map((e) => e.type)).toEqual([
        'session.start',
        'statement',
        'statement',
        'statement',
        'session.end',
      ]);
    });
  });

  test('Postgres terminating the backend: the client gets FATAL 57P01 and the session ends', async () => {
    await withSidecar({}, async (s) => {
      const client = new pg.Client({ host: s.host, port: s.port, user: 'agent', database: 'postgres' });
      const errors: pg.DatabaseError[] = [];
      client.on('error', (e) => errors.push(e as pg.DatabaseError));
      const ended = new Promise<void>((r) => client.once('end', () => r()));
      await client.connect();
      const pid = (await client.query('select pg_backend_pid() as pid')).rows[0].pid as number;
      const admin = db.client();
      await admin.connect();
      expect((await admin.query('select pg_terminate_backend($1) as t', [pid])).rows).toEqual([{ t: true }]);
      await admin.end();
      await ended;
      // As against Postgres directly, node-postgres reports the FATAL, then the closed socket.
      expect(errors.map((e) => [e.severity, e.code, e.message])).toEqual([
        ['FATAL', '57P01', 'terminating connection due to administrator command'],
        [undefined, undefined, 'Connection terminated unexpectedly'],
      ]);
      const events = await eventually(async () => {
        const all = await s.events();
        expect(ofType(all, 'session.end')).toHaveLength(1);
        return all;
      });
      expect(events.map((e) => e.type)).toEqual(['session.start', 'statement', 'session.end']);
      expect(events[2]!.result).toMatchObject({
        status: 'error',
        sqlstate: '57P01',
        error: 'terminating connection due to administrator command',
      });
      expect(s.running.sessions).toBe(0);
    });
  });

  test('Postgres terminating the backend mid-query: the statement gets the FATAL error', async () => {
    await withSidecar({}, async (s) => {
      const client = new pg.Client({ host: s.host, port: s.port, user: 'agent', database: 'postgres' });
      client.on('error', () => {});
      await client.connect();
      const pid = (await client.query('select pg_backend_pid() as pid')).rows[0].pid as number;
      const pending = client.query('select pg_sleep(5)').catch((e: pg.DatabaseError) => e);
      const admin = db.client();
      await admin.connect();
      await eventually(async () => {
        const r = await admin.query(
          "select count(*)::int as n from pg_stat_activity where pid = $1 and state = 'active'",
          [pid],
        );
        expect(r.rows).toEqual([{ n: 1 }]);
      });
      await admin.query('select pg_terminate_backend($1)', [pid]);
      await admin.end();
      expect(await pending).toMatchObject({ code: '57P01' });
      const events = await eventually(async () => {
        const all = await s.events();
        expect(ofType(all, 'session.end')).toHaveLength(1);
        return all;
      });
      expect(events.map((e) => e.type)).toEqual(['session.start', 'statement', 'statement', 'session.end']);
      expect(events[2]!.statement!.text).toBe('select pg_sleep(5)');
      expect(events[2]!.result).toMatchObject({
        status: 'error',
        sqlstate: '57P01',
        error: 'terminating connection due to administrator command',
      });
      expect(events[3]!.result).toMatchObject({ status: 'error', sqlstate: '57P01' });
    });
  });
});

// ---- cancel requests ----------------------------------------------------------------------------

describe('cancel requests', () => {
  test('a CancelRequest with the key the sidecar issued cancels the query, over a TLS upstream too', async () => {
    await withSidecar({ route: { upstream: upstream({ sslMode: 'require' }) } }, async (s) => {
      const sql = postgres({ host: s.host, port: s.port, user: 'agent', database: 'postgres', max: 1 });
      const pid = (await sql`select pg_backend_pid() as pid`)[0]!.pid as number;
      const query = sql`select pg_sleep(5)`;
      const outcome = query.then(
        () => null,
        (e: { code?: string; message: string }) => e,
      );
      await new Promise((r) => setTimeout(r, 300));
      const began = Date.now();
      query.cancel();
      expect(await outcome).toMatchObject({ code: '57014', message: 'canceling statement due to user request' });
      expect(Date.now() - began).toBeLessThan(2000);
      // The session goes on; the key the client held was not Postgres's own.
      expect((await sql`select pg_backend_pid() = ${pid} as same`)[0]!.same).toBe(true);
      await sql.end();
      const sleep = (await s.statements()).find((e) => e.statement!.text === 'select pg_sleep(5)')!;
      expect(sleep.result).toMatchObject({ status: 'cancelled', sqlstate: '57014' });
    });
  });

  test('a CancelRequest with an unknown key is ignored and the connection closed', async () => {
    await withSidecar({}, async (s) => {
      const client = new pg.Client({ host: s.host, port: s.port, user: 'agent', database: 'postgres' });
      await client.connect();
      const running = client.query('select pg_sleep(0.5) as slept');
      const wire = await RawWire.open(s.host, s.port);
      wire.write(Buffer.concat([int32s(16, 80877102, 12345), Buffer.from([1, 2, 3, 4])]));
      await expect(wire.read(1)).rejects.toThrow('connection closed');
      expect((await running).rows).toEqual([{ slept: '' }]);
      await client.end();
      expect((await s.statements())[0]!.result).toMatchObject({ status: 'ok', tag: 'SELECT 1' });
    });
  });
});

// ---- raw wire and TLS relay ---------------------------------------------------------------------

function int32s(...values: number[]): Buffer {
  const b = Buffer.alloc(values.length * 4);
  for (const [i, v] of values.entries()) b.writeInt32BE(v, i * 4);
  return b;
}

function startupPacket(params: Record<string, string>): Buffer {
  const body = Buffer.concat([
    int32s(196608),
    ...Object.entries(params).map(([k, v]) => Buffer.from(`${k}\0${v}\0`)),
    Buffer.from([0]),
  ]);
  return Buffer.concat([int32s(body.length + 4), body]);
}

/** Reads bytes and backend messages off a raw socket. */
class RawWire {
  private buf = Buffer.alloc(0);
  private wake: (() => void) | null = null;
  private closed = false;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.wake?.();
    });
    const end = () => {
      this.closed = true;
      this.wake?.();
    };
    socket.on('close', end);
    socket.on('error', end);
  }

  static open(host: string, port: number): Promise<RawWire> {
    return new Promise((resolve, reject) => {
      const socket = netConnect({ host, port }, () => resolve(new RawWire(socket)));
      socket.once('error', reject);
    });
  }

  write(b: Buffer): void {
    this.socket.write(b);
  }

  async read(n: number): Promise<Buffer> {
    while (this.buf.length < n) {
      if (this.closed) throw new Error('connection closed');
      await new Promise<void>((r) => {
        this.wake = r;
      });
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  /** Message types up to and including the first of type `last`. */
  async readUntil(last: string): Promise<string[]> {
    const types: string[] = [];
    for (;;) {
      const header = await this.read(5);
      const type = String.fromCharCode(header[0]!);
      await this.read(header.readInt32BE(1) - 4);
      types.push(type);
      if (type === last) return types;
    }
  }

  close(): void {
    this.socket.destroy();
  }
}

/**
 * A TLS-terminating relay in front of Postgres: answers SSLRequest itself with `cert`, opens its
 * own TLS to Postgres, and records what the client sent in the clear.
 */
async function startTlsRelay(
  host: string,
  port: number,
  cert: { certFile: string; keyFile: string },
): Promise<{ port: number; fromClient: Buffer[]; close(): Promise<void> }> {
  const fromClient: Buffer[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((raw) => {
    sockets.add(raw);
    raw.on('error', () => {});
    raw.once('data', (request: Buffer) => {
      if (request.length !== 8 || request.readInt32BE(4) !== 80877103) return raw.destroy();
      raw.write('S');
      const front = new TLSSocket(raw, {
        isServer: true,
        cert: readFileSync(cert.certFile),
        key: readFileSync(cert.keyFile),
      });
      front.on('error', () => {});
      const pending: Buffer[] = [];
      front.on('data', (d: Buffer) => {
        fromClient.push(d);
        pending.push(d);
      });
      const upstream = netConnect({ host, port }, () => upstream.write(int32s(8, 80877103)));
      sockets.add(upstream);
      upstream.on('error', () => front.destroy());
      upstream.once('data', () => {
        const back = tlsConnect({ socket: upstream, rejectUnauthorized: false });
        back.on('error', () => front.destroy());
        back.once('secureConnect', () => {
          for (const d of pending.splice(0)) back.write(d);
          front.removeAllListeners('data');
          front.on('data', (d: Buffer) => {
            fromClient.push(d);
            back.write(d);
          });
          back.pipe(front);
        });
        front.on('close', () => back.destroy());
        back.on('close', () => front.destroy());
      });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as { port: number }).port,
    fromClient,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}
