/**
 * The `byline` CLI run as a user runs it: `node cli/bin/byline.mjs sidecar --config FILE` in a
 * child process, against a real Postgres, with real psql. Bad input exits before listening, with
 * a message that names the field and what was expected.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AuditEvent } from '@byline/api';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { AUTH_USERS, freePort, startPostgres, TEST_PASSWORD, type TestPostgres } from '../harness/postgres.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = join(ROOT, 'cli/bin/byline.mjs');
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

let db: TestPostgres;
let dir: string;
let passwordFile: string;

beforeAll(async () => {
  db = await startPostgres();
  dir = mkdtempSync(join(tmpdir(), 'byline-cli-'));
  passwordFile = join(dir, 'password');
  writeFileSync(passwordFile, `${TEST_PASSWORD}\n`);
});

afterAll(async () => {
  await db?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function spawnCli(args: string[]): { child: ChildProcess; exited: Promise<Exit> } {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<Exit>((r) => child.once('close', (code, signal) => r({ code, signal, stdout, stderr })));
  return { child, exited };
}

/** Runs the CLI to completion (it must exit on its own within the timeout). */
async function runCli(args: string[], timeoutMs = 20_000): Promise<Exit> {
  const { child, exited } = spawnCli(args);
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  try {
    return await exited;
  } finally {
    clearTimeout(timer);
  }
}

async function waitForPort(port: number, exited: Promise<Exit>, timeoutMs = 20_000): Promise<void> {
  let done: Exit | undefined;
  void exited.then((e) => {
    done = e;
  });
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (done) throw new Error(`the CLI exited with ${done.code} before listening:\n${done.stderr}`);
    const ok = await new Promise<boolean>((r) => {
      const s = connect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        r(true);
      });
      s.once('error', () => r(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`nothing listened on ${port} within ${timeoutMs} ms`);
}

function psql(
  port: number,
  command: string,
  user = 'agent',
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(
      'psql',
      ['-X', '-A', '-t', '-w', '-h', '127.0.0.1', '-p', String(port), '-U', user, '-d', 'postgres', '-c', command],
      { env: { PATH: process.env.PATH ?? '' }, timeout: 20_000 },
      (error, stdout, stderr) => done({ code: error ? ((error as { code?: number }).code ?? -1) : 0, stdout, stderr }),
    );
  });
}

function readEvents(file: string): AuditEvent[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as AuditEvent);
}

function yamlConfig(port: number, auditFile: string, overrides: { passwordFile?: string } = {}): string {
  return `# a sidecar config as a user writes it
identity:
  static:
    name: cli-agent
    kind: agent
routes:
  - name: orders-db
    listen: 127.0.0.1:${port}
    upstream:
      host: ${db.host}
      port: ${db.port}
      database: postgres
      sslMode: disable
    credentials:
      mode: inject
      username: ${AUTH_USERS.scram}
      passwordFile: ${overrides.passwordFile ?? passwordFile}
      acceptAnyUser: true
audit:
  params: full
  sinks:
    - file: ${auditFile}
`;
}

function write(name: string, content: string): string {
  const file = join(dir, name);
  writeFileSync(file, content);
  return file;
}

