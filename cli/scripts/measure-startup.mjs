#!/usr/bin/env node
/**
 * `npm run measure:startup`: how fast `byline sidecar` is ready and how much memory it holds idle,
 * as a pod's startup probe and memory request see it. Starts the sidecar (file sink and spool, a
 * metrics listener, no Postgres needed) several times; for each run measures exec → first 200 from
 * /readyz, then the resident set size after it has idled for a few seconds. Prints the medians.
 *
 * Usage: node cli/scripts/measure-startup.mjs [--node PATH] [--bin PATH] [--runs N] [--idle-ms MS]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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

const rssMiB = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const dir = mkdtempSync(join(tmpdir(), 'byline-startup-'));
const ready = [];
const idle = [];
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
    const child = spawn(values.node, [values.bin, 'sidecar', '--config', config], {
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
