/**
 * Robustness: random frontend byte streams through a real sidecar in front of a real Postgres.
 *
 * Streams are well-formed messages with random fields (Query, Parse, Bind, Execute, Describe,
 * Close, Sync, Flush, Copy*), optionally with one corruption, split into random chunks written
 * with small delays, on a fresh connection after a proper startup (or, "early", written right
 * behind the startup packet so that they are held until the session is ready). Properties:
 *   (i)   the sidecar never crashes: this process survives, and a normal client still works;
 *   (ii)  a message the sidecar cannot accept gets a FATAL ErrorResponse 08P01 from the sidecar,
 *         which is the last thing sent before the connection closes — only that connection: a
 *         healthy connection opened before the fuzzing keeps working throughout; what the sidecar
 *         forwards arrives as whole, well-framed backend messages;
 *   (iii) no statement reaches Postgres without an event: every `statement:`/`execute` entry of
 *         Postgres's statement log for these sessions matches an event (test/harness/log-match.ts,
 *         the rule of test/completeness/completeness.test.ts), and no event claims a result for a
 *         statement Postgres did not run.
 * Deterministic cases follow for the edges: startup lengths, SSLRequest with plaintext behind it,
 * lengths of 2^31-1, a client leaving mid-message, invalid UTF-8, a typed message with type 0.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { makeCertificates } from '../harness/certs.js';
import { reconcile, waitForLog } from '../harness/log-match.js';
import { AUTH_USERS, startPostgres, type TestPostgres } from '../harness/postgres.js';
import { startTestSidecar, type TestSidecar } from '../harness/sidecar.js';

const MAX_MESSAGE_BYTES = 65_536;

let db: TestPostgres;
let sidecar: TestSidecar;
let tlsSidecar: TestSidecar;
let certDir: string;
let healthy: pg.Client;
let healthyCalls = 0;

beforeAll(async () => {
  db = await startPostgres({ logStatements: true });
  sidecar = await startTestSidecar(db, { params: 'full', identity: 'fuzz-agent', maxMessageBytes: MAX_MESSAGE_BYTES });
  certDir = mkdtempSync(join(tmpdir(), 'byline-fuzz-tls-'));
  const { certFile, keyFile } = makeCertificates(certDir);
  tlsSidecar = await startTestSidecar(db, { identity: 'fuzz-agent', route: { tls: { certFile, keyFile } } });
  healthy = new pg.Client({
    host: sidecar.host,
    port: sidecar.port,
    user: 'agent',
    database: 'postgres',
    application_name: 'fuzz-healthy',
  });
  await healthy.connect();
  await checkHealthy();
});

afterAll(async () => {
  await healthy?.end().catch(() => {});
  await tlsSidecar?.close();
  await sidecar?.close();
  await db?.stop();
  if (certDir) rmSync(certDir, { recursive: true, force: true });
});

async function checkHealthy(): Promise<void> {
  const n = ++healthyCalls;
  const r = await healthy.query('select $1::int as n', [n]);
  expect(r.rows).toEqual([{ n }]);
}

// ------------------------------------------------------------------ encoding (independent of the sidecar's codec)

const cstr = (s: string | Buffer) => Buffer.concat([Buffer.isBuffer(s) ? s : Buffer.from(s), Buffer.from([0])]);
const i16 = (n: number) => {
  const b = Buffer.alloc(2);
  b.writeInt16BE(n);
  return b;
};
const i32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};

interface Msg {
  type: string;
  body: Buffer;
}

const frame = (m: Msg) => Buffer.concat([Buffer.from(m.type, 'latin1'), i32(4 + m.body.length), m.body]);

function startupPacket(params: Record<string, string>): Buffer {
  const pairs = Object.entries(params).flatMap(([k, v]) => [cstr(k), cstr(v)]);
  const body = Buffer.concat([i32(196608), ...pairs, Buffer.from([0])]);
  return Buffer.concat([i32(4 + body.length), body]);
}

const SSL_REQUEST = Buffer.concat([i32(8), i32(80877103)]);

// ------------------------------------------------------------------ reading the backend's answer

interface BackendMessage {
  type: string;
  body: Buffer;
}

/** Frames a backend byte stream; `rest` is the length of a trailing incomplete message. */
function parseBackend(buf: Buffer): { messages: BackendMessage[]; rest: number } {
  const messages: BackendMessage[] = [];
  let pos = 0;
  while (buf.length - pos >= 5) {
    const len = buf.readInt32BE(pos + 1);
    if (len < 4 || buf.length - pos < 1 + len) break;
    messages.push({ type: String.fromCharCode(buf[pos]!), body: buf.subarray(pos + 5, pos + 1 + len) });
    pos += 1 + len;
  }
  return { messages, rest: buf.length - pos };
}

