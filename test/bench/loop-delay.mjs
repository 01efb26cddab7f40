/**
 * Preloaded into the bench's sidecars (`node --import`): measures event-loop delay with
 * perf_hooks.monitorEventLoopDelay at 1 ms resolution, only while a run is measured, so idle
 * sidecars cost nothing. SIGUSR2 starts a measurement; the next SIGUSR2 writes
 * { maxMs, p99Ms, p50Ms } to $BYLINE_BENCH_LOOP_DELAY_FILE and stops it.
 */
import { writeFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';

const file = process.env.BYLINE_BENCH_LOOP_DELAY_FILE;
if (file) {
  let histogram = null;
  process.on('SIGUSR2', () => {
    if (!histogram) {
      histogram = monitorEventLoopDelay({ resolution: 1 });
      histogram.enable();
      return;
    }
    histogram.disable();
    const ms = (ns) => ns / 1e6;
    writeFileSync(
      file,
      JSON.stringify({
        maxMs: ms(histogram.max),
        p99Ms: ms(histogram.percentile(99)),
        p50Ms: ms(histogram.percentile(50)),
      }),
    );
    histogram = null;
  });
}
