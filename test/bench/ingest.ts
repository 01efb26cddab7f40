/**
 * `npm run bench:ingest`: the collector's ingest over HTTP alone (the part `npm run bench` ends with).
 *
 *   npm run bench:ingest -- [--store sqlite|postgres|both] [--events N] [--shippers N] [--cpu-prof DIR] [--durable] [--batch N]
 *
 * Every event is fully verified (schema, canonical form, hash, chain, writer identity) and stored.
 * With --cpu-prof, a profile of the timed part per store goes to DIR (summarize it with
 * test/bench/profile-top.mjs). The test harness runs PostgreSQL with fsync and synchronous_commit
 * off; --durable turns them on, as a production server has them, so that commits cost what they do.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { measureIngest } from '@byline/collector';
import { startPostgres } from '../harness/postgres.js';

const args = process.argv.slice(2);
const arg = (name: string) => {
  const i = args.indexOf(`--${name}`);
  return i === -1 ? undefined : args[i + 1];
};
const STORE = arg('store') ?? 'both';
const EVENTS = Number(arg('events') ?? 100_000);
const SHIPPERS = Number(arg('shippers') ?? 4);
const PROF = arg('cpu-prof');
const DURABLE = args.includes('--durable');
const BATCH = Number(arg('batch') ?? 500);
if (!['sqlite', 'postgres', 'both'].includes(STORE)) throw new Error('--store must be sqlite, postgres or both');
if (!Number.isInteger(EVENTS) || EVENTS < 1000) throw new Error('--events must be an integer of at least 1000');
if (!Number.isInteger(SHIPPERS) || SHIPPERS < 1) throw new Error('--shippers must be a positive integer');
if (!Number.isInteger(BATCH) || BATCH < 1) throw new Error('--batch must be a positive integer');
if (PROF) mkdirSync(PROF, { recursive: true });

const profileOf = (store: string) => (PROF ? { cpuProfile: join(PROF, `ingest-${store}.cpuprofile`) } : {});
const print = (store: string, r: { eventsPerSecond: number; cpuUsPerEvent: number; mainThreadUsPerEvent: number }) =>
  console.log(
    `  ${store.padEnd(11)} ${r.eventsPerSecond.toFixed(0).padStart(7)} events/s, ` +
      `${r.cpuUsPerEvent.toFixed(1)} µs CPU per event in the collector's process, ` +
      `main thread busy ${r.mainThreadUsPerEvent.toFixed(1)} µs per event`,
  );

console.log(
  `collector ingest: ${EVENTS} events in batches of ${BATCH} over HTTP, ${SHIPPERS} shippers at once` +
    (DURABLE ? ' (PostgreSQL with fsync and synchronous_commit on)' : ''),
);
if (STORE !== 'postgres') {
  const dir = mkdtempSync(join(tmpdir(), 'byline-ingest-'));
  try {
    const r = await measureIngest(`sqlite:${join(dir, 'ingest.db')}`, {
      events: EVENTS,
      shippers: SHIPPERS,
      batch: BATCH,
      ...profileOf('sqlite'),
    });
    print('sqlite', r);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
if (STORE !== 'sqlite') {
  const pg = await startPostgres(
    DURABLE ? { settings: { fsync: 'on', synchronous_commit: 'on', full_page_writes: 'on' } } : {},
  );
  try {
    print(
      'postgresql',
      await measureIngest(pg.url(), { events: EVENTS, shippers: SHIPPERS, batch: BATCH, ...profileOf('postgres') }),
    );
  } finally {
    await pg.stop();
  }
}
