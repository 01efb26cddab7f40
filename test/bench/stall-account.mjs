/**
 * Sorting late event-loop wake-ups into what the process did and what the machine did (pure: no
 * clock, no files; test/bench/stall-probe.mjs feeds it).
 *
 * A probe timer due every PERIOD ms that wakes W ms after its previous wake-up was held up by
 * D = W − PERIOD. On two cores shared with Postgres and pgbench much of D is the main thread
 * runnable but without a core (schedstat's run-queue wait Q): scheduling, not the process's doing.
 * What is left, own = D − Q, is a true stall when the main thread was on the CPU for most of it:
 * the garbage collector's (a GC pause covers most of it) or JavaScript's. When it was neither on
 * the CPU nor queued for one, the thread slept: on another thread (`gc-wait`: a GC pause waiting
 * for its helper threads, themselves without a core), in a synchronous syscall, or with the VM's
 * vCPU not running at all (`offcpu`). An idle process on a loaded machine sees those last two as
 * well, so the bench measures an idle control process beside the sidecar.
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
  const gc = gcMs >= ownMs / 2;
  let cause;
  if (ownMs <= STALL_MS) cause = 'sched';
  else if (tick.cpuMs >= ownMs / 2) cause = gc ? 'gc' : 'js';
  else cause = gc ? 'gc-wait' : 'offcpu';
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

/** True stalls: the main thread on the CPU for most of the delay. */
export const TRUE_STALL_CAUSES = ['js', 'gc'];

/**
 * The attribution table for a run: per cause { count, maxMs, totalMs } of the delay it explains
 * (`sched`: the whole delay, the thread waited for a core; the others: the process's own part),
 * the longest true stall (`ownMaxMs`, js or gc) and the longest sleep (`offMaxMs`, offcpu or
 * gc-wait), and the stalls themselves (longest first, at most `keep`), for lining up with a CPU
 * profile.
 */
export function summarizeStalls(ticks, gcPauses, periodMs, keep = 50) {
  const causes = {};
  const stalls = [];
  let ownMaxMs = 0;
  let offMaxMs = 0;
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
    if (s.cause === 'sched') continue;
    if (TRUE_STALL_CAUSES.includes(s.cause)) ownMaxMs = Math.max(ownMaxMs, s.ownMs);
    else offMaxMs = Math.max(offMaxMs, s.ownMs);
    stalls.push(s);
  }
  stalls.sort((a, b) => b.ownMs - a.ownMs);
  return { periodMs, delayMaxMs, ownMaxMs, offMaxMs, causes, stalls: stalls.slice(0, keep) };
}

/** "js 3/2.1/4.0 gc 1/1.2/1.2 …": count/max/total ms per cause, in a fixed order. */
export function formatCauses(causes) {
  return ['js', 'gc', 'gc-wait', 'offcpu', 'sched']
    .filter((k) => causes[k])
    .map((k) => `${k} ${causes[k].count}/${causes[k].maxMs.toFixed(1)}/${causes[k].totalMs.toFixed(0)}`)
    .join(' ');
}
