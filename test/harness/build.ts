/**
 * Vitest global setup: compiles the `byline` command (cli/dist) before any test runs, so tests
 * that spawn cli/bin/byline.mjs run what ships, built from the sources under test.
 */
import { execFileSync } from 'node:child_process';
import { join, resolve } from 'node:path';

export default function setup(): void {
  const root = resolve(import.meta.dirname, '../..');
  execFileSync(process.execPath, [join(root, 'cli/scripts/build.mjs'), '--quiet'], { stdio: 'inherit' });
}
