/**
 * Builds the trail viewer (collector/ui/src) into OUTDIR: one minified browser bundle and its
 * stylesheet, both named by their content hash (served as immutable), and index.html naming them.
 * Everything is local: Preact is bundled in, the page loads nothing from anywhere else.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

/** @param {{ build: typeof import('esbuild').build, outdir: string }} options */
export async function buildViewer({ build, outdir }) {
  rmSync(outdir, { recursive: true, force: true });
  mkdirSync(outdir, { recursive: true });
  const result = await build({
    absWorkingDir: here,
    entryPoints: { viewer: 'src/main.tsx' },
    outdir,
    entryNames: '[name]-[hash]',
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['chrome110', 'firefox115', 'safari16'],
    jsx: 'automatic',
    jsxImportSource: 'preact',
    minify: true,
    metafile: true,
    logLevel: 'warning',
    legalComments: 'none',
  });
  const outputs = Object.keys(result.metafile.outputs).map((f) => basename(f));
  const script = outputs.find((f) => f.endsWith('.js'));
  const style = outputs.find((f) => f.endsWith('.css'));
  if (!script || !style) throw new Error(`viewer build: expected a script and a stylesheet, got ${outputs.join(', ')}`);
  writeFileSync(
    join(outdir, 'index.html'),
    `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Byline trail</title>
<link rel="stylesheet" href="./${style}">
<script type="module" src="./${script}"></script>
</head>
<body>
<div id="app"><noscript>The Byline trail viewer needs JavaScript.</noscript></div>
</body>
</html>
`,
  );
  return { files: [...outputs, 'index.html'] };
}
