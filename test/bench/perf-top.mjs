#!/usr/bin/env node
/**
 * On-CPU profile of a bench proxy recorded with BENCH_PERF=DIR (perf record, task-clock: only
 * time the threads actually ran, kernel included). Unlike --cpu-prof, whose wall-clock samples
 * charge a thread for the time it was switched out (the 'writeBuffer' that dominates those
 * profiles), this says where CPU goes.
 *   node test/bench/perf-top.mjs FILE.perf.data [N] [REGEX…]
 * prints each thread's share, the main (event-loop) thread's top N frames by self time, and for
 * each REGEX the share of main-thread samples with a matching frame on the stack (inclusive).
 */
import { execFileSync } from 'node:child_process';

const [file, n = '25', ...patterns] = process.argv.slice(2);
if (!file) {
  console.error('usage: perf-top.mjs FILE.perf.data [N] [REGEX...]');
  process.exit(2);
}
const text = execFileSync('perf', ['script', '-i', file, '-F', 'pid,tid,ip,sym,dso'], {
  encoding: 'utf8',
  maxBuffer: 1 << 30,
  stdio: ['ignore', 'pipe', 'ignore'],
});
const perThread = new Map();
const main = [];
let total = 0;
for (const block of text.split('\n\n')) {
  const lines = block.split('\n').filter(Boolean);
  if (lines.length === 0) continue;
  const [pid, tid] = lines[0].trim().split(/[\s/]+/);
  total++;
  perThread.set(tid, (perThread.get(tid) ?? 0) + 1);
  if (pid === tid) main.push(lines.slice(1).map(frame));
}
/** "addr symbol (dso)" → "symbol", JS frames without their file:// prefix. */
function frame(line) {
  return line
    .trim()
    .replace(/^[0-9a-f]+ /, '')
    .replace(/ \((\/|\[)[^)]*\)$/, '')
    .replace(/file:\/\/\/\S*\//, '');
}
const pct = (k, of) => `${((100 * k) / of).toFixed(1).padStart(5)}%`;
console.log(
  `${file}: ${total} samples; by thread: ${[...perThread]
    .sort((a, b) => b[1] - a[1])
    .map(([tid, k]) => `${tid} ${pct(k, total).trim()}`)
    .join(', ')}`,
);
console.log(`main thread: ${main.length} samples (${pct(main.length, total).trim()} of the process)`);
for (const p of patterns) {
  const re = new RegExp(p);
  const k = main.filter((stack) => stack.some((f) => re.test(f))).length;
  console.log(`  ${pct(k, main.length)} inclusive  /${p}/`);
}
const self = new Map();
for (const stack of main) self.set(stack[0] ?? '?', (self.get(stack[0] ?? '?') ?? 0) + 1);
console.log('main thread, self time:');
for (const [f, k] of [...self].sort((a, b) => b[1] - a[1]).slice(0, Number(n)))
  console.log(`  ${pct(k, main.length)}  ${f}`);
