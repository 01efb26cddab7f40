/**
 * Every Byline process exports the standard process_* and nodejs_* series (no prefix, so stock
 * dashboards work) and byline_build_info{version}. The CLI test checks a running sidecar's
 * /metrics; this checks the registries of all three.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CollectorMetrics } from '@byline/collector';
import { OperatorMetrics } from '@byline/operator';
import { SidecarMetrics } from '@byline/sidecar';
import { describe, expect, test } from 'vitest';

const VERSION = (
  JSON.parse(readFileSync(join(resolve(import.meta.dirname, '../..'), 'package.json'), 'utf8')) as { version: string }
).version;

describe.each([
  ['sidecar', () => new SidecarMetrics().registry],
  ['collector', () => new CollectorMetrics().registry],
  ['operator', () => new OperatorMetrics().registry],
])('%s metrics', (_name, registry) => {
  test('byline_build_info and the standard process and Node.js series', async () => {
    const text = await registry().metrics();
    expect(text).toContain(`byline_build_info{version="${VERSION}",nodejs="${process.versions.node}"} 1`);
    for (const series of [
      'process_cpu_user_seconds_total',
      'process_resident_memory_bytes',
      'process_open_fds',
      'nodejs_eventloop_lag_seconds',
      'nodejs_heap_size_used_bytes',
      'nodejs_version_info',
    ]) {
      expect(text).toMatch(new RegExp(`^${series}[ {]`, 'm'));
    }
    expect(text).not.toMatch(/^byline_(collector|operator)_process_/m);
  });
});