describe('byline sidecar with a valid config', () => {
  test('YAML: starts, proxies psql, records; SIGTERM ends open sessions, flushes, and exits 0', async () => {
    const port = await freePort();
    const auditFile = join(dir, 'yaml-audit.jsonl');
    const { child, exited } = spawnCli(['sidecar', '--config', write('valid.yaml', yamlConfig(port, auditFile))]);
    try {
      await waitForPort(port, exited);
      const r = await psql(port, "select current_user || ' via cli'");
      expect(r).toEqual({ code: 0, stdout: `${AUTH_USERS.scram} via cli\n`, stderr: '' });

      // A session still open when the signal comes must still get its session.end.
      const open = new pg.Client({ host: '127.0.0.1', port, user: 'agent', database: 'postgres' });
      open.on('error', () => {});
      await open.connect();
      await open.query('select 1 as held');

      child.kill('SIGTERM');
      const exit = await exited;
      expect(exit.code).toBe(0);
      expect(exit.signal).toBe(null);
      expect(exit.stderr).toBe('');
      const logs = exit.stdout
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      // JSON lines with level names; the start line says the version and what listens where.
      expect(logs.every((l) => typeof l.level === 'string' && typeof l.time === 'string')).toBe(true);
      expect(logs.find((l) => l.msg === `byline ${VERSION} sidecar started`)).toMatchObject({
        level: 'info',
        component: 'sidecar',
        version: VERSION,
        routes: [{ name: 'orders-db', listen: `127.0.0.1:${port}`, upstream: `${db.host}:${db.port}/postgres` }],
        metrics: null,
        sinks: [`file:${auditFile}`],
        identity: { name: 'cli-agent', kind: 'agent', source: 'static' },
      });
      // The shutdown, in the same format.
      expect(logs.filter((l) => ['stopping', 'stopped'].some((m) => String(l.msg).startsWith(m)))).toEqual([
        expect.objectContaining({
          level: 'info',
          component: 'sidecar',
          signal: 'SIGTERM',
          msg: 'stopping: closing sessions and flushing the audit trail',
        }),
        expect.objectContaining({ level: 'info', component: 'sidecar', msg: 'stopped' }),
      ]);
      expect(logs.find((l) => l.msg === 'route listening')).toMatchObject({
        route: 'orders-db',
        listen: `127.0.0.1:${port}`,
        upstream: `${db.host}:${db.port}`,
      });
      await open.end().catch(() => {});

      const events = readEvents(auditFile);
      expect(events.map((e) => [e.type, e.statement?.text ?? null])).toEqual([
        ['session.start', null],
        ['statement', "select current_user || ' via cli'"],
        ['session.end', null],
        ['session.start', null],
        ['statement', 'select 1 as held'],
        ['session.end', null],
      ]);
      for (const e of events) {
        expect(e.identity).toEqual({
          name: 'cli-agent',
          kind: 'agent',
          namespace: null,
          serviceAccount: null,
          pod: null,
          source: 'static',
        });
        expect(e.target).toEqual({ route: 'orders-db', host: db.host, port: db.port, database: 'postgres' });
      }
      expect(events[1]!.result).toMatchObject({ status: 'ok', rows: 1, tag: 'SELECT 1' });
      expect(events[2]!.result).toMatchObject({ status: 'ok', error: null });
      expect(events[5]!.result).toMatchObject({ status: 'error', error: 'the sidecar is shutting down' });
      // One hash chain across the whole file.
      expect(events.map((e) => e.chain.seq)).toEqual([1, 2, 3, 4, 5, 6]);
      expect(events.slice(1).map((e) => e.chain.prev)).toEqual(events.slice(0, -1).map((e) => e.chain.hash));
    } finally {
      child.kill('SIGKILL');
    }
  });

  test('JSON config works too, and SIGINT stops it the same way', async () => {
    const port = await freePort();
    const auditFile = join(dir, 'json-audit.jsonl');
    const config = {
      identity: { static: { name: 'json-agent', kind: 'service' } },
      routes: [
        {
          name: 'json-db',
          listen: `127.0.0.1:${port}`,
          upstream: { host: db.host, port: db.port, database: 'postgres', sslMode: 'disable' },
          credentials: { mode: 'passthrough' },
          access: 'read',
        },
      ],
      audit: { sinks: [{ file: auditFile }] },
      log: { level: 'warn' },
    };
    const { child, exited } = spawnCli(['sidecar', '-c', write('valid.json', JSON.stringify(config, null, 2))]);
    try {
      await waitForPort(port, exited);
      expect(await psql(port, 'select 40 + 2', 'postgres')).toEqual({ code: 0, stdout: '42\n', stderr: '' });
      child.kill('SIGINT');
      const exit = await exited;
      expect(exit.code).toBe(0);
      expect(exit.stdout).toBe(''); // log level warn: no info lines
      const events = readEvents(auditFile);
      expect(events.map((e) => e.type)).toEqual(['session.start', 'statement', 'session.end']);
      expect(events[1]!.identity).toMatchObject({ name: 'json-agent', kind: 'service' });
      expect(events[1]!.session.dbUser).toBe('postgres');
      expect(events[1]!.statement).toMatchObject({ text: 'select 40 + 2', paramsMode: 'redacted' });
    } finally {
      child.kill('SIGKILL');
    }
  });
});