function errorFields(body: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let pos = 0;
  while (pos < body.length && body[pos] !== 0) {
    const nul = body.indexOf(0, pos + 1);
    if (nul < 0) break;
    out[String.fromCharCode(body[pos]!)] = body.toString('utf8', pos + 1, nul);
    pos = nul + 1;
  }
  return out;
}

const errors = (messages: BackendMessage[]) => messages.filter((m) => m.type === 'E').map((m) => errorFields(m.body));
const isBylineError = (m: BackendMessage) => m.type === 'E' && (errorFields(m.body).M ?? '').startsWith('byline: ');

// ------------------------------------------------------------------ a raw connection

interface Outcome {
  bytes: Buffer;
  /** The sidecar closed the connection (rather than the test giving up waiting). */
  closed: boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

class RawConnection {
  readonly received: Buffer[] = [];
  closed = false;
  private readonly socket: Socket;
  private waiters: (() => void)[] = [];
  private lastData = Date.now();

  constructor(host: string, port: number) {
    this.socket = connect({ host, port, noDelay: true });
    this.socket.on('data', (d: Buffer) => {
      this.received.push(d);
      this.lastData = Date.now();
      this.wake();
    });
    this.socket.on('error', () => {}); // EPIPE/ECONNRESET after the sidecar closed: expected
    this.socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  async ready(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.socket.once('connect', () => resolve());
      this.socket.once('error', reject);
    });
  }

  get bytes(): Buffer {
    return Buffer.concat(this.received);
  }

  write(buf: Buffer): void {
    if (!this.closed && !this.socket.destroyed) this.socket.write(buf);
  }

  destroy(): void {
    this.socket.destroy();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Waits until `done` holds or the connection closes; false on timeout. */
  async until(done: () => boolean, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!done() && !this.closed) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await Promise.race([new Promise<void>((r) => this.waiters.push(r)), sleep(Math.min(left, 25))]);
    }
    return done() || this.closed;
  }

  /** Waits for the connection to close; gives up after `idleMs` without data (or `maxMs` in all). */
  async settle(idleMs: number, maxMs = 3000): Promise<boolean> {
    const start = Date.now();
    while (!this.closed) {
      if (Date.now() - this.lastData > idleMs || Date.now() - start > maxMs) return false;
      await Promise.race([new Promise<void>((r) => this.waiters.push(r)), sleep(20)]);
    }
    return true;
  }
}

const readyForQuery = (conn: RawConnection) => () => parseBackend(conn.bytes).messages.some((m) => m.type === 'Z');

/** Opens a connection through the sidecar and finishes the startup. */
async function startSession(target: TestSidecar, app: string, user = 'agent'): Promise<RawConnection> {
  const conn = new RawConnection(target.host, target.port);
  await conn.ready();
  conn.write(startupPacket({ user, database: 'postgres', application_name: app }));
  expect(await conn.until(readyForQuery(conn), 5000)).toBe(true);
  return conn;
}

interface Plan {
  early: boolean;
  chunkSizes: number[];
  delays: number[];
  /** Destroy the socket after writing this many bytes (the client goes away mid-stream). */
  cutAt: number | null;
}

let runCounter = 0;
/** With FUZZ_DEBUG=1, each run's input by application_name, printed for a session the last check rejects. */
const fuzzInputs = new Map<string, unknown>();

/** One fuzz run: a fresh session, the stream in chunks, then whatever the sidecar answers. */
async function runStream(stream: Buffer, plan: Plan, idleMs: number): Promise<Outcome & { app: string }> {
  const app = `fuzz-${++runCounter}`;
  if (process.env.FUZZ_DEBUG) fuzzInputs.set(app, { stream: stream.toString('hex'), plan });
  const startup = startupPacket({ user: 'agent', database: 'postgres', application_name: app });
  let conn: RawConnection;
  let bytes: Buffer;
  if (plan.early) {
    conn = new RawConnection(sidecar.host, sidecar.port);
    await conn.ready();
    bytes = Buffer.concat([startup, stream]);
  } else {
    conn = await startSession(sidecar, app);
    bytes = stream;
  }
  const skip = conn.bytes.length;
  let pos = 0;
  let i = 0;
  const end = plan.cutAt === null ? bytes.length : Math.min(plan.cutAt, bytes.length);
  while (pos < end && !conn.closed) {
    const size = plan.chunkSizes[i % plan.chunkSizes.length]!;
    conn.write(bytes.subarray(pos, Math.min(end, pos + size)));
    pos += size;
    const delay = plan.delays[i % plan.delays.length]!;
    if (delay > 0) await sleep(delay);
    else await new Promise((r) => setImmediate(r));
    i++;
  }
  if (plan.cutAt !== null) {
    conn.destroy();
    await conn.until(() => false, 200);
    return { bytes: conn.bytes.subarray(skip), closed: false, app };
  }
  const closed = await conn.settle(idleMs);
  conn.destroy();
  return { bytes: conn.bytes.subarray(skip), closed, app };
}

