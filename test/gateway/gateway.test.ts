/**
 * byline gateway end to end: a real Postgres, a real OpenID provider (oidc-provider over HTTPS),
 * psql as the client with an OIDC token as its password over TLS. Every event of a session names
 * the person (source oidc, issuer, subject, jti); what the gateway refuses is refused at sign-in,
 * with the unclaimed subject's refusal recorded as an event; a session past maxSessionAge ends.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { AuditEvent, GatewayConfig } from '@byline/api';
import { type RunningSidecar, startGateway } from '@byline/sidecar';
import { SignJWT } from 'jose';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestBrowser } from '../harness/browser.js';
import { issueCert, makeCa } from '../harness/certs.js';
import { CLI_CLIENT_ID, startProvider, type TestProvider } from '../harness/oidc-provider.js';
import { startPostgres, type TestPostgres } from '../harness/postgres.js';

const run = promisify(execFile);
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = join(ROOT, 'cli/bin/byline.mjs');

const dir = mkdtempSync(join(tmpdir(), 'byline-gateway-'));
let db: TestPostgres;
let op: TestProvider;
let gatewayCa: string;
let tls: { certFile: string; keyFile: string };

const identities = () => [
  {
    metadata: { name: 'ada', namespace: 'payments' },
    spec: { kind: 'human', oidc: [{ issuer: op.issuer, subject: 'ada-0001' }] },
  },
  {
    metadata: { name: 'dbas', namespace: 'payments' },
    spec: { kind: 'human', oidc: [{ issuer: op.issuer, group: 'dba' }] },
  },
];

async function gateway(
  name: string,
  oidc: Partial<GatewayConfig['oidc']> = {},
): Promise<{ gw: RunningSidecar; port: number; events: () => Promise<AuditEvent[]> }> {
  const passwordFile = join(dir, 'pw');
  writeFileSync(passwordFile, `${db.password}\n`);
  const file = join(dir, `${name}.jsonl`);
  const config: GatewayConfig = {
    routes: [
      {
        name: 'orders-db',
        listen: '127.0.0.1:0',
        upstream: { host: db.host, port: db.port, database: 'postgres', sslMode: 'disable' },
        credentials: { mode: 'inject', username: db.user, passwordFile },
        tls,
        access: 'admin',
      },
    ],
    oidc: { issuers: [{ issuer: op.issuer, audiences: [CLI_CLIENT_ID], caFile: op.caFile }], ...oidc },
    audit: { params: 'redacted', sinks: [{ file }] },
  };
  const gw = await startGateway(config, { identities, logger: pino({ level: 'silent' }) });
  return {
    gw,
    port: gw.routes[0]!.port,
    events: async () => {
      await gw.flush();
      return readFileSync(file, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as AuditEvent);
    },
  };
}

async function token(claims: Record<string, unknown> = {}, expiresInS = 300): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ sub: 'ada-0001', email: 'ada@example.com', email_verified: true, jti: 'jti-1', ...claims })
    .setProtectedHeader({ alg: 'RS256', kid: op.key.kid })
    .setIssuer(op.issuer)
    .setAudience(CLI_CLIENT_ID)
    .setIssuedAt(now)
    .setExpirationTime(now + expiresInS)
    .sign(op.key.privateKey);
}

function psql(port: number, password: string, sql: string, sslmode = 'verify-full') {
  return run('psql', ['-X', '-At', '-h', '127.0.0.1', '-p', String(port), '-U', 'ada', '-d', 'postgres', '-c', sql], {
    env: {
      ...process.env,
      PGPASSWORD: password,
      PGSSLMODE: sslmode,
      PGSSLROOTCERT: gatewayCa,
      PGCONNECT_TIMEOUT: '10',
    },
  }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
}

/** The SQLSTATE a refused sign-in carries (node-postgres exposes it; psql prints only the message). */
async function refusalCode(port: number, password: string): Promise<string | undefined> {
  const client = new pg.Client({
    host: '127.0.0.1',
    port,
    user: 'ada',
    database: 'postgres',
    password,
    ssl: { ca: readFileSync(gatewayCa, 'utf8') },
  });
  try {
    await client.connect();
  } catch (e) {
    return (e as { code?: string }).code;
  } finally {
    await client.end().catch(() => {});
  }
  return undefined;
}

