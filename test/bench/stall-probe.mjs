/**
 * The I/O half of stall attribution (test/bench/stall-account.mjs classifies): a timer due every
 * PERIOD ms that, when it wakes late, notes the interval with the main thread's CPU time and
 * run-queue wait across it (/proc/PID/task/PID/schedstat, read once per wake-up), the whole
 * process's CPU time (all threads: GC helpers, libuv's pool), and the GC
 * pauses (perf_hooks) to line up against it. Costs one small pread per wake-up while it runs.
 * Times are performance.now() ms; `originUs` turns them into the monotonic µs a V8 .cpuprofile
 * uses, so test/bench/stall-attribution.mjs can name the code that ran in each stall.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { PerformanceObserver, performance } from 'node:perf_hooks';
import { STALL_MS, summarizeStalls } from './stall-account.mjs';

export function startStallProbe(periodMs = 1) {
  const fd = openSync(`/proc/${process.pid}/task/${process.pid}/schedstat`, 'r');
  const buf = Buffer.alloc(128);
  let cpuMs = 0;
  let waitMs = 0;
  const readSchedstat = () => {
    const text = buf.toString('latin1', 0, readSync(fd, buf, 0, buf.length, 0));
    const space = text.indexOf(' ');
    cpuMs = Number(text.slice(0, space)) / 1e6;
    waitMs = Number(text.slice(space + 1, text.indexOf(' ', space + 1))) / 1e6;
  };
  const originUs = Number(process.hrtime.bigint() / 1000n) - performance.now() * 1000;
  const late = [];
  const gcPauses = [];
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcPauses.push({ startMs: e.startTime, endMs: e.startTime + e.duration });
  });
  observer.observe({ entryTypes: ['gc'] });
  const processCpuUs = () => {
    const u = process.cpuUsage();
    return u.user + u.system;
  };
  let procCpuUs = processCpuUs();
  readSchedstat();
  let lastMs = performance.now();
  let wakeups = 0;
  const timer = setInterval(() => {
    const cpuBefore = cpuMs;
    const waitBefore = waitMs;
    const procBefore = procCpuUs;
    readSchedstat();
    procCpuUs = processCpuUs();
    const nowMs = performance.now();
    wakeups += 1;
    if (nowMs - lastMs - periodMs > STALL_MS)
      late.push({
        startMs: lastMs,
        endMs: nowMs,
        cpuMs: cpuMs - cpuBefore,
        waitMs: waitMs - waitBefore,
        processCpuMs: (procCpuUs - procBefore) / 1000,
      });
    lastMs = nowMs;
  }, periodMs);
  return {
    /** Stops the probe; the attribution table of the time it ran. */
    stop() {
      clearInterval(timer);
      observer.disconnect();
      closeSync(fd);
      gcPauses.sort((a, b) => a.startMs - b.startMs);
      return { ...summarizeStalls(late, gcPauses, periodMs), wakeups, originUs };
    },
  };
}