// ------------------------------------------------------------------ generators

const SQL = [
  'select 1',
  "select 'a;b' as x; select 2",
  '',
  ';',
  'begin',
  'commit',
  'rollback',
  'select $1::text',
  'select $1::int + $2::int',
  'show server_version',
  'copy (select 1) to stdout',
  'select generate_series(1, 5)',
  'values (1), (2)',
  'select 1/0',
  'select pg_sleep(0)',
];
const noNul = (s: string) => s.replaceAll('\0', '');
const sqlText = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...SQL) },
  { weight: 1, arbitrary: fc.integer().map((n) => `select ${n}`) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 30 }).map(noNul) },
);
const statementName = fc.constantFrom('', 's1', 's2', 'näme');
const portalName = fc.constantFrom('', 'p1');
const paramValue = fc.option(
  fc.oneof(fc.integer().map(String), fc.string({ unit: 'binary', maxLength: 12 }).map(noNul)),
  { freq: 5 },
);

const queryMsg = sqlText.map((t): Msg => ({ type: 'Q', body: cstr(t) }));
const parseMsg = fc
  .record({ name: statementName, text: sqlText, types: fc.array(fc.constantFrom(0, 23, 25), { maxLength: 3 }) })
  .map(
    ({ name, text, types }): Msg => ({
      type: 'P',
      body: Buffer.concat([cstr(name), cstr(text), i16(types.length), ...types.map(i32)]),
    }),
  );
const bindMsg = fc
  .record({
    portal: portalName,
    statement: statementName,
    params: fc.array(paramValue, { maxLength: 3 }),
    formats: fc.constantFrom('none', 'text', 'binary', 'each'),
    perParam: fc.array(fc.constantFrom(0, 1), { minLength: 3, maxLength: 3 }),
    results: fc.array(fc.constantFrom(0, 1), { maxLength: 2 }),
  })
  .map(({ portal, statement, params, formats, perParam, results }): Msg => {
    const codes =
      formats === 'none'
        ? []
        : formats === 'text'
          ? [0]
          : formats === 'binary'
            ? [1]
            : perParam.slice(0, params.length);
    const values = params.flatMap((v) => (v === null ? [i32(-1)] : [i32(Buffer.byteLength(v)), Buffer.from(v)]));
    return {
      type: 'B',
      body: Buffer.concat([
        cstr(portal),
        cstr(statement),
        i16(codes.length),
        ...codes.map(i16),
        i16(params.length),
        ...values,
        i16(results.length),
        ...results.map(i16),
      ]),
    };
  });
const executeMsg = fc
  .record({ portal: portalName, maxRows: fc.integer({ min: -1, max: 3 }) })
  .map(({ portal, maxRows }): Msg => ({ type: 'E', body: Buffer.concat([cstr(portal), i32(maxRows)]) }));
const target = fc.oneof(
  statementName.map((n) => ({ kind: 'S', name: n })),
  portalName.map((n) => ({ kind: 'P', name: n })),
);
const describeMsg = target.map((t): Msg => ({ type: 'D', body: Buffer.concat([Buffer.from(t.kind), cstr(t.name)]) }));
const closeMsg = target.map((t): Msg => ({ type: 'C', body: Buffer.concat([Buffer.from(t.kind), cstr(t.name)]) }));
const emptyMsg = (type: string) => fc.constant<Msg>({ type, body: Buffer.alloc(0) });
const copyMsg = fc.oneof(
  fc.uint8Array({ maxLength: 20 }).map((b): Msg => ({ type: 'd', body: Buffer.from(b) })),
  emptyMsg('c'),
  fc.string({ maxLength: 10 }).map((s): Msg => ({ type: 'f', body: cstr(noNul(s)) })),
);

