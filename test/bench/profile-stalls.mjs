#!/usr/bin/env node
/**
 * Where a process's event loop stalled: the stretches of a V8 .cpuprofile (from `node
 * --cpu-prof`, e.g. BENCH_CPU_PROF) with no idle sample for at least MIN_MS, each with the
 * callback that ran it (the frame just below the root: processTimers, processImmediate,
 * a socket's onStreamRead, the garbage collector…) and the frames that took its time.
 * `node test/bench/profile-stalls.mjs FILE [MIN_MS=2] [N=15]`.
 *
 * A stretch is wall time: a process switched out for another on a busy machine stalls too, and
 * that time lands on the frame that was running (mostly a write that woke the peer).
 */
import { readCpuProfile } from './cpuprofile.mjs';

const [file, minMs = '2', n = '15'] = process.argv.slice(2);
if (!file) {
  console.error('usage: profile-stalls.mjs FILE.cpuprofile [MIN_MS] [N]');
  process.exit(2);
}
const { profile, byId, name, entry: entryOf } = readCpuProfile(file);
/** What the event loop was running at sample `id`. */
const entry = (id) => entryOf(byId.get(id));

const stalls = [];
let current = null;
profile.samples.forEach((id, i) => {
  const dt = (profile.timeDeltas[i + 1] ?? 0) / 1000;
  const node = byId.get(id);
  if (node.callFrame.functionName === '(idle)') {
    if (current && current.ms >= Number(minMs)) stalls.push(current);
    current = null;
    return;
  }
  current ??= { ms: 0, entries: new Map(), frames: new Map() };
  current.ms += dt;
  const e = entry(id);
  current.entries.set(e, (current.entries.get(e) ?? 0) + dt);
  const f = name(node);
  current.frames.set(f, (current.frames.get(f) ?? 0) + dt);
});
if (current && current.ms >= Number(minMs)) stalls.push(current);

const top = (map, k) =>
  [...map]
    .sort((a, b) => b[1] - a[1])
    .slice(0, k)
    .map(([key, ms]) => `${ms.toFixed(1)} ms ${key}`)
    .join('; ');
const total = stalls.reduce((s, x) => s + x.ms, 0);
console.log(`${file}: ${stalls.length} stretches without an idle sample ≥ ${minMs} ms, ${total.toFixed(0)} ms in all`);
const byEntry = new Map();
for (const s of stalls) for (const [e, ms] of s.entries) byEntry.set(e, (byEntry.get(e) ?? 0) + ms);
console.log(`  by event-loop callback: ${top(byEntry, 6)}`);
for (const s of stalls.sort((a, b) => b.ms - a.ms).slice(0, Number(n))) {
  console.log(
    `  ${s.ms.toFixed(1).padStart(6)} ms  ran: ${top(s.entries, 2)}\n             frames: ${top(s.frames, 4)}`,
  );
}
