/**
 * Where the etcd and kube-apiserver binaries for tests come from, and how they are built.
 *
 * Lookup order, like controller-runtime's envtest: `TEST_ASSET_KUBE_APISERVER` / `TEST_ASSET_ETCD`,
 * then `KUBEBUILDER_ASSETS` (a directory holding both), then our cache, which `buildBinaries()`
 * fills from the Go modules (k8s.io/kubernetes through the wrapper module in `test/kube/build/`,
 * etcd through `test/kube/build/etcd/`). The cache lives outside the work tree so fresh clones on
 * the same machine reuse it.
 */
import { execFileSync, spawn } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Latest v1.37 patch on the Go module proxy; its staging modules are published as v0.37.x. */
export const KUBERNETES_VERSION = 'v1.37.2';
/** etcd's latest 3.7 patch; kubernetes v1.37.2 itself requires the 3.7 client. */
export const ETCD_VERSION = 'v3.7.3';

const buildDir = join(dirname(fileURLToPath(import.meta.url)), 'build');

export interface KubeBinaries {
  kubeApiserver: string;
  etcd: string;
  /** Where they were found, for messages. */
  source: string;
}

/** `${BYLINE_KUBE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/byline/kube}/<k8s>-<etcd>`. */
export function cacheDir(): string {
  const root =
    process.env.BYLINE_KUBE_CACHE || join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'byline', 'kube');
  return join(root, `${KUBERNETES_VERSION}-${ETCD_VERSION}`);
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The binaries named by the environment, or in the cache; undefined when they must be built. */
export function findBinaries(): KubeBinaries | undefined {
  const assets = process.env.KUBEBUILDER_ASSETS;
  const fromEnv = {
    kubeApiserver: process.env.TEST_ASSET_KUBE_APISERVER || (assets ? join(assets, 'kube-apiserver') : undefined),
    etcd: process.env.TEST_ASSET_ETCD || (assets ? join(assets, 'etcd') : undefined),
  };
  if (fromEnv.kubeApiserver || fromEnv.etcd) {
    // Set by the user: a wrong path is an error, not a reason to fall back silently.
    for (const [name, path] of Object.entries(fromEnv)) {
      if (path && !executable(path)) {
        const what = name === 'etcd' ? 'etcd' : 'kube-apiserver';
        throw new Error(`${what} named by TEST_ASSET_* or KUBEBUILDER_ASSETS is not an executable: ${path}`);
      }
    }
  }
  const cached = cacheDir();
  const kubeApiserver = fromEnv.kubeApiserver ?? join(cached, 'kube-apiserver');
  const etcd = fromEnv.etcd ?? join(cached, 'etcd');
  if (!executable(kubeApiserver) || !executable(etcd)) return undefined;
  const source =
    fromEnv.kubeApiserver && fromEnv.etcd
      ? 'environment'
      : fromEnv.kubeApiserver || fromEnv.etcd
        ? 'environment and cache'
        : cached;
  return { kubeApiserver, etcd, source };
}

type Log = (line: string) => void;

function run(
  cmd: string,
  args: string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv; log: Log },
): Promise<string> {
  return new Promise((resolve, reject) => {
    options.log(`$ ${cmd} ${args.join(' ')}   (in ${options.cwd})`);
    const child = spawn(cmd, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      for (const line of d.toString().split('\n')) if (line) options.log(`  ${line}`);
    });
    child.on('error', (err) => reject(new Error(`${cmd}: ${err.message}`)));
    child.on('close', (code) => {
      if (code === 0) resolve(stdout);
      else reject(new Error(`${cmd} ${args.join(' ')} exited with ${code}:\n${stderr.trim().slice(-4000)}`));
    });
  });
}

/** The staging version that goes with a kubernetes version: v1.37.2 -> v0.37.2. */
export function stagingVersion(kubernetesVersion: string): string {
  return kubernetesVersion.replace(/^v1\./, 'v0.');
}