const message = fc.oneof(
  { weight: 4, arbitrary: queryMsg },
  { weight: 3, arbitrary: parseMsg },
  { weight: 3, arbitrary: bindMsg },
  { weight: 3, arbitrary: executeMsg },
  { weight: 3, arbitrary: emptyMsg('S') },
  { weight: 1, arbitrary: describeMsg },
  { weight: 1, arbitrary: closeMsg },
  { weight: 1, arbitrary: emptyMsg('H') },
  { weight: 1, arbitrary: copyMsg },
);
const messages = fc.array(message, { minLength: 1, maxLength: 12 });

const plan = fc.record({
  early: fc.integer({ min: 0, max: 3 }).map((n) => n === 0), // one time in four
  chunkSizes: fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 8 }),
  delays: fc.array(fc.constantFrom(0, 0, 1, 2), { minLength: 1, maxLength: 4 }),
  cutAt: fc.constant<number | null>(null),
});

/** Every frontend type the sidecar accepts once the session is ready. */
const VALID_TYPES = new Set('QPBEDCSHFdcfX'.split('').map((c) => c.charCodeAt(0)));
/** Messages whose content the sidecar decodes, so that a truncated body is refused. */
const DECODED = new Set(['Q', 'P', 'B', 'E', 'D', 'C']);

/**
 * One corruption of one message. Strict kinds must be refused by the sidecar itself; loose kinds
 * (framing thrown out of step, random bytes) may end any way except a crash or a lost statement.
 */
type Corruption =
  | { kind: 'smallLength'; index: number; length: number }
  | { kind: 'oversize'; index: number; length: number }
  | { kind: 'truncate'; index: number; cut: number }
  | { kind: 'badType'; index: number; type: number }
  | { kind: 'longerLength'; index: number; extra: number }
  | { kind: 'bitflip'; index: number; offset: number; value: number }
  | { kind: 'garbage'; index: number; bytes: Uint8Array };

const corruption: fc.Arbitrary<Corruption> = fc.oneof(
  fc.record({
    kind: fc.constant('smallLength' as const),
    index: fc.nat(),
    length: fc.integer({ min: -(2 ** 31), max: 3 }),
  }),
  fc.record({
    kind: fc.constant('oversize' as const),
    index: fc.nat(),
    length: fc.integer({ min: MAX_MESSAGE_BYTES, max: 2 ** 31 - 1 }),
  }),
  fc.record({ kind: fc.constant('truncate' as const), index: fc.nat(), cut: fc.integer({ min: 1, max: 1000 }) }),
  fc.record({
    kind: fc.constant('badType' as const),
    index: fc.nat(),
    type: fc.integer({ min: 0, max: 255 }).filter((t) => !VALID_TYPES.has(t)),
  }),
  fc.record({ kind: fc.constant('longerLength' as const), index: fc.nat(), extra: fc.integer({ min: 1, max: 300 }) }),
  fc.record({
    kind: fc.constant('bitflip' as const),
    index: fc.nat(),
    offset: fc.nat(),
    value: fc.integer({ min: 0, max: 255 }),
  }),
  fc.record({
    kind: fc.constant('garbage' as const),
    index: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 24 }),
  }),
);

const STRICT = new Set(['smallLength', 'oversize', 'truncate', 'badType']);

/** Applies `c` to one message; returns the stream and whether the sidecar must refuse it. */
function corrupt(list: Msg[], c: Corruption): { stream: Buffer; strict: boolean } {
  const index = c.index % list.length;
  const parts: Buffer[] = list.map(frame);
  const m = list[index]!;
  let strict = STRICT.has(c.kind);
  let bad: Buffer;
  switch (c.kind) {
    case 'smallLength':
      bad = Buffer.concat([Buffer.from(m.type, 'latin1'), i32(c.length), m.body]);
      break;
    case 'oversize':
      // CopyData is streamed, never buffered, so its size is not limited.
      bad = Buffer.concat([Buffer.from(m.type === 'd' ? 'Q' : m.type, 'latin1'), i32(c.length), m.body]);
      break;
    case 'truncate':
      if (DECODED.has(m.type) && m.body.length > 0) {
        bad = frame({ type: m.type, body: m.body.subarray(0, m.body.length - 1 - ((c.cut - 1) % m.body.length)) });
      } else {
        bad = frame({ type: 'Q', body: Buffer.from('select 1') }); // a Query without its terminator
      }
      break;
    case 'badType':
      bad = Buffer.concat([Buffer.from([c.type]), parts[index]!.subarray(1)]);
      break;
    case 'longerLength':
      bad = Buffer.concat([Buffer.from(m.type, 'latin1'), i32(4 + m.body.length + c.extra), m.body]);
      break;
    case 'bitflip': {
      bad = Buffer.concat([parts[index]!]); // a copy
      bad[c.offset % bad.length] = c.value;
      strict = false;
      break;
    }
    case 'garbage':
      bad = Buffer.concat([Buffer.from(c.bytes), parts[index]!]);
      break;
  }
  parts[index] = bad;
  return { stream: Buffer.concat(parts), strict };
}