describe('byline sidecar refuses bad input before listening', () => {
  const valid = () => yamlConfig(1, join(dir, 'never.jsonl'));

  test.concurrent.each<[string, () => string, string[]]>([
    [
      'missing routes',
      () => 'identity:\n  static: { name: a, kind: agent }\naudit:\n  sinks: [{ file: /tmp/x }]\n',
      ['  - routes: required field is missing'],
    ],
    [
      'a typo in a field name',
      () => valid().replace('    upstream:', '    upstrem:'),
      [
        '  - routes[0].upstream: required field is missing',
        '  - routes[0].upstrem: unknown field (did you mean "upstream"?)',
      ],
    ],
    [
      'a port that is not a number',
      () => valid().replace(`port: ${db.port}`, 'port: "5432x"'),
      ['  - routes[0].upstream.port: expected integer, got "5432x"'],
    ],
    [
      'sslMode: maybe',
      () => valid().replace('sslMode: disable', 'sslMode: maybe'),
      ['  - routes[0].upstream.sslMode: expected one of "disable", "prefer", "require", "verify-full", got "maybe"'],
    ],
    [
      'inject without username',
      () => valid().replace(/ {6}username: .*\n/, ''),
      ['  - routes[0].credentials: give username or usernameFile (exactly one)'],
    ],
    [
      'an unknown credentials mode',
      () => valid().replace('mode: inject', 'mode: injected'),
      ['  - routes[0].credentials.mode: expected one of "inject", "passthrough", got "injected"'],
    ],
    [
      'audit.params: everything',
      () => valid().replace('params: full', 'params: everything'),
      ['  - audit.params: expected one of "none", "redacted", "full", got "everything"'],
    ],
    [
      'a listen address without a port',
      () => valid().replace('listen: 127.0.0.1:1', 'listen: 127.0.0.1'),
      ['  - routes[0].listen: expected host:port with a port from 0 to 65535, got "127.0.0.1"'],
    ],
    [
      'a listen port above 65535',
      () => valid().replace('listen: 127.0.0.1:1', 'listen: 127.0.0.1:70000'),
      ['  - routes[0].listen: expected host:port with a port from 0 to 65535, got "127.0.0.1:70000"'],
    ],
  ])('%s → exit 2 naming the field', async (name, content, expected) => {
    const file = write(`bad-${name.replace(/\W+/g, '-')}.yaml`, content());
    const exit = await runCli(['sidecar', '--config', file]);
    expect(exit.code).toBe(2);
    expect(exit.stdout).toBe('');
    expect(exit.stderr).toBe([`byline sidecar: invalid sidecar config (${file}):`, ...expected, ''].join('\n'));
  });

  test.concurrent('invalid YAML → exit 2 saying where', async () => {
    const file = write('broken.yaml', 'routes: [ { name: x\n');
    const exit = await runCli(['sidecar', '--config', file]);
    expect(exit.code).toBe(2);
    expect(exit.stdout).toBe('');
    expect(exit.stderr).toContain(`byline sidecar: invalid sidecar config:\n  - ${file} is not valid YAML or JSON: `);
    expect(exit.stderr).toContain('at line 2, column 1:');
  });

  test.concurrent('duplicate keys are refused, not silently merged', async () => {
    const file = write('dup.yaml', valid().replace('audit:\n', 'audit:\n  params: none\n'));
    const exit = await runCli(['sidecar', '--config', file]);
    expect(exit.code).toBe(2);
    expect(exit.stderr).toContain('Map keys must be unique');
  });

  test.concurrent('a config file that does not exist → exit 2 naming it', async () => {
    const file = join(dir, 'no-such.yaml');
    const exit = await runCli(['sidecar', '--config', file]);
    expect(exit).toEqual({
      code: 2,
      signal: null,
      stdout: '',
      stderr: `byline sidecar: invalid sidecar config:\n  - cannot read ${file}: ENOENT: no such file or directory, open '${file}'\n`,
    });
  });

  test.concurrent('an unreadable passwordFile → non-zero exit naming the file, nothing listening', async () => {
    const port = await freePort();
    const missing = join(dir, 'no-password-here');
    const file = write('nopw.yaml', yamlConfig(port, join(dir, 'nopw.jsonl'), { passwordFile: missing }));
    const exit = await runCli(['sidecar', '--config', file]);
    expect(exit.code).toBe(1);
    expect(exit.stdout).toBe('');
    expect(exit.stderr).toBe(
      `byline sidecar: route "orders-db": credentials.passwordFile ${missing} cannot be read: ENOENT: no such file or directory, open '${missing}'\n`,
    );
  });

  test.concurrent('a passwordFile without read permission is caught too', async () => {
    if (process.getuid?.() === 0) {
      // root reads any file; a directory where a file is expected fails for everyone.
      const file = write('dirpw.yaml', yamlConfig(await freePort(), join(dir, 'dirpw.jsonl'), { passwordFile: dir }));
      const exit = await runCli(['sidecar', '--config', file]);
      expect(exit.code).toBe(1);
      expect(exit.stderr).toBe(
        `byline sidecar: route "orders-db": credentials.passwordFile ${dir} cannot be read: EISDIR: illegal operation on a directory, read\n`,
      );
      return;
    }
    const locked = write('locked-password', 'x');
    chmodSync(locked, 0o000);
    const file = write('lockedpw.yaml', yamlConfig(await freePort(), join(dir, 'l.jsonl'), { passwordFile: locked }));
    const exit = await runCli(['sidecar', '--config', file]);
    expect(exit.code).toBe(1);
    expect(exit.stderr).toContain(`credentials.passwordFile ${locked} cannot be read: EACCES`);
  });

  test.concurrent('a listen port already in use → exit 1 naming the route and address', async () => {
    const port = await freePort();
    const taken = await new Promise<Server>((r) => {
      const s = createServer();
      s.listen(port, '127.0.0.1', () => r(s));
    });
    try {
      const file = write('taken.yaml', yamlConfig(port, join(dir, 'taken.jsonl')));
      const exit = await runCli(['sidecar', '--config', file]);
      expect(exit.code).toBe(1);
      expect(exit.stderr).toBe(
        `byline sidecar: route "orders-db" cannot listen on 127.0.0.1:${port}: listen EADDRINUSE: address already in use 127.0.0.1:${port}\n`,
      );
    } finally {
      taken.close();
    }
  });

  test.concurrent('missing --config → exit 2', async () => {
    const exit = await runCli(['sidecar']);
    expect(exit).toEqual({
      code: 2,
      signal: null,
      stdout: '',
      stderr: 'byline sidecar: invalid arguments:\n  - --config FILE (or --config-env NAME) is required\n',
    });
  });

  test.concurrent('an unknown option → exit 2 naming it', async () => {
    const exit = await runCli(['sidecar', '--confg', 'x.yaml']);
    expect(exit.code).toBe(2);
    expect(exit.stderr).toBe(
      'byline sidecar: Unknown option \'--confg\'\nrun "byline sidecar --help" for its options\n',
    );
  });

  test.concurrent('an unknown subcommand → exit 2 with the usage', async () => {
    const exit = await runCli(['sidcar', '--config', 'x.yaml']);
    expect(exit.code).toBe(2);
    expect(exit.stdout).toBe('');
    expect(exit.stderr).toMatch(/^byline: unknown command "sidcar"\n\nusage: byline <command> \[options\]\n/);
    expect(exit.stderr).toMatch(/\n {2}sidecar +run the Postgres proxy/);
  });

  test.concurrent('no subcommand → usage and exit 2; help → usage and exit 0', async () => {
    const [none, help] = await Promise.all([runCli([]), runCli(['help'])]);
    expect(none.code).toBe(2);
    expect(none.stdout).toMatch(/^usage: byline <command>/);
    expect(help.code).toBe(0);
    expect(help.stdout).toBe(none.stdout);
  });
});

