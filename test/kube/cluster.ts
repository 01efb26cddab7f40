/**
 * `npm run cluster:up` / `npm run cluster:down`: a control plane that outlives the command, for
 * poking at by hand (`KUBECONFIG=.cache/cluster/kubeconfig kubectl get ns`). Everything lives in
 * `.cache/cluster/` (ignored by git); `pids.json` names the two processes to stop.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startControlPlane } from '../harness/kube.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const dir = join(root, '.cache', 'cluster');
const pidFile = join(dir, 'pids.json');
const log = (line: string) => console.log(`[cluster] ${line}`);

interface Pids {
  etcd: number;
  apiserver: number;
  server: string;
}

/** True when pid is alive and still runs `name` (a recycled pid must not be killed). */
function running(pid: number, name: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0]?.endsWith(name) ?? false;
  } catch {
    return false;
  }
}

function readPids(): Pids | undefined {
  try {
    return JSON.parse(readFileSync(pidFile, 'utf8')) as Pids;
  } catch {
    return undefined;
  }
}

async function stop(pid: number, name: string): Promise<void> {
  if (!running(pid, name)) return;
  process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 100 && running(pid, name); i++) await new Promise((r) => setTimeout(r, 100));
  if (running(pid, name)) process.kill(pid, 'SIGKILL');
  for (let i = 0; i < 50 && running(pid, name); i++) await new Promise((r) => setTimeout(r, 100));
  log(`stopped ${name} (pid ${pid})`);
}

async function up(): Promise<void> {
  const pids = readPids();
  if (pids && running(pids.apiserver, 'kube-apiserver') && running(pids.etcd, 'etcd')) {
    log(`already running at ${pids.server}; KUBECONFIG=${relative(process.cwd(), join(dir, 'kubeconfig'))}`);
    return;
  }
  if (pids) await down();
  rmSync(dir, { recursive: true, force: true });
  const plane = await startControlPlane({ dir, detached: true, log });
  writeFileSync(pidFile, `${JSON.stringify({ ...plane.pids, server: plane.server } satisfies Pids)}\n`);
  log(`kubeconfig: ${relative(process.cwd(), plane.kubeconfigPath)}`);
  log(`pids: etcd ${plane.pids.etcd}, kube-apiserver ${plane.pids.apiserver} (${relative(process.cwd(), pidFile)})`);
  log('stop with: npm run cluster:down');
}

async function down(): Promise<void> {
  const pids = readPids();
  if (!pids) {
    log(existsSync(dir) ? 'not running (no pid file); removing .cache/cluster' : 'not running');
  } else {
    await stop(pids.apiserver, 'kube-apiserver');
    await stop(pids.etcd, 'etcd');
  }
  rmSync(dir, { recursive: true, force: true });
}

const command = process.argv[2];
try {
  if (command === 'up') await up();
  else if (command === 'down') await down();
  else throw new Error('usage: cluster.ts up|down');
} catch (err) {
  console.error(`[cluster] ${(err as Error).message}`);
  process.exit(1);
}