const TERMINATE = frame({ type: 'X', body: Buffer.alloc(0) });

// ------------------------------------------------------------------ properties

/** Holds for every run, whatever was sent. */
function checkCommon(outcome: Outcome, clientLeft = false): BackendMessage[] {
  const { messages: received, rest } = parseBackend(outcome.bytes);
  // What the sidecar forwards or says arrives as whole messages.
  if (outcome.closed) expect(rest).toBe(0);
  const own = received.findIndex(isBylineError);
  if (own >= 0) {
    // The sidecar's own refusal is FATAL, the last thing sent, and the connection then closes.
    expect(errorFields(received[own]!.body)).toMatchObject({ S: 'FATAL', V: 'FATAL', C: '08P01' });
    expect(own).toBe(received.length - 1);
    if (!clientLeft) expect(outcome.closed).toBe(true);
  }
  return received;
}

const stats = { wellFormed: 0, strict: 0, loose: 0, bylineRefusals: 0, postgresErrors: 0, hung: 0 };

describe('fuzzed frontend streams', () => {
  test('well-formed messages with random fields are forwarded; nothing is refused by the sidecar', async () => {
    await fc.assert(
      fc.asyncProperty(messages, plan, async (list, p) => {
        // CopyData cannot be held until the session is ready (it is never buffered): refused early.
        const sent = p.early ? list.filter((m) => m.type !== 'd') : list;
        const stream = Buffer.concat([...sent.map(frame), TERMINATE]);
        const outcome = await runStream(stream, p, 1000);
        const received = checkCommon(outcome);
        stats.wellFormed++;
        stats.postgresErrors += errors(received).length;
        expect(received.filter(isBylineError)).toEqual([]);
        // The Terminate at the end reached Postgres, which closed, and so did the sidecar.
        expect(outcome.closed).toBe(true);
        await checkHealthy();
      }),
      { numRuns: 80, plugins: [fc.interruptAfterTimeLimit(25_000, { failOnInterrupt: true })] },
    );
  });

  test('corrupted streams: refused with 08P01 and closed when malformed, never a crash', async () => {
    await fc.assert(
      fc.asyncProperty(
        messages,
        corruption,
        plan,
        fc.oneof({ weight: 7, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.nat() }),
        async (list, c, p, cut) => {
          const { stream, strict } = corrupt(list, c);
          const bytes = Buffer.concat([stream, TERMINATE]);
          // Sometimes the client goes away mid-stream.
          const cutAt = cut === null ? null : cut % bytes.length;
          const outcome = await runStream(bytes, { ...p, cutAt }, 250);
          const received = checkCommon(outcome, cutAt !== null);
          if (strict) stats.strict++;
          else stats.loose++;
          if (received.some(isBylineError)) stats.bylineRefusals++;
          if (!outcome.closed && cutAt === null) stats.hung++;
          if (strict && cutAt === null) {
            const own = received.filter(isBylineError).map((m) => errorFields(m.body).C);
            expect(own).toEqual(['08P01']);
            expect(outcome.closed).toBe(true);
          }
          await checkHealthy();
        },
      ),
      { numRuns: 100, plugins: [fc.interruptAfterTimeLimit(40_000, { failOnInterrupt: true })] },
    );
    console.log(`fuzz runs: ${JSON.stringify(stats)}`);
    // The generators reach both kinds, and the sidecar did refuse some streams itself.
    expect(stats.strict).toBeGreaterThan(20);
    expect(stats.loose).toBeGreaterThan(20);
    expect(stats.bylineRefusals).toBeGreaterThan(20);
  });
});

// ------------------------------------------------------------------ deterministic cases

async function expectRefused(outcome: Outcome, message: RegExp): Promise<void> {
  const { messages: received, rest } = parseBackend(outcome.bytes);
  expect(rest).toBe(0);
  expect(received.map((m) => m.type)).toEqual(['E']);
  const e = errorFields(received[0]!.body);
  expect(e).toMatchObject({ S: 'FATAL', C: '08P01' });
  expect(e.M).toMatch(message);
  expect(outcome.closed).toBe(true);
}

