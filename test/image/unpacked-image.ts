/**
 * The container image as this machine can run it (no container runtime: cgroups are unavailable):
 * the OCI archive unpacked with umoci, and its entrypoint run with chroot as the image's user,
 * inside a mount namespace where the root filesystem is a read-only bind mount and only /tmp is a
 * writable directory of the test's (as a pod gets with readOnlyRootFilesystem and an emptyDir).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** What the image's config says about running it (OCI image config, as umoci's runtime spec). */
export interface ImageConfig {
  user: string;
  entrypoint: string[];
  env: string[];
  labels: Record<string, string>;
}

export interface UnpackedImage {
  rootfs: string;
  config: ImageConfig;
}

/** Unpacks `tag` of the OCI archive into `dir` (dir/oci, dir/bundle/rootfs). */
export function unpackImage(archive: string, tag: string, dir: string): UnpackedImage {
  const layout = join(dir, 'oci');
  mkdirSync(layout, { recursive: true });
  execFileSync('tar', ['xf', archive, '-C', layout]);
  execFileSync('umoci', ['unpack', '--image', `${layout}:${tag}`, join(dir, 'bundle')], { stdio: 'ignore' });
  const blob = (digest: string) => JSON.parse(readFileSync(join(layout, 'blobs', ...digest.split(':')), 'utf8'));
  const index = blob(JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')).manifests[0].digest);
  const image = blob(index.config.digest).config;
  return {
    rootfs: join(dir, 'bundle/rootfs'),
    config: {
      user: image.User,
      entrypoint: image.Entrypoint,
      env: image.Env ?? [],
      labels: image.Labels ?? {},
    },
  };
}

/**
 * Runs the image's entrypoint with `args` as its user (numeric uid:gid from the config), in a
 * read-only view of `rootfs`, with `tmp` mounted writable at /tmp, and the image's environment only.
 */
export function runInImage(image: UnpackedImage, view: string, tmp: string, args: string[]): ChildProcess {
  const [uid, gid = uid] = image.config.user.split(':');
  const script = [
    'set -e',
    'mount --bind "$1" "$2"',
    'mount -o remount,bind,ro "$2"',
    'mount --bind "$3" "$2/tmp"',
    'view="$2"; user="$4"; shift 4',
    'exec chroot --userspec="$user" "$view" "$@"',
  ].join('\n');
  return spawn(
    'unshare',
    [
      '-m',
      '--',
      'sh',
      '-c',
      script,
      'sh',
      image.rootfs,
      view,
      tmp,
      `${uid}:${gid}`,
      ...image.config.entrypoint,
      ...args,
    ],
    {
      env: Object.fromEntries(image.config.env.map((e) => e.split(/=(.*)/s).slice(0, 2))),
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
}

/** Runs to completion; resolves with the exit code and everything written to stdout and stderr. */
export function runToEnd(child: ChildProcess): Promise<{ code: number | null; output: string }> {
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, output })));
}
