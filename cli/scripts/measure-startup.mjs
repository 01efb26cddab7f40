#!/usr/bin/env node
/**
 * `npm run measure:startup`: how fast `byline sidecar` is ready and how much memory it holds idle,
 * as a pod's startup probe and memory request see it. Starts the sidecar (file sink and spool, a
 * metrics listener, no Postgres needed) several times; for each run measures exec → first 200 from
 * /readyz, then the resident set size after it has idled for a few seconds. Prints the medians.
 * --breakdown adds where the last run's resident memory is, from /proc/PID/smaps.
 * --node-flag (repeatable) gives node a flag on its command line, as the image's ENTRYPOINT does;
 * the environment (NODE_OPTIONS, MALLOC_ARENA_MAX) is passed through, so a pod's can be set.
 *
 * Usage: node cli/scripts/measure-startup.mjs [--node PATH] [--bin PATH] [--runs N] [--idle-ms MS]
 *          [--node-flag FLAG]... [--breakdown]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const { values } = parseArgs({
  options: {
    node: { type: 'string', default: process.execPath },
    bin: { type: 'string', default: join(root, 'cli/bin/byline.mjs') },
    runs: { type: 'string', default: '7' },
    'idle-ms': { type: 'string', default: '3000' },
    'node-flag': { type: 'string', multiple: true, default: [] },
    breakdown: { type: 'boolean', default: false },
  },
});

function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

/**
 * Resident KiB by kind of mapping. The node binary's pages are file-backed (shared by every process
 * running that file, dropped under memory pressure and read again); glibc gives each thread that
 * allocates its own arena, reserved 64 MiB at a time; everything else anonymous is mostly V8's heap
 * (its spaces are 256 KiB pages), WASM memory and large malloc blocks (mmapped on their own).
 */
function smapsBreakdown(pid, nodePath) {
  const kinds = new Map();
  let kind = '';
  let previous = { path: '', end: 0 };
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const header = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (header) {
      const [start, end] = [Number.parseInt(header[1], 16), Number.parseInt(header[2], 16)];
      const [perms, path] = [header[3], header[4]];
      if (path === nodePath)
        kind = `node binary ${perms === 'r-xp' ? 'code' : perms === 'r--p' ? 'read-only data' : 'data'}`;
      else if (!path && previous.path === nodePath && previous.end === start) kind = 'node binary data';
      else if (/\.so[.\d]*$/.test(path)) kind = 'shared libraries';
      else if (path === '[heap]') kind = 'malloc main arena ([heap])';
      else if (path.startsWith('[')) kind = path;
      else if (path) kind = `file ${path.split('/').pop()}`;
      else if (
        end - start === 64 * 2 ** 20 ||
        (start % (64 * 2 ** 20) === 0 && perms === 'rw-p' && end - start < 64 * 2 ** 20)
      )
        kind = 'malloc thread arenas';
      else if (perms.includes('x')) kind = 'anonymous executable (JIT code)';
      else kind = 'other anonymous (V8 heap, WASM memory, large buffers)';
      previous = { path, end };
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) kinds.set(kind, (kinds.get(kind) ?? 0) + Number(rss[1]));
  }
  return [...kinds].filter(([, kib]) => kib >= 64).sort((a, b) => b[1] - a[1]);
}

const rssMiB = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const dir = mkdtempSync(join(tmpdir(), 'byline-startup-'));
const ready = [];
const idle = [];
let breakdown = [];
try {
  writeFileSync(join(dir, 'pw'), 'secret\n');
  for (let i = 0; i < Number(values.runs); i++) {
    const metrics = await freePort();
    const config = join(dir, `sidecar-${i}.yaml`);
    writeFileSync(
      config,
      `identity: { static: { name: startup-agent, kind: agent } }
routes:
  - name: db
    listen: 127.0.0.1:0
    upstream: { host: 127.0.0.1, port: 5432, database: postgres, sslMode: disable }
    credentials: { mode: inject, username: u, passwordFile: ${join(dir, 'pw')} }
audit: { spoolDir: ${join(dir, `spool-${i}`)}, sinks: [ { file: ${join(dir, `audit-${i}.jsonl`)} } ] }
metrics: { listen: 127.0.0.1:${metrics} }
log: { level: warn }
`,
    );
    const started = performance.now();
    const child = spawn(values.node, [...values['node-flag'], values.bin, 'sidecar', '--config', config], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    const exited = new Promise((r) => child.once('exit', r));
    let readyMs = 0;
    while (!readyMs) {
      if (child.exitCode !== null) throw new Error(`the sidecar exited with ${child.exitCode}`);
      const ok = await fetch(`http://127.0.0.1:${metrics}/readyz`).then(
        (r) => r.status === 200,
        () => false,
      );
      if (ok) readyMs = performance.now() - started;
      else await new Promise((r) => setTimeout(r, 2));
    }
    await new Promise((r) => setTimeout(r, Number(values['idle-ms'])));
    ready.push(readyMs);
    idle.push(rssMiB(child.pid));
    if (values.breakdown) breakdown = smapsBreakdown(child.pid, realpathSync(values.node));
    child.kill('SIGTERM');
    await exited;
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
const version = await new Promise((r) => {
  const c = spawn(values.node, ['--version']);
  let out = '';
  c.stdout.on('data', (d) => {
    out += d;
  });
  c.once('close', () => r(out.trim()));
});
process.stdout.write(
  `node ${version}, ${ready.length} runs: exec → /readyz median ${median(ready).toFixed(0)} ms ` +
    `(min ${Math.min(...ready).toFixed(0)}, max ${Math.max(...ready).toFixed(0)}); ` +
    `idle RSS median ${median(idle).toFixed(1)} MiB (min ${Math.min(...idle).toFixed(1)}, max ${Math.max(...idle).toFixed(1)})\n`,
);
if (values.breakdown) {
  process.stdout.write('resident memory of the last run, by mapping (MiB):\n');
  for (const [kind, kib] of breakdown) process.stdout.write(`  ${(kib / 1024).toFixed(1).padStart(6)}  ${kind}\n`);
}