/** Writes `bytes` on a fresh connection (no startup) and waits for the sidecar to close it. */
async function raw(target: TestSidecar, bytes: Buffer): Promise<Outcome> {
  const conn = new RawConnection(target.host, target.port);
  await conn.ready();
  conn.write(bytes);
  const closed = await conn.settle(2000);
  conn.destroy();
  return { bytes: conn.bytes, closed };
}

/** Before a startup packet Postgres answers malformed input with nothing but a closed connection. */
function expectClosedSilently(outcome: Outcome): void {
  expect(outcome.bytes.length).toBe(0);
  expect(outcome.closed).toBe(true);
}

describe('deterministic malformed input', () => {
  test('a startup packet with a length of 3 is refused by closing, without a reply (as Postgres)', async () => {
    expectClosedSilently(await raw(sidecar, i32(3)));
  });

  test('a startup packet over 10000 bytes is refused without a reply; one of exactly 10000 is accepted', async () => {
    // The user's name is as long as the injected scram_user, so the packet sent upstream is as long.
    const fill = (size: number) => {
      const base = startupPacket({ user: 'agent_user', database: 'postgres', application_name: 'fuzz-big' });
      const pad = 'x'.repeat(size - base.length);
      return startupPacket({ user: 'agent_user', database: 'postgres', application_name: `fuzz-big${pad}` });
    };
    const big = fill(10_001);
    expect(big.length).toBe(10_001);
    expectClosedSilently(await raw(sidecar, big));
    const limit = fill(10_000);
    expect(limit.length).toBe(10_000);
    const conn = new RawConnection(sidecar.host, sidecar.port);
    await conn.ready();
    conn.write(limit);
    expect(await conn.until(readyForQuery(conn), 5000)).toBe(true);
    expect(errors(parseBackend(conn.bytes).messages)).toEqual([]);
    conn.destroy();
  });

  test('an SSLRequest followed by plaintext in the same packet is refused before any TLS', async () => {
    const startup = startupPacket({ user: 'agent', database: 'postgres', application_name: 'fuzz-ssl-smuggle' });
    const before = (await tlsSidecar.events()).length;
    const outcome = await raw(tlsSidecar, Buffer.concat([SSL_REQUEST, startup]));
    // No 'S': the sidecar never agreed to TLS, and says why in plaintext.
    await expectRefused(outcome, /^byline: received unencrypted data after SSL request$/);
    expect((await tlsSidecar.events()).length).toBe(before);
    // The same sidecar does serve TLS to a client that waits for the answer.
    const client = new pg.Client({
      host: tlsSidecar.host,
      port: tlsSidecar.port,
      user: 'agent',
      database: 'postgres',
      application_name: 'fuzz-tls-ok',
      ssl: { rejectUnauthorized: false },
    });
    await client.connect();
    expect((await client.query("select 'over tls' as v")).rows).toEqual([{ v: 'over tls' }]);
    await client.end();
  });

  test('a typed message with a length of 2^31-1 is refused without being buffered', async () => {
    const conn = await startSession(sidecar, 'fuzz-huge');
    const skip = conn.bytes.length;
    conn.write(Buffer.concat([Buffer.from('Q'), i32(2 ** 31 - 1), Buffer.from('select 1')]));
    const closed = await conn.settle(2000);
    await expectRefused(
      { bytes: conn.bytes.subarray(skip), closed },
      /^byline: invalid message from the client: message of type 'Q' is 2147483648 bytes, above the limit of 65536$/,
    );
    conn.destroy();
    await checkHealthy();
  });

  test('CopyData with a length above Postgres own 1 GiB limit is refused with 08P01', async () => {
    // CopyData streams through unbuffered, so maxMessageBytes does not apply; Postgres would drop
    // the connection without a word for lengths above 1 GiB, so the sidecar says why first.
    const conn = await startSession(sidecar, 'fuzz-huge-copy');
    const skip = conn.bytes.length;
    conn.write(Buffer.concat([Buffer.from('d'), i32(2 ** 31 - 1), Buffer.alloc(100)]));
    const closed = await conn.settle(3000);
    await expectRefused(
      { bytes: conn.bytes.subarray(skip), closed },
      /^byline: invalid message from the client: message of type 'd' is 2147483648 bytes, above Postgres's own limit$/,
    );
    conn.destroy();
    const session = (await sidecar.events()).filter((e) => e.session.applicationName === 'fuzz-huge-copy');
    expect(session.map((e) => e.type)).toEqual(['session.start', 'session.end']);
    await checkHealthy();
  });

  test('a client that closes mid-message leaves no statement behind, and its session ends', async () => {
    const app = 'fuzz-mid-message';
    const conn = await startSession(sidecar, app);
    conn.write(frame({ type: 'Q', body: cstr('select 42 as complete') }));
    expect(
      await conn.until(() => parseBackend(conn.bytes).messages.filter((m) => m.type === 'Z').length === 2, 5000),
    ).toBe(true);
    const partial = frame({ type: 'Q', body: cstr('select 43 as never_sent_whole') });
    conn.write(partial.subarray(0, partial.length - 6));
    await sleep(50);
    conn.destroy();
    // Half a startup packet, too.
    const half = new RawConnection(sidecar.host, sidecar.port);
    await half.ready();
    half.write(startupPacket({ user: 'agent', database: 'postgres', application_name: 'fuzz-half' }).subarray(0, 9));
    await sleep(50);
    half.destroy();

    await expect.poll(() => sidecar.running.sessions, { timeout: 5000 }).toBe(1); // only the healthy one
    const events = (await sidecar.events()).filter((e) => e.session.applicationName === app);
    expect(events.map((e) => [e.type, e.statement?.text ?? null])).toEqual([
      ['session.start', null],
      ['statement', 'select 42 as complete'],
      ['session.end', null],
    ]);
    expect((await sidecar.events()).some((e) => e.session.applicationName === 'fuzz-half')).toBe(false);
    const log = await waitForLog(db);
    expect(log.filter((e) => e.applicationName === app).map((e) => e.message)).toEqual([
      'statement: select 42 as complete',
    ]);
  });

  test('a Query whose text is invalid UTF-8 gets Postgres own error, is recorded, and the session goes on', async () => {
    const app = 'fuzz-bad-utf8';
    const conn = await startSession(sidecar, app);
    const skip = conn.bytes.length;
    const text = Buffer.concat([Buffer.from("select 'caf"), Buffer.from([0xc3, 0x28, 0xff]), Buffer.from("' as v")]);
    conn.write(frame({ type: 'Q', body: cstr(text) }));
    conn.write(frame({ type: 'Q', body: cstr('select 1 as after') }));
    const done = () => parseBackend(conn.bytes.subarray(skip)).messages.filter((m) => m.type === 'Z').length === 2;
    expect(await conn.until(done, 5000)).toBe(true);
    const received = parseBackend(conn.bytes.subarray(skip)).messages;
    expect(received.map((m) => m.type)).toEqual(['E', 'Z', 'T', 'D', 'C', 'Z']);
    expect(errorFields(received[0]!.body)).toMatchObject({ S: 'ERROR', C: '22021' });
    expect(received[0]!.body.toString()).not.toContain('byline: ');
    conn.destroy();
    const events = (await sidecar.statements()).filter((e) => e.session.applicationName === app);
    expect(events.map((e) => [e.statement!.text, e.result!.status, e.result!.sqlstate])).toEqual([
      ["select 'caf\ufffd(\ufffd' as v", 'error', '22021'],
      ['select 1 as after', 'ok', null],
    ]);
  });

  test('messages pipelined behind the startup packet, Terminate included, run before the session ends', async () => {
    const app = 'fuzz-pipelined-startup';
    const conn = new RawConnection(sidecar.host, sidecar.port);
    await conn.ready();
    const startup = startupPacket({ user: 'agent', database: 'postgres', application_name: app });
    conn.write(Buffer.concat([startup, frame({ type: 'Q', body: cstr("select 'early bird' as v") }), TERMINATE]));
    expect(await conn.settle(2000)).toBe(true);
    const received = parseBackend(conn.bytes).messages;
    expect(received.filter((m) => m.type === 'D').map((m) => m.body.subarray(6).toString())).toEqual(['early bird']);
    expect(received.filter((m) => m.type === 'C').map((m) => m.body.toString())).toEqual(['SELECT 1\0']);
    const events = (await sidecar.statements()).filter((e) => e.session.applicationName === app);
    expect(events.map((e) => [e.statement!.text, e.result!.status])).toEqual([["select 'early bird' as v", 'ok']]);
  });

  test('a malformed message held until the session is ready is refused, and the refusal reaches the client', async () => {
    // The refusal happens while Postgres's ReadyForQuery is being handled; nothing may be written
    // to the client after it (a write after end resets the connection and loses the error).
    for (let i = 0; i < 5; i++) {
      const conn = new RawConnection(sidecar.host, sidecar.port);
      await conn.ready();
      const startup = startupPacket({ user: 'agent', database: 'postgres', application_name: `fuzz-held-${i}` });
      conn.write(Buffer.concat([startup, frame({ type: 'Q', body: Buffer.from('select 1') })]));
      // The client goes on sending, as a pipelining client would.
      while (!conn.closed) {
        conn.write(frame({ type: 'S', body: Buffer.alloc(0) }));
        await sleep(1);
      }
      const received = parseBackend(conn.bytes).messages;
      expect(received.at(-1)?.type).toBe('E');
      expect(errorFields(received.at(-1)!.body)).toMatchObject({
        S: 'FATAL',
        C: '08P01',
        M: 'byline: Query: missing string terminator',
      });
      conn.destroy();
    }
  });

  test('a typed message whose type byte is 0, sent before the session is ready, is refused as malformed', async () => {
    // Type 0 is how the reader reports untyped startup messages; a typed message must not pass for
    // one. This one is built so that, read as a startup packet, it would be a valid one.
    const app = 'fuzz-type-zero';
    const params = (pad: number) => Buffer.from(`user\0x\0database\0postgres\0application_name\0${'z'.repeat(pad)}\0`);
    // [0][length 256][03 00 00 …]: bytes 4..8 read 00 03 00 00, protocol 3.0.
    const body = Buffer.concat([Buffer.from([3, 0, 0]), params(256 - 4 - 3 - 1 - params(0).length), Buffer.from([0])]);
    const zero = Buffer.concat([Buffer.from([0]), i32(4 + body.length), body]);
    expect(zero.readInt32BE(4)).toBe(196608);
    const conn = new RawConnection(sidecar.host, sidecar.port);
    await conn.ready();
    conn.write(Buffer.concat([startupPacket({ user: 'agent', database: 'postgres', application_name: app }), zero]));
    const closed = await conn.settle(2000);
    conn.destroy();
    const received = parseBackend(conn.bytes).messages;
    const own = received.filter(isBylineError).map((m) => errorFields(m.body));
    expect(own.map((e) => e.C)).toEqual(['08P01']);
    expect(closed).toBe(true);
    await expect.poll(() => sidecar.running.sessions, { timeout: 5000 }).toBe(1); // only the healthy one
    const sessions = (await sidecar.events()).filter((e) => e.session.applicationName === app);
    expect(sessions.map((e) => e.type)).toEqual(['session.start', 'session.end']);
  });
});