beforeAll(async () => {
  db = await startPostgres();
  op = await startProvider({
    dir,
    accounts: { 'ada-0001': { email: 'ada@example.com', email_verified: true, groups: ['dba'] } },
  });
  gatewayCa = makeCa(dir, 'gateway-ca');
  tls = issueCert(dir, 'gateway-ca', 'gateway');
});
afterAll(async () => {
  await op?.stop();
  await db?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('byline gateway', () => {
  it('a valid token connects over TLS, and every event names the person, source oidc, with issuer, subject and jti', async () => {
    const { gw, port, events } = await gateway('valid');
    try {
      const password = await token();
      const r = await psql(port, password, 'select 41 + 1');
      expect(r.stderr).toBe('');
      expect(r.stdout.trim()).toBe('42');
      const all = await events();
      expect(all.map((e) => e.type)).toEqual(['session.start', 'statement', 'session.end']);
      for (const e of all) {
        expect(e.identity).toEqual({
          name: 'ada@example.com',
          kind: 'human',
          namespace: 'payments',
          serviceAccount: null,
          pod: null,
          source: 'oidc',
          oidc: { issuer: op.issuer, subject: 'ada-0001', agentIdentity: 'ada', jti: 'jti-1', sid: null },
        });
      }
      // the token never reaches the trail, not even its signature
      expect(JSON.stringify(all)).not.toContain(password.split('.')[2]);
    } finally {
      await gw.close();
    }
  });

  it('refuses a connection without TLS before asking for the token', async () => {
    const { gw, port, events } = await gateway('plain');
    try {
      const r = await psql(port, await token(), 'select 1', 'disable');
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/accepts only TLS connections/);
      expect(await events()).toEqual([]);
    } finally {
      await gw.close();
    }
  });

  it('refuses an expired token (28P01), naming the problem, and runs nothing', async () => {
    const { gw, port, events } = await gateway('expired');
    try {
      const r = await psql(port, await token({}, -120), 'select 1');
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/byline: the token from issuer "https:\/\/127\.0\.0\.1:\d+" has expired/);
      expect(await refusalCode(port, await token({}, -120))).toBe('28P01');
      expect(await events()).toEqual([]);
    } finally {
      await gw.close();
    }
  });

  it('refuses an unclaimed subject with 28000 naming issuer and subject, and records the refusal', async () => {
    const { gw, port, events } = await gateway('unclaimed');
    try {
      const r = await psql(port, await token({ sub: 'mallory-9', email: 'mallory@example.com' }), 'select 1');
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain(`subject "mallory-9" of issuer "${op.issuer}" is claimed by no AgentIdentity`);
      expect(await refusalCode(port, await token({ sub: 'mallory-9' }))).toBe('28000');
      const all = (await events()).slice(0, 2);
      expect(all.map((e) => e.type)).toEqual(['session.start', 'session.end']);
      expect(all[0]!.identity).toMatchObject({
        name: 'mallory@example.com',
        source: 'oidc',
        oidc: { issuer: op.issuer, subject: 'mallory-9', agentIdentity: null },
      });
      expect(all[0]!.result).toMatchObject({ status: 'error', sqlstate: '28000' });
    } finally {
      await gw.close();
    }
  });

  it('maps a person by group when no identity names their subject', async () => {
    const { gw, port, events } = await gateway('group');
    try {
      const r = await psql(
        port,
        await token({ sub: 'grace-2', email: 'grace@example.com', groups: ['dba'] }),
        'select 1',
      );
      expect(r.stderr).toBe('');
      // named after the person, under the team identity that let her in
      expect((await events())[0]!.identity).toMatchObject({
        name: 'grace@example.com',
        namespace: 'payments',
        oidc: { subject: 'grace-2', agentIdentity: 'dbas' },
      });
    } finally {
      await gw.close();
    }
  });

  it('ends a session past maxSessionAge with a FATAL', async () => {
    const { gw, port, events } = await gateway('age', { maxSessionAge: '2s' });
    try {
      const r = await psql(port, await token(), 'select pg_sleep(6)');
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/FATAL: {2}byline: the session reached its maximum age/);
      const end = (await events()).find((e) => e.type === 'session.end');
      expect(end?.result).toMatchObject({ status: 'error', sqlstate: '28000' });
    } finally {
      await gw.close();
    }
  });
});

