/**
 * Sorting late event-loop wake-ups into what the process did and what the machine did (pure: no
 * clock, no files; test/bench/stall-probe.mjs feeds it).
 *
 * A probe timer due every PERIOD ms that wakes W ms after its previous wake-up was held up by
 * D = W − PERIOD. On two cores shared with Postgres and pgbench much of D is the main thread
 * runnable but without a core (schedstat's run-queue wait Q): scheduling, not the process's doing.
 * What is left, own = D − Q, is the loop really held: by the garbage collector (a GC pause
 * overlapping the interval covers most of it), by JavaScript on the CPU (thread CPU time covers
 * it), or blocked in the kernel (neither: a synchronous syscall, a lock, GC helpers waited for).
 */

/** Above this, a delay counts (the target: no stall above 1 ms). */
export const STALL_MS = 1;

/**
 * One late wake-up, classified. `tick`: { startMs, endMs, cpuMs, waitMs } (the interval between two
 * probe wake-ups on one monotonic clock, the main thread's CPU time and run-queue wait within it);
 * `gcPauses`: [{ startMs, endMs }] on the same clock. Returns undefined when the wake-up was not
 * late by more than STALL_MS.
 */
export function classifyTick(tick, gcPauses, periodMs) {
  const wallMs = tick.endMs - tick.startMs;
  const delayMs = wallMs - periodMs;
  if (!(delayMs > STALL_MS)) return undefined;
  const schedMs = Math.min(delayMs, Math.max(0, tick.waitMs));
  const ownMs = delayMs - schedMs;
  const gcMs = overlapMs(tick.startMs, tick.endMs, gcPauses);
  let cause;
  if (ownMs <= STALL_MS) cause = 'sched';
  else if (gcMs >= ownMs / 2) cause = 'gc';
  // The thread's CPU time in the interval against the time it neither waited nor idled on schedule.
  else if (tick.cpuMs >= (wallMs - schedMs) / 2) cause = 'js';
  else cause = 'blocked';
  return {
    cause,
    startMs: tick.startMs,
    endMs: tick.endMs,
    delayMs,
    ownMs,
    schedMs,
    cpuMs: tick.cpuMs,
    processCpuMs: tick.processCpuMs,
    gcMs,
  };
}

/** Milliseconds of [startMs, endMs] covered by the pauses (which do not overlap one another). */
export function overlapMs(startMs, endMs, pauses) {
  let ms = 0;
  for (const p of pauses) {
    const from = Math.max(startMs, p.startMs);
    const to = Math.min(endMs, p.endMs);
    if (to > from) ms += to - from;
  }
  return ms;
}

/**
 * The attribution table for a run: per cause { count, maxMs, totalMs } of the delay it explains
 * (`sched`: the whole delay, the thread waited for a core; the others: the process's own part),
 * plus the longest own stall and the stalls themselves (longest first, at most `keep`), for lining
 * up with a CPU profile.
 */
export function summarizeStalls(ticks, gcPauses, periodMs, keep = 50) {
  const causes = {};
  const stalls = [];
  let ownMaxMs = 0;
  let delayMaxMs = 0;
  for (const tick of ticks) {
    const s = classifyTick(tick, gcPauses, periodMs);
    if (!s) continue;
    causes[s.cause] ??= { count: 0, maxMs: 0, totalMs: 0 };
    const c = causes[s.cause];
    const ms = s.cause === 'sched' ? s.delayMs : s.ownMs;
    c.count += 1;
    c.totalMs += ms;
    if (ms > c.maxMs) c.maxMs = ms;
    if (s.delayMs > delayMaxMs) delayMaxMs = s.delayMs;
    if (s.cause !== 'sched') {
      if (s.ownMs > ownMaxMs) ownMaxMs = s.ownMs;
      stalls.push(s);
    }
  }
  stalls.sort((a, b) => b.ownMs - a.ownMs);
  return { periodMs, delayMaxMs, ownMaxMs, causes, stalls: stalls.slice(0, keep) };
}

/** "js 3/2.1/4.0 gc 1/1.2/1.2 …": count/max/total ms per cause, in a fixed order. */
export function formatCauses(causes) {
  return ['js', 'gc', 'blocked', 'sched']
    .filter((k) => causes[k])
    .map((k) => `${k} ${causes[k].count}/${causes[k].maxMs.toFixed(1)}/${causes[k].totalMs.toFixed(0)}`)
    .join(' ');
}