// ------------------------------------------------------------------ completeness of what got through

describe('after the fuzzing', () => {
  test('the sidecar still serves a normal client, and every statement Postgres ran has its event', async () => {
    await checkHealthy();
    const client = new pg.Client({ host: sidecar.host, port: sidecar.port, user: 'agent', database: 'postgres' });
    await client.connect();
    expect((await client.query('select 2 + 2 as four')).rows).toEqual([{ four: 4 }]);
    await client.end();

    const log = (await waitForLog(db)).filter((e) => e.user === AUTH_USERS.scram);
    const events = [...(await sidecar.statements()), ...(await tlsSidecar.statements())];
    // Parameters in binary format are logged by Postgres as text, by the sidecar as hex: not compared.
    const r = reconcile(log, events, { checkParams: false });
    console.log(
      `fuzz: Postgres executed ${r.statements} statements in ${r.units.length} messages; ` +
        `${events.length} statement events: ${r.matchedEvents.size} matched, ${r.missing.length} missing, ` +
        `${r.refused.length} refused before execution, ${r.extra.length + r.duplicated.length} unknown (the connection ended before Postgres answered)`,
    );
    if (process.env.FUZZ_DEBUG) {
      for (const bad of [...r.extra, ...r.duplicated].filter((e) => e.result!.status !== 'unknown')) {
        const app = bad.session.applicationName;
        console.log('DEBUG', app, JSON.stringify(fuzzInputs.get(app ?? '')));
        for (const e of events.filter((x) => x.session.id === bad.session.id))
          console.log(
            'EV',
            e.session.seq,
            JSON.stringify(e.statement!.text),
            e.statement!.protocol,
            JSON.stringify(e.result),
          );
        for (const l of log.filter((x) => x.applicationName === app)) console.log('LOG', l.message, l.detail ?? '');
      }
    }
    expect(r.missing.map((u) => `${u.applicationName}: ${u.message}`)).toEqual([]);
    expect(r.matchedUnits).toBe(r.units.length);
    // Nothing Postgres did not run is claimed to have run: the rest failed or never got an answer.
    expect([...r.extra, ...r.duplicated].filter((e) => e.result!.status !== 'unknown')).toEqual([]);
    expect(r.units.length).toBeGreaterThan(100);
    expect(new Set(events.map((e) => e.identity.name))).toEqual(new Set(['fuzz-agent']));
  });
});
