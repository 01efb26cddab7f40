/**
 * What each of the SQLite store's b-trees costs the insert path: the same events inserted into a
 * store as shipped and into stores with one index dropped (or the text index with trigram
 * positions, as before migration 8), CPU per event. A measurement for a quiet machine, not a test.
 *
 *   tsx test/bench/sqlite-index-cost.ts [--prefill N] [--events N] [--repeat N] [--only "as shipped,- order"]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type IngestEvent, ndjson, parseBatch, SampleStream, SqliteStore } from '@byline/collector';
import Database from 'better-sqlite3';

const args = process.argv.slice(2);
const arg = (name: string, d: number) => {
  const i = args.indexOf(`--${name}`);
  return i === -1 ? d : Number(args[i + 1]);
};
const PREFILL = arg('prefill', 100_000);
const EVENTS = arg('events', 100_000);
const STREAMS = 8;
const BATCH = 500;

function batches(total: number, streams: SampleStream[]): IngestEvent[][] {
  const out: IngestEvent[][] = [];
  for (let sent = 0, s = 0; sent < total; sent += BATCH, s = (s + 1) % streams.length) {
    const st = streams[s]!;
    const parsed = parseBatch(
      new TextEncoder().encode(ndjson(st.take(BATCH))),
      {
        name: `agent-${s}`,
        kind: 'agent',
        source: 'static',
      },
      BATCH,
    );
    if (!parsed.ok) throw new Error(parsed.error);
    out.push(parsed.events);
  }
  return out;
}

const VARIANTS: [string, string][] = [
  ['as shipped', ''],
  ['- order', 'DROP INDEX byline_events_order'],
  ['- chain', 'DROP INDEX byline_events_chain'],
  ['- identity', 'DROP INDEX byline_events_identity'],
  ['- session', 'DROP INDEX byline_events_session'],
  ['- route', 'DROP INDEX byline_events_route'],
  ['- database', 'DROP INDEX byline_events_database'],
  ['- approval', 'DROP INDEX byline_events_approval'],
  ['- class', 'DROP INDEX byline_events_class'],
  ['- status', 'DROP INDEX byline_events_status'],
  ['- tables identity', 'DROP INDEX byline_event_tables_identity'],
  [
    'text with positions',
    `DROP TABLE byline_event_text;
     CREATE VIRTUAL TABLE byline_event_text
       USING fts5(text, content='', contentless_delete=1, tokenize='trigram case_sensitive 1');`,
  ],
];
const only = args.includes('--only') ? args[args.indexOf('--only') + 1]!.split(',') : undefined;

const REPEAT = arg('repeat', 3);
const figures = new Map<string, number[]>();
for (let r = 0; r < REPEAT; r++)
  for (const [name, sql] of VARIANTS) {
    if (only && !only.includes(name)) continue;
    const dir = mkdtempSync(join(tmpdir(), 'byline-idx-'));
    try {
      const path = join(dir, 'x.db');
      const store = new SqliteStore(path);
      await store.init();
      if (sql) {
        const db = new Database(path);
        db.exec(sql);
        db.close();
      }
      const streams = Array.from(
        { length: STREAMS },
        (_, i) => new SampleStream({ identity: `agent-${i}`, startMs: Date.UTC(2026, 10, 1) + i * 3 }),
      );
      const writer = (i: number) => ({ owner: `static:agent-${i}` });
      const fill = batches(PREFILL, streams);
      for (const [i, b] of fill.entries()) await store.insertBatch(b, new Date(), writer(i % STREAMS));
      const timed = batches(EVENTS, streams);
      const cpu = process.cpuUsage();
      const t0 = process.hrtime.bigint();
      // Four at once, as several shippers' batches arrive together (one group commit).
      for (let i = 0; i < timed.length; i += 4) {
        await Promise.all(
          timed.slice(i, i + 4).map((b, j) => store.insertBatch(b, new Date(), writer((i + j) % STREAMS))),
        );
      }
      const used = process.cpuUsage(cpu);
      const wall = Number(process.hrtime.bigint() - t0) / 1e3;
      await store.close();
      const list = figures.get(name) ?? [];
      list.push((used.user + used.system) / EVENTS);
      figures.set(name, list);
      void wall;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
// Interleaved repeats on a shared machine: the least CPU per event is the one least inflated by others.
for (const [name, list] of figures) {
  const sorted = [...list].sort((a, b) => a - b);
  console.log(
    `${name.padEnd(20)} min ${sorted[0]!.toFixed(1).padStart(5)}  median ${sorted[Math.floor(sorted.length / 2)]!.toFixed(1).padStart(5)} µs CPU/event`,
  );
}
