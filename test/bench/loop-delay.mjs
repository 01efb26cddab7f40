/**
 * Preloaded into the bench's sidecars (`node --import`): measures event-loop delay with
 * perf_hooks.monitorEventLoopDelay at 1 ms resolution, and the garbage collector's pauses (a
 * PerformanceObserver on 'gc'), only while a run is measured, so idle sidecars cost nothing.
 * SIGUSR2 starts a measurement; the next SIGUSR2 writes { maxMs, p99Ms, p50Ms, gc } to
 * $BYLINE_BENCH_LOOP_DELAY_FILE and stops it. `gc`: pauses by kind (minor = scavenge, major =
 * mark-compact, incremental/weak = their steps), each { count, totalMs, maxMs }: a loop delay
 * of several ms with a GC pause of the same size beside it is the collector's. `newSpaceMiB`: the
 * young generation's size at the end (what --max-semi-space-size bounds). `stalls`: the same
 * delay sorted into true stalls (JS, GC on the CPU), sleeps (offcpu, gc-wait) and waits for a core
 * (test/bench/stall-account.mjs); BYLINE_BENCH_STALLS=0 leaves that probe out.
 */
import { writeFileSync } from 'node:fs';
import { constants, monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { getHeapSpaceStatistics } from 'node:v8';
import { startStallProbe } from './stall-probe.mjs';

const GC_KINDS = {
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weak',
};

const file = process.env.BYLINE_BENCH_LOOP_DELAY_FILE;
const STALLS = process.env.BYLINE_BENCH_STALLS !== '0';
if (file) {
  let histogram = null;
  let probe = null;
  let gc = null;
  const observer = new PerformanceObserver((list) => {
    if (!gc) return;
    for (const entry of list.getEntries()) {
      const kind = GC_KINDS[entry.detail?.kind] ?? 'other';
      gc[kind] ??= { count: 0, totalMs: 0, maxMs: 0 };
      const k = gc[kind];
      k.count += 1;
      k.totalMs += entry.duration;
      if (entry.duration > k.maxMs) k.maxMs = entry.duration;
    }
  });
  process.on('SIGUSR2', () => {
    if (!histogram) {
      histogram = monitorEventLoopDelay({ resolution: 1 });
      histogram.enable();
      gc = {};
      observer.observe({ entryTypes: ['gc'] });
      if (STALLS) probe = startStallProbe();
      return;
    }
    histogram.disable();
    observer.disconnect();
    const ms = (ns) => ns / 1e6;
    writeFileSync(
      file,
      JSON.stringify({
        maxMs: ms(histogram.max),
        p99Ms: ms(histogram.percentile(99)),
        p50Ms: ms(histogram.percentile(50)),
        gc,
        newSpaceMiB: (getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0) / 2 ** 20,
        ...(probe ? { stalls: probe.stop() } : {}),
      }),
    );
    probe = null;
    histogram = null;
    gc = null;
  });
}
