/** The image's root-filesystem decisions (image/rootfs.mjs), without building anything. */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { etcFiles, lockedVersion, RUNTIME_UID, runtimeClosure, treeSize } from '../../image/rootfs.mjs';

const dir = mkdtempSync(join(tmpdir(), 'byline-rootfs-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function pkg(modules: string, name: string, deps: Record<string, string> = {}, optional: Record<string, string> = {}) {
  mkdirSync(join(modules, name), { recursive: true });
  writeFileSync(
    join(modules, name, 'package.json'),
    JSON.stringify({ name, dependencies: deps, optionalDependencies: optional }),
  );
}

describe('runtimeClosure', () => {
  const modules = join(dir, 'node_modules');
  pkg(modules, 'better-sqlite3', { bindings: '1', 'prebuild-install': '7' });
  pkg(modules, 'bindings', { 'file-uri-to-path': '1' });
  pkg(modules, 'file-uri-to-path');
  pkg(modules, 'prebuild-install', { 'tar-fs': '2' });
  pkg(modules, 'tar-fs');
  pkg(modules, 'libpg-query', { '@pgsql/types': '18' }, { 'not-for-this-platform': '1' });
  pkg(modules, '@pgsql/types');

  test('follows dependencies transitively, scoped names included, and leaves out install-time helpers', () => {
    expect(runtimeClosure(modules, ['better-sqlite3', 'libpg-query'], ['prebuild-install'])).toEqual([
      '@pgsql/types',
      'better-sqlite3',
      'bindings',
      'file-uri-to-path',
      'libpg-query',
    ]);
  });

  test('without the skip list, the helpers come along', () => {
    expect(runtimeClosure(modules, ['better-sqlite3'])).toContain('tar-fs');
  });

  test('a root that is not installed is an error naming it', () => {
    expect(() => runtimeClosure(modules, ['pg'])).toThrow('pg is not installed');
  });
});

test('lockedVersion reads package-lock.json and names what it lacks', () => {
  const lock = { packages: { 'node_modules/better-sqlite3': { version: '12.11.1' } } };
  expect(lockedVersion(lock, 'better-sqlite3')).toBe('12.11.1');
  expect(() => lockedVersion(lock, 'libpg-query')).toThrow('pins no version of libpg-query');
});

test('etc files name the numeric runtime user and group, and hosts resolve from files first', () => {
  const files = etcFiles();
  expect(files['etc/passwd']).toContain(`:x:${RUNTIME_UID}:${RUNTIME_UID}:`);
  expect(files['etc/group']).toContain(`:x:${RUNTIME_UID}:`);
  expect(files['etc/nsswitch.conf']).toMatch(/^hosts: files dns$/m);
});

test('treeSize counts files and symlinks themselves, not what a symlink points to', () => {
  const tree = join(dir, 'tree');
  mkdirSync(join(tree, 'sub'), { recursive: true });
  writeFileSync(join(tree, 'a'), 'x'.repeat(1000));
  writeFileSync(join(tree, 'sub/b'), 'y'.repeat(24));
  symlinkSync('/lib/x86_64-linux-gnu/libc.so.6', join(tree, 'link'));
  expect(treeSize(tree)).toBe(1000 + 24 + '/lib/x86_64-linux-gnu/libc.so.6'.length);
});
