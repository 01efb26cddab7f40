/**
 * What every Byline process exports besides its own metrics: the standard `process_*` and
 * `nodejs_*` series (unprefixed, so stock Node.js dashboards and alerts work) and
 * `byline_build_info{version}`, the usual constant-1 gauge that says which build is running.
 * A subpath export (`@byline/api/process-metrics`) so that commands without metrics never load
 * prom-client.
 */
import { collectDefaultMetrics, Gauge, type Registry } from 'prom-client';
import { BYLINE_VERSION } from './version.js';

export function registerProcessMetrics(registry: Registry): void {
  collectDefaultMetrics({ register: registry });
  new Gauge({
    name: 'byline_build_info',
    help: 'Always 1; its labels say which build of Byline and which Node.js runtime is running.',
    labelNames: ['version', 'nodejs'] as const,
    registers: [registry],
  }).set({ version: BYLINE_VERSION, nodejs: process.versions.node }, 1);
}
