/**
 * Helm for the chart tests: `$HELM` when set, else the cache
 * `${XDG_CACHE_HOME:-~/.cache}/byline/helm/<version>/helm` (a sibling of the kube binaries' cache),
 * which `buildHelm()` fills from helm's Go module (`go install helm.sh/helm/v3/cmd/helm@<version>`
 * through the Go module proxy; Debian has no helm package). `npm run helm:build` runs it once per
 * machine; a test that finds no helm builds it too.
 */
import { execFileSync, spawn } from 'node:child_process';
import { accessSync, constants, mkdirSync, renameSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';

export const HELM_VERSION = 'v3.22.0';

export function helmCacheDir(): string {
  const root =
    process.env.BYLINE_HELM_CACHE || join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'byline', 'helm');
  return join(root, HELM_VERSION);
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The helm binary, or undefined when it must be built. A wrong $HELM is an error, not a fallback. */
export function findHelm(): string | undefined {
  const named = process.env.HELM;
  if (named) {
    if (!executable(named)) throw new Error(`HELM names no executable: ${named}`);
    return named;
  }
  const cached = join(helmCacheDir(), 'helm');
  return executable(cached) ? cached : undefined;
}

/** Builds helm into the cache unless it is there; returns its path. */
export async function buildHelm(log: (line: string) => void = (l) => console.log(l)): Promise<string> {
  const found = findHelm();
  if (found) return found;
  try {
    execFileSync('go', ['version'], { stdio: 'pipe' });
  } catch (err) {
    throw new Error(`building helm needs Go on PATH: ${(err as Error).message}`);
  }
  const out = helmCacheDir();
  mkdirSync(out, { recursive: true });
  // go install writes into GOBIN; a directory of our own, renamed into place, so a concurrent build
  // or an interrupted one never leaves a half-written binary where findHelm looks.
  const bin = join(out, `.build-${process.pid}`);
  const args = [
    'install',
    '-trimpath',
    `-ldflags=-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}`,
    `helm.sh/helm/v3/cmd/helm@${HELM_VERSION}`,
  ];
  log(`building helm ${HELM_VERSION} -> ${out}/helm: go ${args.join(' ')}`);
  const started = Date.now();
  await new Promise<void>((resolve, reject) => {
    const child = spawn('go', args, {
      cwd: tmpdir(),
      env: { ...process.env, CGO_ENABLED: '0', GOBIN: bin, GOFLAGS: '-buildvcs=false' },
      stdio: ['ignore', 'inherit', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('error', (err) => reject(new Error(`go: ${err.message}`)));
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`go install helm exited with ${code}:\n${stderr.trim().slice(-4000)}`)),
    );
  });
  renameSync(join(bin, 'helm'), join(out, 'helm'));
  rmSync(bin, { recursive: true, force: true });
  log(`built helm in ${Math.round((Date.now() - started) / 1000)} s`);
  return join(out, 'helm');
}

/** Runs helm; throws with its stderr when it fails. */
export function helm(binary: string, args: string[]): string {
  try {
    return execFileSync(binary, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
  } catch (err) {
    // lint prints its findings on stdout and only the summary on stderr.
    const e = err as { stdout?: string; stderr?: string; message: string };
    const output = [e.stdout?.trim(), e.stderr?.trim()].filter(Boolean).join('\n');
    throw new Error(`helm ${args.join(' ')}: ${output || e.message}`);
  }
}
