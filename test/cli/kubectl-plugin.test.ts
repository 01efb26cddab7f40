/**
 * `kubectl byline` (cli/bin/kubectl-byline), the kubectl plugin: installed with the package under
 * the name kubectl looks for on $PATH, offering the trail and approval commands, and answering
 * help and mistakes as `kubectl byline`.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { children, Service } from '../harness/byline-process.js';
import { freePort } from '../harness/net.js';

const cli = join(resolve(import.meta.dirname, '../..'), 'cli');
const plugin = join(cli, 'bin/kubectl-byline');
const run = (...args: string[]) => {
  const r = spawnSync(process.execPath, [plugin, ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'byline-kubectl-'));
});
afterAll(() => {
  for (const child of children) child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

test('installed with the package as kubectl-byline, an executable without extension (krew naming)', () => {
  const pkg = JSON.parse(readFileSync(join(cli, 'package.json'), 'utf8'));
  expect(pkg.bin['kubectl-byline']).toBe('./bin/kubectl-byline');
  expect(() => accessSync(plugin, constants.X_OK)).not.toThrow();
  expect(readFileSync(plugin, 'utf8')).toMatch(/^#!\/usr\/bin\/env node\n/);
});

test('help lists the trail and approval commands as `kubectl byline`, and no server command', () => {
  const help = run('--help');
  expect(help.code).toBe(0);
  expect(help.stdout).toContain('usage: kubectl byline <command> [options]');
  for (const name of ['trail', 'verify', 'approval request', 'approval list', 'approve', 'deny']) {
    expect(help.stdout).toMatch(new RegExp(`^  ${name} `, 'm'));
  }
  for (const name of ['sidecar', 'collector', 'operator', 'demo'])
    expect(help.stdout).not.toMatch(new RegExp(`^  ${name} `, 'm'));
  expect(help.stdout).not.toMatch(/^usage: byline|^ {2}byline /m);
  expect(run('trail', '--help').stdout).toMatch(/^usage: kubectl byline trail /);
});

test('a server command or a mistake is refused naming `kubectl byline`, exit 2', () => {
  const sidecar = run('sidecar', '--config', 'x.yaml');
  expect(sidecar.code).toBe(2);
  expect(sidecar.stderr).toContain('kubectl byline: unknown command "sidecar"');
  const wrong = run('trail', '--no-such-option');
  expect(wrong.code).toBe(2);
  expect(wrong.stderr).toMatch(/^kubectl byline trail: /);
  expect(wrong.stderr).toContain('run "kubectl byline trail --help" for its options');
  expect(run('--version').stdout).toMatch(/^kubectl-byline \d+\.\d+\.\d+ \(node /);
});

test('kubectl byline trail reads a real collector', async () => {
  const port = await freePort();
  const reader = join(dir, 'reader.token');
  writeFileSync(reader, 'kubectl-reader-0123456789\n');
  writeFileSync(
    join(dir, 'collector.yaml'),
    [
      `listen: 127.0.0.1:${port}`,
      `store: sqlite:${join(dir, 'trail.db')}`,
      'auth:',
      '  static:',
      `    - { tokenFile: ${reader}, reader: true }`,
      'log: { level: warn }',
    ].join('\n'),
  );
  const collector = new Service(['collector', '--config', join(dir, 'collector.yaml')], port);
  await collector.start();
  const trail = run('trail', '--collector', `http://127.0.0.1:${port}`, '--token-file', reader, '--format', 'json');
  const wrongToken = join(dir, 'wrong.token');
  writeFileSync(wrongToken, 'not-the-reader-token-0123\n');
  const refused = run('trail', '--collector', `http://127.0.0.1:${port}`, '--token-file', wrongToken);
  await collector.kill('SIGTERM');
  expect(trail).toEqual({ code: 0, stdout: '', stderr: '' });
  expect(refused.code).toBe(1);
  expect(refused.stderr).toMatch(/^kubectl byline trail: .*401/);
});
