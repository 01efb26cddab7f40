#!/usr/bin/env node
/**
 * `npm run build`: compiles the TypeScript of every workspace the `byline` command reaches into
 * cli/dist, plain ES modules that `node` runs without a loader. esbuild bundles our own code (the
 * @byline/* workspaces) and leaves every npm dependency external, so native and WASM packages
 * (better-sqlite3, libpg-query) load from node_modules as they ship. Each subcommand is its own
 * entry point and imported only when run: `byline sidecar` never loads the operator's, the
 * collector's or the Kubernetes client's code. Shared code goes to chunks.
 *
 * Usage: node cli/scripts/build.mjs [--outdir DIR] [--quiet]
 */
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';

const cli = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const root = resolve(cli, '..');
const { values } = parseArgs({
  options: { outdir: { type: 'string', default: join(cli, 'dist') }, quiet: { type: 'boolean', default: false } },
});
const outdir = resolve(values.outdir);

/** Every npm dependency of every workspace stays external; only @byline/* is bundled. */
function externals() {
  const names = new Set();
  for (const ws of ['api', 'sidecar', 'collector', 'operator', 'cli']) {
    const pkg = JSON.parse(readFileSync(join(root, ws, 'package.json'), 'utf8'));
    for (const name of Object.keys(pkg.dependencies ?? {})) if (!name.startsWith('@byline/')) names.add(name);
  }
  return [...names];
}

const commands = readdirSync(join(cli, 'src/commands'))
  .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))
  .map((f) => `src/commands/${f}`);

const started = performance.now();
rmSync(outdir, { recursive: true, force: true });
const result = await build({
  absWorkingDir: cli,
  entryPoints: ['src/main.ts', ...commands],
  outbase: 'src',
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20.15',
  external: externals(),
  sourcemap: 'linked',
  chunkNames: 'chunks/[name]-[hash]',
  metafile: true,
  logLevel: 'warning',
  legalComments: 'none',
});
if (!values.quiet) {
  const files = Object.keys(result.metafile.outputs).filter((f) => f.endsWith('.js'));
  const bytes = files.reduce((n, f) => n + result.metafile.outputs[f].bytes, 0);
  const ms = Math.round(performance.now() - started);
  process.stdout.write(
    `byline build: ${files.length} files, ${(bytes / 1024).toFixed(0)} KiB in ${relative(root, outdir) || '.'} (${ms} ms)\n`,
  );
}
