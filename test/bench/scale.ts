/**
 * `npm run bench:scale`: builds a large trail store and times the queries `byline trail` runs on it.
 *
 *   npm run bench:scale -- [--events N] [--store sqlite|postgres] [--keep DIR] [--bulk]
 *
 * The store is filled through the store's own insert path (chain planning, ownership, idempotent
 * ids; every stream's recent events as one batch of at most 500, all streams' batches handed over
 * together as concurrent shippers' requests are, so the store commits them in groups) with events
 * chained by ChainWriter, with
 * skewed distributions: a few busy agents and a long tail, a few hot tables and many rarely
 * touched ones, 30 days of traffic that follows the working day. Parsing and verifying the HTTP
 * body is not part of the build (`npm run bench` measures that path); the build rate printed is
 * the store's alone, on whatever else this machine is doing.
 *
 * Then each trail query (identity, table, time range, and combinations) is run with random
 * arguments: the first page of 100 and up to four later pages through the keyset cursor; p50 and
 * p99 per query kind. Last, the size on disk per million events. A seeded generator makes runs
 * comparable. With --keep DIR the SQLite file (or the PostgreSQL server's files) stays there and a
 * later run over the same DIR and N only queries it.
 *
 * --bulk (PostgreSQL): the same insert path, but with the events' and table rows' secondary indexes
 * dropped during the build and made again afterwards by CREATE INDEX, and larger batches (up to
 * 10 000 events per stream): the rows are exactly those ingest stores, built many times faster on
 * two shared cores. Indexes made in one go are packed tighter than indexes grown event by event,
 * so the size it prints is a lower bound for the indexes (a build without --bulk gives the grown size).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { ChainWriter, type UnchainedEvent, uuidv7 } from '@byline/api';
import type { IngestEvent } from '@byline/collector';
import { type CursorKey, type EventFilter, type EventStore, openStore, toIngest } from '@byline/collector';
import Database from 'better-sqlite3';
import pgClient from 'pg';
import { verify } from '../../cli/src/verify.js';
import { startPostgres, type TestPostgres } from '../harness/postgres.js';

const args = process.argv.slice(2);
const arg = (name: string) => {
  const i = args.indexOf(`--${name}`);
  return i === -1 ? undefined : args[i + 1];
};
const EVENTS = Number(arg('events') ?? 10_000_000);
const STORE = arg('store') ?? 'sqlite';
const KEEP = arg('keep');
const BULK = args.includes('--bulk');
if (!Number.isInteger(EVENTS) || EVENTS < 10_000) throw new Error('--events must be an integer of at least 10000');
if (STORE !== 'sqlite' && STORE !== 'postgres') throw new Error('--store must be sqlite or postgres');
if (BULK && STORE !== 'postgres') throw new Error('--bulk is for --store postgres');

/** Events per stream and batch. */
const BATCH = BULK ? 10_000 : 500;
/** Events generated between two rounds of shipping (all streams' pending events go out together). */
const FLUSH_EVENTS = BULK ? 200_000 : 5000;
const DAYS = 30;
const T0 = Date.UTC(2026, 9, 1);
const IDENTITIES = 200;
const TABLES = 300;
const SAMPLES = 200;
const PAGE = 100;

/** mulberry32: small, seeded, good enough to pick from distributions. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = rng(9);

/** Picks index i with weight 1/(i+1)^s (Zipf): a few names take most of the traffic. */
function zipf(n: number, s: number): () => number {
  const cdf: number[] = [];
  let sum = 0;
  for (let i = 0; i < n; i++) {
    sum += 1 / (i + 1) ** s;
    cdf.push(sum);
  }
  return () => {
    const x = random() * sum;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid]! < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}
const pickIdentity = zipf(IDENTITIES, 1.1);
const pickTable = zipf(TABLES, 1.2);
const identityName = (i: number) => `agent-${String(i).padStart(3, '0')}`;
const tableName = (i: number) => (i % 7 === 0 ? `billing.t${i}` : `public.t${i}`);

/** A working-day shape: three quarters of the traffic between 08:00 and 18:00 UTC. */
function timeAt(fraction: number): number {
  const days = fraction * DAYS;
  const day = Math.floor(days);
  // Through the inverse of the day's shape, so that times grow with `fraction`: events reach a
  // collector in time order, and a store is built as it would be, at the recent end of its indexes.
  const q = days - day;
  const hour = q < 0.125 ? (q / 0.125) * 8 : q < 0.875 ? 8 + ((q - 0.125) / 0.75) * 10 : 18 + ((q - 0.875) / 0.125) * 6;
  return T0 + day * 86_400_000 + Math.floor(hour * 3_600_000);
}