describe('byline explains itself', () => {
  test.concurrent('--version and -V print the version of this build', async () => {
    const [long, short] = await Promise.all([runCli(['--version']), runCli(['-V'])]);
    expect(long).toEqual({
      code: 0,
      signal: null,
      stdout: `byline ${VERSION} (node ${process.versions.node})\n`,
      stderr: '',
    });
    expect(short.stdout).toBe(long.stdout);
  });

  test.concurrent('--help and -h list every command; exit 0', async () => {
    const [long, short] = await Promise.all([runCli(['--help']), runCli(['-h'])]);
    expect(long.code).toBe(0);
    expect(long.stderr).toBe('');
    for (const name of ['sidecar', 'collector', 'operator', 'trail', 'verify', 'demo']) {
      expect(long.stdout).toMatch(new RegExp(`\\n {2}${name} +\\S`));
    }
    expect(short.stdout).toBe(long.stdout);
  });

  // Before the command table each of these answered "Unknown option '--help'" and exited 2.
  test.concurrent.each([
    ['sidecar', ['--config', '--config-env', '--log-format', '--log-level']],
    ['collector', ['--config', '--log-format']],
    ['operator', ['--namespace', '--collector-url', '--webhook-listen', '--no-leader-election', '--log-format']],
    ['trail', ['--collector', '--token-file', '--identity', '--since', '--format']],
    ['verify', ['--collector', '--store', '--session']],
    ['demo', ['--keep']],
  ])('byline %s --help, -h and `help NAME` show its options; exit 0', async (name, options) => {
    const [long, short, viaHelp] = await Promise.all([
      runCli([name, '--help']),
      // -h wins over anything else on the line, even arguments that would not parse.
      runCli([name, '--no-such-option', '-h']),
      runCli(['help', name]),
    ]);
    expect(long.code).toBe(0);
    expect(long.stderr).toBe('');
    expect(long.stdout).toMatch(new RegExp(`^usage: byline ${name}`));
    for (const o of [...options, '--help']) expect(long.stdout).toContain(`${o}`);
    expect(short).toEqual(long);
    expect(viaHelp).toEqual(long);
  });

  test.concurrent('help for an unknown command → exit 2 with the command list', async () => {
    const exit = await runCli(['help', 'sidcar']);
    expect(exit.code).toBe(2);
    expect(exit.stderr).toMatch(/^byline: unknown command "sidcar"\n\nusage: byline <command>/);
  });

  test.concurrent('a rule the table cannot say is a usage error too: exit 2 pointing at the help', async () => {
    const exit = await runCli([
      'operator',
      '--namespace',
      'x',
      '--collector-url',
      'http://c',
      '--webhook-namespace-label',
      'bad',
    ]);
    expect(exit).toEqual({
      code: 2,
      signal: null,
      stdout: '',
      stderr:
        'byline operator: --webhook-namespace-label: expected KEY=VALUE, got "bad"\nrun "byline operator --help" for its options\n',
    });
  });

  test.concurrent('a value outside the choices → exit 2 naming them', async () => {
    const exit = await runCli(['sidecar', '--config', 'x.yaml', '--log-format', 'xml']);
    expect(exit.code).toBe(2);
    expect(exit.stderr).toBe(
      'byline sidecar: --log-format must be json or pretty, got "xml"\nrun "byline sidecar --help" for its options\n',
    );
  });
});

