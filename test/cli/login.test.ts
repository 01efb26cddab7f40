/**
 * `byline login`, `byline env` as a person runs them (the CLI in a child process), against a real
 * OpenID provider (oidc-provider over HTTPS). The test plays the person at the provider's pages.
 * Every token the CLI hands out is checked with the gateway's own verifier.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { OidcVerifier } from '@byline/sidecar';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tokenFile } from '../../cli/src/token-cache.js';
import { TestBrowser } from '../harness/browser.js';
import {
  CI_CLIENT_ID,
  CI_CLIENT_SECRET,
  CLI_CLIENT_ID,
  GATEWAY_AUDIENCE,
  startProvider,
  type TestProvider,
} from '../harness/oidc-provider.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = join(ROOT, 'cli/bin/byline.mjs');

const dir = mkdtempSync(join(tmpdir(), 'byline-login-'));
const home = join(dir, 'config');
const env = { ...process.env, XDG_CONFIG_HOME: home };
let op: TestProvider;
let verifier: OidcVerifier;

beforeAll(async () => {
  op = await startProvider({
    dir,
    accounts: { 'ada-0001': { email: 'ada@example.com', email_verified: true, groups: ['dba'] } },
  });
  verifier = new OidcVerifier([
    { issuer: op.issuer, audiences: [CLI_CLIENT_ID, GATEWAY_AUDIENCE], caFile: op.caFile, nameClaim: 'email' },
  ]);
});
afterAll(async () => {
  await op?.stop();
  rmSync(dir, { recursive: true, force: true });
});

interface Run {
  child: ChildProcess;
  /** Resolves with stdout so far once it matches. */
  waitFor(re: RegExp): Promise<RegExpExecArray>;
  exited: Promise<{ code: number | null; stdout: string; stderr: string }>;
}