/**
 * The wrapper go.mod for kube-apiserver, from kubernetes' own go.mod: its staging modules are
 * `replace`d with local paths there, which only apply inside the kubernetes repository, so we
 * replace each with its published v0.x release. Only staging modules kubernetes requires are
 * listed (sample-cli-plugin and sample-controller are outside the graph and not published).
 */
export function wrapperGoMod(kubernetesGoMod: string, kubernetesVersion: string): string {
  const staging = stagingVersion(kubernetesVersion);
  const required = new Set<string>();
  for (const m of kubernetesGoMod.matchAll(/^\s*(k8s\.io\/[\w.-]+)\s+v0\.0\.0\s*$/gm)) if (m[1]) required.add(m[1]);
  const replaced: string[] = [];
  for (const m of kubernetesGoMod.matchAll(/^\s*(k8s\.io\/[\w.-]+)\s+=>\s+\.\/staging\/src\/\S+\s*$/gm)) {
    if (m[1] && required.has(m[1])) replaced.push(m[1]);
  }
  if (replaced.length === 0) throw new Error('no staging replace directives found in kubernetes go.mod');
  const goLine = /^go\s+(\S+)\s*$/m.exec(kubernetesGoMod)?.[1];
  if (!goLine) throw new Error('no go directive in kubernetes go.mod');
  // Kubernetes' GODEBUG defaults only take effect when the main module declares them.
  const godebug = [...kubernetesGoMod.matchAll(/^godebug\s+.+$/gm)].map((m) => m[0]);
  return [
    `// Generated by test/kube/build.ts from the go.mod of k8s.io/kubernetes ${kubernetesVersion}; go adds the indirect requires.`,
    'module byline.dev/test/kube/build',
    '',
    `go ${goLine}`,
    '',
    ...godebug,
    ...(godebug.length ? [''] : []),
    'tool k8s.io/kubernetes/cmd/kube-apiserver',
    '',
    `require k8s.io/kubernetes ${kubernetesVersion}`,
    '',
    'replace (',
    ...replaced.map((m) => `\t${m} => ${m} ${staging}`),
    ')',
    '',
  ].join('\n');
}

export function etcdWrapperGoMod(etcdVersion: string): string {
  return [
    `// Generated by test/kube/build.ts for go.etcd.io/etcd/server/v3 ${etcdVersion}; go adds the indirect requires.`,
    'module byline.dev/test/kube/build/etcd',
    '',
    'go 1.26.0',
    '',
    'tool go.etcd.io/etcd/server/v3',
    '',
    `require go.etcd.io/etcd/server/v3 ${etcdVersion}`,
    '',
  ].join('\n');
}

/**
 * Writes a wrapper go.mod unless one for the same version is there: `go build -mod=mod` adds the
 * indirect requirements (and go.sum) below our lines, and those are kept and committed.
 */
function seedGoMod(file: string, text: string, log: Log): void {
  const header = text.slice(0, text.indexOf('\n'));
  if (existsSync(file) && readFileSync(file, 'utf8').startsWith(`${header}\n`)) return;
  writeFileSync(file, text);
  rmSync(join(dirname(file), 'go.sum'), { force: true });
  log(`wrote ${file}`);
}