const COMMANDS = [
  ['SELECT', 'read'],
  ['SELECT', 'read'],
  ['SELECT', 'read'],
  ['UPDATE', 'write'],
  ['INSERT', 'write'],
  ['DELETE', 'write'],
] as const;

/** One pod's sidecar: a stream, the session it is in, events chained in order. */
class Sidecar {
  readonly writer = new ChainWriter(uuidv7());
  readonly pending: IngestEvent[] = [];
  private session = uuidv7();
  private sessionSeq = 0;
  private sessionLeft = 0;

  constructor(readonly identity: string) {}

  next(timeMs: number): void {
    let type: 'session.start' | 'statement' | 'session.end' = 'statement';
    if (this.sessionLeft === 0) {
      type = 'session.start';
      this.session = uuidv7();
      this.sessionSeq = 0;
      this.sessionLeft = 2 + Math.floor(random() * 60);
    } else if (this.sessionLeft === 1) type = 'session.end';
    this.sessionLeft -= 1;
    const base = {
      v: 1 as const,
      id: uuidv7(),
      time: new Date(timeMs).toISOString(),
      identity: {
        kind: 'agent' as const,
        name: this.identity,
        namespace: 'agents',
        pod: `${this.identity}-7d9f-${this.writer.stream.slice(-5)}`,
        serviceAccount: this.identity,
        source: 'kubernetes' as const,
      },
      session: {
        applicationName: 'worker',
        client: '127.0.0.1:59940',
        dbUser: 'app_user',
        id: this.session,
        seq: this.sessionSeq++,
      },
      target: { database: 'orders', host: '10.0.0.5', port: 5432, route: 'orders-db' },
      context: { tags: { task: 'reconcile' }, task: `task-${Math.floor(random() * 1000)}`, traceparent: null },
    };
    let event: UnchainedEvent;
    if (type !== 'statement') {
      event = {
        ...base,
        type,
        statement: null,
        authz: null,
        result: { durationUs: null, error: null, rows: null, sqlstate: null, status: 'ok', tag: null },
      };
    } else {
      const [command, cls] = COMMANDS[Math.floor(random() * COMMANDS.length)]!;
      const tables = [...new Set(Array.from({ length: 1 + Math.floor(random() * 2.5) }, () => tableName(pickTable())))];
      const text =
        command === 'SELECT'
          ? `select * from ${tables.join(' join ')} where id = $1`
          : `${command.toLowerCase()} ${command === 'INSERT' ? 'into ' : ''}${tables[0]} where id = $1`;
      event = {
        ...base,
        type,
        statement: {
          class: cls,
          command,
          params: ['<redacted 4 bytes>'],
          paramsMode: 'redacted',
          preparedName: null,
          protocol: 'extended',
          tables,
          text,
        },
        result: {
          durationUs: 300 + Math.floor(random() * 5000),
          error: null,
          rows: 1,
          sqlstate: null,
          status: 'ok',
          tag: `${command} 1`,
        },
        authz: { approval: null, decision: 'allow', rule: null },
      };
    }
    const chained = this.writer.append(event);
    this.pending.push(toIngest(chained.event, timeMs * 1000, chained.json));
  }
}

