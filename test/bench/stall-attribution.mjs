#!/usr/bin/env node
/**
 * Names the code behind each stall the bench's probe found: `node test/bench/stall-attribution.mjs
 * PROFILE.cpuprofile STALLS.json... [--top=N]` (profiles from BENCH_CPU_PROF, stalls from
 * BENCH_STALLS_DIR, same run). Stall times are performance.now() ms plus the probe's `originUs`,
 * the monotonic clock a V8 profile's sample times use, so the samples inside a stall are the code
 * that ran during it. Prints the attribution table (cause → count, max, Σ own ms), then per cause
 * the event-loop callbacks and frames that took the stalls' time, then the longest stalls.
 */
import { readFileSync } from 'node:fs';
import { readCpuProfile } from './cpuprofile.mjs';

const args = process.argv.slice(2);
const top = Number(args.find((a) => a.startsWith('--top='))?.slice(6) ?? 8);
const [profileFile, ...stallFiles] = args.filter((a) => !a.startsWith('--'));
if (!profileFile || stallFiles.length === 0) {
  console.error('usage: stall-attribution.mjs PROFILE.cpuprofile STALLS.json... [--top=N]');
  process.exit(2);
}

const { profile, byId, parent, name, entry } = readCpuProfile(profileFile);
/** A frame with its two callers: `writeBuffer` alone does not say a socket's or a file's. */
const stack = (node) => {
  const names = [name(node)];
  for (let n = node; names.length < 3 && parent.has(n.id); ) {
    n = byId.get(parent.get(n.id));
    if (n.callFrame.functionName === '(root)') break;
    names.push(n.callFrame.functionName || '(anonymous)');
  }
  return names.join(' < ');
};
// Sample i covers [times[i], times[i + 1]).
const times = [];
let t = profile.startTime;
for (const dt of profile.timeDeltas) {
  t += dt;
  times.push(t);
}

/** ms per entry callback and per frame of the samples in [fromUs, toUs). */
function samplesIn(fromUs, toUs) {
  const entries = new Map();
  const frames = new Map();
  let lo = 0;
  let hi = times.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (times[mid] < fromUs) lo = mid + 1;
    else hi = mid;
  }
  for (let i = lo; i < times.length - 1 && times[i] < toUs; i++) {
    const node = byId.get(profile.samples[i]);
    if (node.callFrame.functionName === '(idle)') continue;
    const ms = (Math.min(times[i + 1], toUs) - times[i]) / 1000;
    const e = entry(node);
    entries.set(e, (entries.get(e) ?? 0) + ms);
    const f = stack(node);
    frames.set(f, (frames.get(f) ?? 0) + ms);
  }
  return { entries, frames };
}
const add = (into, from) => {
  for (const [k, v] of from) into.set(k, (into.get(k) ?? 0) + v);
};
const best = (map, k) =>
  [...map]
    .sort((a, b) => b[1] - a[1])
    .slice(0, k)
    .map(([key, ms]) => `${ms.toFixed(1)} ms ${key}`);

const all = [];
for (const file of stallFiles) {
  const run = JSON.parse(readFileSync(file, 'utf8'));
  for (const s of run.stalls)
    all.push({ ...s, file, ...samplesIn(run.originUs + s.startMs * 1000, run.originUs + s.endMs * 1000) });
  console.log(
    `${file}: true stall max ${run.ownMaxMs.toFixed(1)} ms, asleep max ${(run.offMaxMs ?? 0).toFixed(1)} ms, delay max ${run.delayMaxMs.toFixed(1)} ms`,
  );
  for (const [cause, c] of Object.entries(run.causes))
    console.log(
      `  ${cause.padEnd(8)} ${String(c.count).padStart(5)}  max ${c.maxMs.toFixed(1).padStart(5)} ms  Σ ${c.totalMs.toFixed(0).padStart(5)} ms`,
    );
}
const causes = [...new Set(all.map((s) => s.cause))];
for (const cause of causes) {
  const entries = new Map();
  const frames = new Map();
  for (const s of all.filter((x) => x.cause === cause)) {
    add(entries, s.entries);
    add(frames, s.frames);
  }
  console.log(
    `\n${cause}: callbacks\n    ${best(entries, top).join('\n    ')}\n  frames\n    ${best(frames, top).join('\n    ')}`,
  );
}
console.log('\nlongest stalls:');
for (const s of all.sort((a, b) => b.ownMs - a.ownMs).slice(0, top)) {
  console.log(
    `  ${s.ownMs.toFixed(1).padStart(5)} ms own (${s.delayMs.toFixed(1)} late, ${s.schedMs.toFixed(1)} waiting for a core, ` +
      `${s.cpuMs.toFixed(1)} on CPU, ${(s.processCpuMs ?? 0).toFixed(1)} all threads, GC ${s.gcMs.toFixed(1)}) ${s.cause}\n` +
      `        ran: ${best(s.entries, 2).join('; ')}\n        frames: ${best(s.frames, 3).join('; ')}`,
  );
}