describe('byline gateway: which namespaces may claim people', () => {
  it('with identityNamespaces, an AgentIdentity elsewhere claims nobody, however specific its claim', async () => {
    const { gw, port } = await gateway('namespaces', { identityNamespaces: ['platform'] });
    try {
      // "ada" and "dbas" live in payments, which this gateway does not trust to name people
      const r = await psql(port, await token(), 'select 1');
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain(`subject "ada-0001" of issuer "${op.issuer}" is claimed by no AgentIdentity`);
    } finally {
      await gw.close();
    }
    const trusting = await gateway('namespaces-payments', { identityNamespaces: ['payments'] });
    try {
      expect((await psql(trusting.port, await token(), 'select 1')).stderr).toBe('');
    } finally {
      await trusting.gw.close();
    }
  });
});

describe('byline gateway: how long a session lasts, and an issuer that is away', () => {
  it('without maxSessionAge, a session ends when its token has expired plus the grace', async () => {
    const { gw, port } = await gateway('token-lifetime', { sessionGrace: '1s' });
    try {
      const started = Date.now();
      const r = await psql(port, await token({}, 2), 'select pg_sleep(10)');
      expect(r.stderr).toMatch(/FATAL: {2}byline: the session reached its maximum age/);
      expect(Date.now() - started).toBeLessThan(8000);
    } finally {
      await gw.close();
    }
  });

  it('an issuer unreachable when the gateway starts: tokens are refused (57P03) until it answers', async () => {
    await op.stop();
    let started: Awaited<ReturnType<typeof gateway>> | undefined;
    try {
      started = await gateway('issuer-down', {});
      const r = await psql(started.port, await token(), 'select 1');
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/byline: cannot verify tokens of issuer "https:\/\/127\.0\.0\.1:\d+": discovery failed/);
      expect(await refusalCode(started.port, await token())).toBe('57P03');
      expect(await started.events()).toEqual([]);
    } finally {
      await op.restart();
    }
    try {
      // discovery is retried at most every 5 s, never per connection
      await new Promise((r) => setTimeout(r, 5100));
      const r = await psql(started.port, await token(), 'select 1');
      expect(r.stderr).toBe('');
      expect(r.stdout.trim()).toBe('1');
    } finally {
      await started.gw.close();
    }
  });
});

describe('byline login, then byline connect through the gateway', () => {
  it('a person signs in with the device flow and runs psql through byline connect; the trail names them', async () => {
    const { gw, port, events } = await gateway('connect');
    const env = { ...process.env, XDG_CONFIG_HOME: join(dir, 'config') };
    try {
      const login = spawn(
        process.execPath,
        [BIN, 'login', '--issuer', op.issuer, '--client-id', CLI_CLIENT_ID, '--ca-file', op.caFile],
        {
          cwd: ROOT,
          env,
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let out = '';
      const page = await new Promise<string>((res, rej) => {
        login.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          const m = /\(or open (\S+)\)/.exec(out);
          if (m) res(m[1]!);
        });
        login.once('exit', (code) => rej(new Error(`byline login exited ${code}: ${out}`)));
      });
      await new TestBrowser(op.ca).complete(page, { login: 'ada-0001', password: 'any' });
      expect(await new Promise((res) => login.once('exit', res))).toBe(0);

      const connect = await run(
        process.execPath,
        [
          BIN,
          'connect',
          'orders-db',
          '--host',
          '127.0.0.1',
          '--port',
          String(port),
          '--sslrootcert',
          gatewayCa,
          '--',
          '-X',
          '-At',
          '-d',
          'postgres',
          '-c',
          'select 7',
        ],
        { cwd: ROOT, env },
      );
      expect(connect.stdout.trim()).toBe('7');
      const statement = (await events()).find((e) => e.type === 'statement');
      expect(statement?.statement?.text).toBe('select 7');
      expect(statement?.identity).toMatchObject({
        name: 'ada@example.com',
        source: 'oidc',
        oidc: { subject: 'ada-0001', agentIdentity: 'ada' },
      });
    } finally {
      await gw.close();
    }
  });
});