describe('byline sidecar: config paths and log formats', () => {
  test('relative paths in the config resolve against its directory, not the working directory', async () => {
    const port = await freePort();
    const confDir = mkdtempSync(join(dir, 'conf-'));
    writeFileSync(join(confDir, 'pw'), `${TEST_PASSWORD}\n`);
    // passwordFile and the file sink are relative; the CLI runs from the repository root.
    const config = yamlConfig(port, 'audit/rel.jsonl', { passwordFile: 'pw' }).replace(
      'audit:\n',
      'audit:\n  spoolDir: spool\n',
    );
    mkdirSync(join(confDir, 'audit'));
    writeFileSync(join(confDir, 'sidecar.yaml'), config);
    const { child, exited } = spawnCli([
      'sidecar',
      '--config',
      join(confDir, 'sidecar.yaml'),
      '--log-format',
      'pretty',
    ]);
    try {
      await waitForPort(port, exited);
      expect(await psql(port, 'select 6 * 7')).toEqual({ code: 0, stdout: '42\n', stderr: '' });
      child.kill('SIGTERM');
      const exit = await exited;
      expect(exit.code).toBe(0);
      expect(readEvents(join(confDir, 'audit/rel.jsonl')).map((e) => e.type)).toEqual([
        'session.start',
        'statement',
        'session.end',
      ]);
      // --log-format pretty: one readable line per record, start and shutdown alike.
      const lines = exit.stdout.split('\n').filter(Boolean);
      const started = lines.find((l) => l.includes(`sidecar: byline ${VERSION} sidecar started`));
      expect(started).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO {2}sidecar: /);
      expect(started).toContain(`listen":"127.0.0.1:${port}"`);
      expect(started).toContain(`sinks=["file:${join(confDir, 'audit/rel.jsonl')}"]`);
      expect(started).toContain(`spool=${join(confDir, 'spool')}`);
      expect(lines.some((l) => /INFO {2}sidecar: stopping: closing sessions .* signal=SIGTERM$/.test(l))).toBe(true);
      expect(lines.at(-1)).toMatch(/INFO {2}sidecar: stopped$/);
      expect(lines.every((l) => !l.startsWith('{'))).toBe(true);
    } finally {
      child.kill('SIGKILL');
    }
  });

  test('the metrics endpoint has byline_build_info and the standard process_* and nodejs_* series', async () => {
    const port = await freePort();
    const metricsPort = await freePort();
    const config = `${yamlConfig(port, join(dir, 'metrics.jsonl'))}metrics:\n  listen: 127.0.0.1:${metricsPort}\n`;
    const { child, exited } = spawnCli(['sidecar', '--config', write('metrics.yaml', config)]);
    try {
      await waitForPort(port, exited);
      const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      expect(text).toContain(`byline_build_info{version="${VERSION}",nodejs="${process.versions.node}"} 1`);
      for (const series of [
        'process_cpu_user_seconds_total',
        'process_resident_memory_bytes',
        'process_start_time_seconds',
        'nodejs_eventloop_lag_seconds',
        'nodejs_heap_size_used_bytes',
      ]) {
        expect(text).toMatch(new RegExp(`^${series} `, 'm'));
      }
    } finally {
      child.kill('SIGKILL');
    }
  });
});