function run(args: string[]): Run {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const waiters: { re: RegExp; resolve: (m: RegExpExecArray) => void }[] = [];
  child.stdout!.on('data', (d: Buffer) => {
    stdout += d.toString();
    for (const w of [...waiters]) {
      const m = w.re.exec(stdout);
      if (m) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  });
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<{ code: number | null; stdout: string; stderr: string }>((res) =>
    child.once('exit', (code) => res({ code, stdout, stderr })),
  );
  return {
    child,
    exited,
    waitFor: (re) =>
      new Promise((res, rej) => {
        const m = re.exec(stdout);
        if (m) return res(m);
        waiters.push({ re, resolve: res });
        exited.then((e) => rej(new Error(`exited ${e.code} before printing ${re}: ${e.stdout}${e.stderr}`)));
      }),
  };
}

async function envOf(...args: string[]): Promise<Record<string, string>> {
  const { code, stdout, stderr } = await run(['env', 'orders-db', '--host', '127.0.0.1', '--port', '6432', ...args])
    .exited;
  expect(code, stderr).toBe(0);
  return Object.fromEntries(
    [...stdout.matchAll(/^export ([A-Z]+)='([^']*)'$/gm)].map((m) => [m[1]!, m[2]!] as [string, string]),
  );
}

const mode = (path: string) => statSync(path).mode & 0o777;

describe('byline login (device flow) and byline env', () => {
  it('signs a person in through the device flow, caches the tokens 0600, and env hands out a token naming them', async () => {
    const login = run(['login', '--issuer', op.issuer, '--client-id', CLI_CLIENT_ID, '--ca-file', op.caFile]);
    const [, page] = await login.waitFor(/\(or open (\S+)\)/);
    const last = await new TestBrowser(op.ca).complete(page!, { login: 'ada-0001', password: 'any' });
    expect(last).toContain('Sign-in Success');
    const done = await login.exited;
    expect(done.code, done.stderr).toBe(0);
    expect(done.stdout).toContain('signed in as ada@example.com');

    const file = tokenFile(op.issuer, CLI_CLIENT_ID, env);
    expect(mode(file)).toBe(0o600);
    expect(mode(dirname(file))).toBe(0o700);

    const vars = await envOf();
    expect(vars).toMatchObject({ PGHOST: '127.0.0.1', PGPORT: '6432', PGSSLMODE: 'verify-full' });
    const verified = await verifier.verify(vars.PGPASSWORD!);
    expect(verified.claims).toEqual({
      issuer: op.issuer,
      subject: 'ada-0001',
      email: 'ada@example.com',
      groups: ['dba'],
    });
  });

  it('refreshes an expired token with the refresh token', async () => {
    const file = tokenFile(op.issuer, CLI_CLIENT_ID, env);
    const before = JSON.parse(readFileSync(file, 'utf8'));
    expect(before.refreshToken).toEqual(expect.any(String));
    writeFileSync(file, JSON.stringify({ ...before, expiresAtMs: Date.now() - 1000 }), { mode: 0o600 });

    const vars = await envOf();
    await expect(verifier.verify(vars.PGPASSWORD!)).resolves.toMatchObject({ claims: { subject: 'ada-0001' } });
    const after = JSON.parse(readFileSync(file, 'utf8'));
    expect(after.expiresAtMs).toBeGreaterThan(Date.now());
    // the refresh grant ran: the provider rotates a public client's refresh token on every use
    expect(after.refreshToken).toEqual(expect.any(String));
    expect(after.refreshToken).not.toBe(before.refreshToken);
    expect(after.idToken).toBe(vars.PGPASSWORD);
    expect(mode(file)).toBe(0o600);
  });

  it('says to sign in again when the refresh token is no longer accepted', async () => {
    const file = tokenFile(op.issuer, CLI_CLIENT_ID, env);
    const good = readFileSync(file, 'utf8');
    writeFileSync(file, JSON.stringify({ ...JSON.parse(good), expiresAtMs: 0, refreshToken: 'revoked' }), {
      mode: 0o600,
    });
    try {
      const { code, stdout, stderr } = await run(['env', 'orders-db', '--host', '127.0.0.1', '--port', '6432']).exited;
      expect(code).toBe(1);
      expect(stdout).not.toContain('PGPASSWORD');
      expect(stderr).toMatch(/has expired and refreshing it failed \(.*\): run byline login again/);
    } finally {
      writeFileSync(file, good, { mode: 0o600 });
    }
  });

  it('refuses to use a token file others can read', async () => {
    const file = tokenFile(op.issuer, CLI_CLIENT_ID, env);
    chmodSync(file, 0o644);
    try {
      const { code, stderr } = await run(['env', 'orders-db', '--host', '127.0.0.1', '--port', '6432']).exited;
      expect(code).toBe(1);
      expect(stderr).toMatch(/is readable by others; its tokens may be compromised: run byline login again/);
    } finally {
      chmodSync(file, 0o600);
    }
  });

  it('refuses a plaintext sslmode for the token', async () => {
    const { code, stderr } = await run(['env', 'orders-db', '--host', 'h', '--port', '1', '--sslmode', 'disable'])
      .exited;
    expect(code).toBe(2);
    expect(stderr).toMatch(/--sslmode must be verify-full, verify-ca or require/);
  });
});

describe('byline login --browser (authorization code + PKCE, loopback redirect)', () => {
  it('signs a person in through the browser page and the 127.0.0.1 callback', async () => {
    const login = run([
      'login',
      '--browser',
      '--issuer',
      op.issuer,
      '--client-id',
      CLI_CLIENT_ID,
      '--ca-file',
      op.caFile,
    ]);
    const [, url] = await login.waitFor(/sign in:\n(\S+)\n/);
    expect(new URL(url!).searchParams.get('code_challenge_method')).toBe('S256');
    expect(new URL(url!).searchParams.get('redirect_uri')).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/callback$/);
    const last = await new TestBrowser(op.ca).complete(url!, { login: 'ada-0001', password: 'any' });
    expect(last).toContain('Signed in to byline');
    const done = await login.exited;
    expect(done.code, done.stderr).toBe(0);
    const vars = await envOf();
    await expect(verifier.verify(vars.PGPASSWORD!)).resolves.toMatchObject({ claims: { subject: 'ada-0001' } });
  });
});

describe('byline login for a machine client (client credentials)', () => {
  it('gets a JWT access token for the gateway audience, and gets a new one when it expires', async () => {
    const secretFile = join(dir, 'ci-secret');
    writeFileSync(secretFile, `${CI_CLIENT_SECRET}\n`, { mode: 0o600 });
    const login = run([
      'login',
      '--issuer',
      op.issuer,
      '--client-id',
      CI_CLIENT_ID,
      '--client-secret-file',
      secretFile,
      '--resource',
      `urn:byline:${GATEWAY_AUDIENCE}`,
      '--ca-file',
      op.caFile,
    ]);
    const done = await login.exited;
    expect(done.code, done.stderr).toBe(0);
    const file = tokenFile(op.issuer, CI_CLIENT_ID, env);
    expect(readFileSync(file, 'utf8')).not.toContain(CI_CLIENT_SECRET);

    const first = (await envOf('--issuer', op.issuer, '--client-id', CI_CLIENT_ID)).PGPASSWORD!;
    const verified = await verifier.verify(first);
    expect(verified.claims.subject).toBe(CI_CLIENT_ID);

    const cached = JSON.parse(readFileSync(file, 'utf8'));
    writeFileSync(file, JSON.stringify({ ...cached, expiresAtMs: 0 }), { mode: 0o600 });
    const second = (await envOf('--issuer', op.issuer, '--client-id', CI_CLIENT_ID)).PGPASSWORD!;
    expect(second).not.toBe(first);
    await expect(verifier.verify(second)).resolves.toMatchObject({ claims: { subject: CI_CLIENT_ID } });
  });
});