/** Bytes this process has written to storage so far (Linux), or 0 where that is not known. */
function bytesWritten(): number {
  try {
    return Number(/write_bytes: (\d+)/.exec(readFileSync('/proc/self/io', 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

async function build(store: EventStore): Promise<void> {
  // 1–4 pods (streams) per identity.
  const sidecars: Sidecar[][] = Array.from({ length: IDENTITIES }, (_, i) =>
    Array.from({ length: 1 + (i % 4) }, () => new Sidecar(identityName(i))),
  );
  const waiting = new Set<Sidecar>();
  let pendingEvents = 0;
  // Every shipper with events sends them at once, as the collector sees them: many small recent
  // batches arriving together, which the store commits in groups. A batch of one stream covers
  // the last few minutes of its traffic, so rows land near the recent end of every index.
  const flushAll = async () => {
    const batches = [...waiting].map((s) => ({ s, events: s.pending.splice(0) }));
    waiting.clear();
    pendingEvents = 0;
    // PostgreSQL: as many batches at once as the store has connections (a batch waiting longer
    // than the pool's 10 s for one fails); SQLite commits all of them in groups.
    const lanes = STORE === 'postgres' ? 4 : batches.length;
    let next = 0;
    const lane = async () => {
      for (let b = batches[next++]; b; b = batches[next++])
        await store.insertBatch(b.events, new Date(), { owner: `agents/${b.s.identity}` });
    };
    await Promise.all(Array.from({ length: lanes }, lane));
  };
  const writtenBefore = bytesWritten();
  const started = process.hrtime.bigint();
  let lastReport = started;
  // Times are drawn in chunks, sorted, so each stream's events go forward in time as on a real clock.
  const CHUNK = 20_000;
  for (let made = 0; made < EVENTS; made += CHUNK) {
    const n = Math.min(CHUNK, EVENTS - made);
    const times = Array.from({ length: n }, (_, k) => timeAt((made + k + random()) / EVENTS)).sort((a, b) => a - b);
    for (const t of times) {
      const pods = sidecars[pickIdentity()]!;
      const s = pods[Math.floor(random() * pods.length)]!;
      s.next(t);
      waiting.add(s);
      pendingEvents += 1;
      if (pendingEvents === FLUSH_EVENTS || s.pending.length === BATCH) await flushAll();
    }
    const now = process.hrtime.bigint();
    if (now - lastReport > 10_000_000_000n) {
      lastReport = now;
      const done = made + n;
      const rate = done / (Number(now - started) / 1e9);
      console.log(`  built ${done.toLocaleString('en')} events, ${rate.toFixed(0)} events/s (generation + store)`);
    }
  }
  await flushAll();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const written = bytesWritten() - writtenBefore;
  if (STORE === 'sqlite' && written > 0) {
    console.log(
      `  written to disk while building: ${(written / EVENTS / 1024).toFixed(1)} KiB per event (WAL and checkpoints)`,
    );
  }
  console.log(
    `  built ${EVENTS.toLocaleString('en')} events in ${seconds.toFixed(0)} s (${(EVENTS / seconds).toFixed(0)} events/s, generation + store)`,
  );
}

interface Kind {
  name: string;
  filter: () => EventFilter;
}

const hour = 3_600_000_000;
/** The stored events' time span (µs): 30 days for a full build, less for a store whose build was cut short. */
const span = { fromUs: T0 * 1000, toUs: (T0 + DAYS * 86_400_000) * 1000 };
const someTime = () => span.fromUs + Math.floor(random() * (span.toUs - span.fromUs));
const KINDS: Kind[] = [
  { name: 'identity (busy or long tail)', filter: () => ({ identity: identityName(pickIdentity()) }) },
  { name: 'identity (long tail only)', filter: () => ({ identity: identityName(100 + Math.floor(random() * 100)) }) },
  { name: 'table', filter: () => ({ table: tableName(pickTable()) }) },
  { name: 'table (rare)', filter: () => ({ table: tableName(150 + Math.floor(random() * 150)) }) },
  {
    name: 'time range (1 h)',
    filter: () => {
      const since = someTime();
      return { sinceUs: since, untilUs: since + hour };
    },
  },
  {
    name: 'identity + 1 day',
    filter: () => {
      const since = someTime();
      return { identity: identityName(pickIdentity()), sinceUs: since, untilUs: since + 24 * hour };
    },
  },
  {
    name: 'table + 1 day',
    filter: () => {
      const since = someTime();
      return { table: tableName(pickTable()), sinceUs: since, untilUs: since + 24 * hour };
    },
  },
  {
    name: 'identity + table',
    filter: () => ({ identity: identityName(pickIdentity()), table: tableName(pickTable()) }),
  },
];

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;

async function measureQueries(store: EventStore): Promise<void> {
  console.log(
    `\n  query kind                       pages   p50 ms   p99 ms   max ms   (page of ${PAGE}, up to 5 pages per query)`,
  );
  for (const kind of KINDS) {
    const firstPages: number[] = [];
    const all: number[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      const filter = kind.filter();
      let after: CursorKey | undefined;
      for (let page = 0; page < 5; page++) {
        const t = process.hrtime.bigint();
        const result = await store.query(filter, PAGE, after);
        const ms = Number(process.hrtime.bigint() - t) / 1e6;
        all.push(ms);
        if (page === 0) firstPages.push(ms);
        if (!result.next) break;
        after = result.next;
      }
    }
    all.sort((a, b) => a - b);
    console.log(
      `  ${kind.name.padEnd(32)} ${String(all.length).padStart(5)} ${percentile(all, 0.5).toFixed(2).padStart(8)} ${percentile(all, 0.99).toFixed(2).padStart(8)} ${all[all.length - 1]!.toFixed(2).padStart(8)}`,
    );
  }
}

function sqliteSize(path: string): number {
  const db = new Database(path);
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  return [path, `${path}-wal`, `${path}-shm`].reduce((sum, f) => sum + (existsSync(f) ? statSync(f).size : 0), 0);
}

/** The time of the newest stored event, found by halving the range (the store answers oldest first). */
async function lastTime(store: EventStore, fromUs: number): Promise<number> {
  let lo = fromUs;
  let hi = (T0 + DAYS * 86_400_000) * 1000 + 1;
  while (hi - lo > 60_000_000) {
    const mid = Math.floor((lo + hi) / 2);
    if ((await store.query({ sinceUs: mid }, 1)).events.length > 0) lo = mid;
    else hi = mid;
  }
  return lo;
}

function storedEvents(path: string): number {
  const db = new Database(path, { readonly: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM byline_events').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

/**
 * Where PostgreSQL's bytes go, per million events: each table's heap, its TOAST (event texts too
 * long to stay in the row), and each index.
 */
async function printPostgresSizes(c: import('pg').Client, stored: number): Promise<void> {
  const { rows } = await c.query<{ name: string; kind: string; bytes: string }>(
    `SELECT c.relname AS name, CASE c.relkind WHEN 'i' THEN 'index' ELSE 'table' END AS kind,
       pg_relation_size(c.oid) AS bytes FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'i') AND c.relname LIKE 'byline_%'
     UNION ALL
     SELECT c.relname || ' (TOAST)', 'toast', pg_total_relation_size(c.reltoastrelid) FROM pg_class c
       JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = current_schema() AND c.relkind = 'r' AND c.relname LIKE 'byline_%' AND c.reltoastrelid <> 0
     ORDER BY bytes DESC`,
  );
  const perMillion = (b: number) => b / (stored / 1e6) / 2 ** 20;
  console.log('\n  relation                                     kind    MiB per million events');
  for (const r of rows) {
    if (Number(r.bytes) < 1 << 20 && stored > 100_000) continue;
    console.log(`  ${r.name.padEnd(44)} ${r.kind.padEnd(7)} ${perMillion(Number(r.bytes)).toFixed(1).padStart(8)}`);
  }
  const sum = (kind: string) => rows.filter((r) => r.kind === kind).reduce((s, r) => s + Number(r.bytes), 0);
  console.log(
    `  tables ${perMillion(sum('table')).toFixed(0)} MiB, TOAST ${perMillion(sum('toast')).toFixed(0)} MiB, indexes ${perMillion(sum('index')).toFixed(0)} MiB per million events`,
  );
}

/**
 * For the build only: room for the WAL between checkpoints and memory for CREATE INDEX, and no WAL
 * for replicas. Buffers and planner settings stay the defaults, so queries run as on a stock server.
 */
const POSTGRES_SETTINGS = {
  maintenance_work_mem: '1GB',
  max_wal_size: '4GB',
  checkpoint_timeout: '15min',
  wal_level: 'minimal',
  max_wal_senders: '0',
};

async function countEvents(url: string): Promise<number> {
  if (url.startsWith('sqlite:')) return storedEvents(url.slice('sqlite:'.length));
  const c = new pgClient.Client({ connectionString: url });
  await c.connect();
  try {
    return Number((await c.query('SELECT count(*) AS n FROM byline_events')).rows[0].n);
  } finally {
    await c.end();
  }
}

/**
 * The bulk build: every secondary index of the events and their table rows dropped, the build run
 * through the store's insert path (its id lookup keeps the primary key), the indexes made again from
 * their own definitions.
 */
async function withoutSecondaryIndexes(pg: TestPostgres, work: () => Promise<void>): Promise<void> {
  const c = pg.client('scale');
  await c.connect();
  try {
    const { rows } = await c.query<{ name: string; def: string }>(
      `SELECT i.indexname AS name, i.indexdef AS def FROM pg_indexes i
       WHERE i.schemaname = current_schema() AND i.tablename IN ('byline_events', 'byline_event_tables')
         AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = format('%I.%I', i.schemaname, i.indexname)::regclass)`,
    );
    console.log(`  bulk build: ${rows.map((r) => r.name).join(', ')} dropped during the build, made again after it`);
    for (const r of rows) await c.query(`DROP INDEX ${r.name}`);
    await work();
    for (const r of rows) {
      const t = process.hrtime.bigint();
      await c.query(r.def);
      console.log(`  CREATE INDEX ${r.name}: ${(Number(process.hrtime.bigint() - t) / 1e9).toFixed(0)} s`);
    }
  } finally {
    await c.end();
  }
}

/** `byline verify` (straight from the store) over the streams of a few sessions: the chains built must hold. */
async function verifySample(url: string, store: EventStore): Promise<void> {
  const sessions = new Set<string>();
  for (let i = 0; sessions.size < 3 && i < 30; i++) {
    const page = await store.query({ identity: identityName(150 + Math.floor(random() * 50)) }, 1);
    const e = page.events[0];
    if (e) sessions.add((JSON.parse(e.json) as { session: { id: string } }).session.id);
  }
  for (const session of sessions) {
    let said = '';
    const out = new Writable({
      write(chunk, _enc, done) {
        said += String(chunk);
        done();
      },
    });
    const code = await verify({ store: url, session, 'allow-unsigned': true }, out);
    const first = said.split('\n')[0];
    console.log(`  byline verify --session ${session}: ${first}`);
    if (code !== 0) throw new Error(`byline verify failed on the built store:\n${said}`);
  }
}

async function main(): Promise<void> {
  console.log(
    `scale benchmark: ${EVENTS.toLocaleString('en')} events on ${STORE}, ${IDENTITIES} identities, ${TABLES} tables, ${DAYS} days`,
  );
  let pg: TestPostgres | undefined;
  const dir = KEEP ?? mkdtempSync(join(tmpdir(), 'byline-scale-'));
  try {
    let url: string;
    let reuse = false;
    if (STORE === 'sqlite') {
      const path = join(dir, `scale-${EVENTS}.db`);
      reuse = existsSync(path);
      url = `sqlite:${path}`;
    } else {
      pg = await startPostgres({ settings: POSTGRES_SETTINGS, ...(KEEP ? { keepIn: join(KEEP, 'postgres') } : {}) });
      console.log(
        `  PostgreSQL settings: ${Object.entries(POSTGRES_SETTINGS)
          .map(([k, v]) => `${k}=${v}`)
          .join(' ')}`,
      );
      const admin = pg.client();
      await admin.connect();
      reuse = (await admin.query("SELECT 1 FROM pg_database WHERE datname = 'scale'")).rows.length > 0;
      if (!reuse) await admin.query('CREATE DATABASE scale');
      await admin.end();
      url = pg.url('scale');
    }
    const store = await openStore(url);
    try {
      if (reuse)
        console.log(
          `  reusing ${STORE === 'sqlite' ? url.slice(7) : 'database scale'} (${(await countEvents(url)).toLocaleString('en')} events)`,
        );
      else if (pg && BULK) await withoutSecondaryIndexes(pg, () => build(store));
      else await build(store);
      if (pg) await verifySample(url, store);
      if (pg) {
        const c = pg.client('scale');
        await c.connect();
        await c.query('VACUUM ANALYZE');
        await c.end();
      }
      const first = await store.query({}, 1);
      const last = first.events[0] ? await lastTime(store, first.events[0].key.timeUs) : undefined;
      if (first.events[0] && last !== undefined) {
        span.fromUs = first.events[0].key.timeUs;
        span.toUs = last;
      }
      await measureQueries(store);
    } finally {
      await store.close();
    }
    let bytes: number;
    let stored: number;
    if (pg) {
      const c = pg.client('scale');
      await c.connect();
      bytes = Number((await c.query("SELECT pg_database_size('scale') AS b")).rows[0].b);
      stored = Number((await c.query('SELECT count(*) AS n FROM byline_events')).rows[0].n);
      await printPostgresSizes(c, stored);
      await c.end();
    } else {
      const path = url.slice('sqlite:'.length);
      bytes = sqliteSize(path);
      stored = storedEvents(path);
    }
    // Per event stored, not per event asked for: a reused store may be one whose build was cut short.
    const perMillion = bytes / (stored / 1e6);
    console.log(
      `\n  size on disk: ${(bytes / 2 ** 30).toFixed(2)} GiB for ${stored.toLocaleString('en')} events, ` +
        `${(perMillion / 2 ** 30).toFixed(2)} GiB per million events` +
        (stored < 10_000_000 ? ` (10 million would take about ${((perMillion * 10) / 2 ** 30).toFixed(1)} GiB)` : ''),
    );
  } finally {
    await pg?.stop();
    if (!KEEP) rmSync(dir, { recursive: true, force: true });
  }
}

await main();