/** One build at a time per cache folder (CI and a test run may both try). */
async function withLock<T>(dir: string, log: Log, fn: () => Promise<T>): Promise<T> {
  const lock = join(dir, '.build-lock');
  for (let waited = 0; ; waited++) {
    try {
      mkdirSync(lock);
      writeFileSync(join(lock, 'pid'), String(process.pid));
      break;
    } catch {
      let holder = Number.NaN;
      try {
        holder = Number(readFileSync(join(lock, 'pid'), 'utf8'));
      } catch {}
      let alive = false;
      try {
        if (Number.isInteger(holder)) alive = process.kill(holder, 0);
      } catch {}
      if (!alive && waited > 2) {
        rmSync(lock, { recursive: true, force: true });
        continue;
      }
      if (waited % 30 === 0) log(`waiting for another build (${lock}, pid ${holder})…`);
      await new Promise((r) => setTimeout(r, 2000));
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

/**
 * Builds whatever is missing from the cache and returns the binaries. Idempotent: does nothing when
 * `findBinaries()` already succeeds.
 */
export async function buildBinaries(log: Log = (l) => console.log(l)): Promise<KubeBinaries> {
  const found = findBinaries();
  if (found) return found;
  const out = cacheDir();
  mkdirSync(out, { recursive: true });
  return withLock(out, log, async () => {
    const again = findBinaries();
    if (again) return again;
    try {
      execFileSync('go', ['version'], { stdio: 'pipe' });
    } catch (err) {
      throw new Error(`building kube-apiserver and etcd needs Go on PATH: ${(err as Error).message}`);
    }
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      CGO_ENABLED: '0',
      GOFLAGS: '-mod=mod -buildvcs=false',
      GOMAXPROCS: process.env.GOMAXPROCS ?? '2',
    };
    const flags = ['-p', env.GOMAXPROCS ?? '2', '-trimpath'];
    const started = Date.now();

    const etcdTarget = join(out, 'etcd');
    if (!executable(etcdTarget)) {
      log(`building etcd ${ETCD_VERSION} -> ${etcdTarget}`);
      const dir = join(buildDir, 'etcd');
      mkdirSync(dir, { recursive: true });
      seedGoMod(join(dir, 'go.mod'), etcdWrapperGoMod(ETCD_VERSION), log);
      const tmp = `${etcdTarget}.tmp-${process.pid}`;
      await run('go', ['build', ...flags, '-ldflags=-s -w', '-o', tmp, 'go.etcd.io/etcd/server/v3'], {
        cwd: dir,
        env,
        log,
      });
      renameSync(tmp, etcdTarget);
    }

    const apiserverTarget = join(out, 'kube-apiserver');
    if (!executable(apiserverTarget)) {
      log(`building kube-apiserver ${KUBERNETES_VERSION} -> ${apiserverTarget} (the first time takes a while)`);
      const meta = JSON.parse(
        await run('go', ['mod', 'download', '-json', `k8s.io/kubernetes@${KUBERNETES_VERSION}`], {
          cwd: tmpdir(),
          env: { ...env, GOFLAGS: '' },
          log,
        }),
      ) as { GoMod?: string; Error?: string };
      if (!meta.GoMod) throw new Error(`go mod download k8s.io/kubernetes@${KUBERNETES_VERSION}: ${meta.Error}`);
      seedGoMod(join(buildDir, 'go.mod'), wrapperGoMod(readFileSync(meta.GoMod, 'utf8'), KUBERNETES_VERSION), log);
      // What `kubectl version` and /version report, as the release build stamps them.
      const [major, minor] = KUBERNETES_VERSION.slice(1).split('.');
      const pkg = 'k8s.io/component-base/version';
      const ldflags = [
        '-s',
        '-w',
        `-X ${pkg}.gitVersion=${KUBERNETES_VERSION}`,
        `-X ${pkg}.gitMajor=${major}`,
        `-X ${pkg}.gitMinor=${minor}`,
        `-X ${pkg}.gitTreeState=clean`,
      ].join(' ');
      const tmp = `${apiserverTarget}.tmp-${process.pid}`;
      await run('go', ['build', ...flags, `-ldflags=${ldflags}`, '-o', tmp, 'k8s.io/kubernetes/cmd/kube-apiserver'], {
        cwd: buildDir,
        env,
        log,
      });
      renameSync(tmp, apiserverTarget);
    }
    log(`built in ${Math.round((Date.now() - started) / 1000)} s`);
    const built = findBinaries();
    if (!built) throw new Error(`build finished but the binaries are not executable in ${out}`);
    return built;
  });
}
