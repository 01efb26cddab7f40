/**
 * CPU cost of the sidecar's pure core per pgbench-style transaction, without sockets: framing and
 * statement tracking (the forward path), and shaping + chaining + serializing the event (off the
 * forward path). Single-threaded and deterministic enough to compare changes; printed by
 * `npm run bench` next to the end-to-end figures.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { EventBuilder, type SessionInfo } from '../../sidecar/src/audit/event-builder.js';
import { EventChain } from '../../sidecar/src/audit/event-chain.js';
import type { StatementRecord } from '../../sidecar/src/capture/records.js';
import { StatementTracker } from '../../sidecar/src/capture/statement-tracker.js';
import { SidecarMetrics } from '../../sidecar/src/metrics.js';
import { StatementAnalyzer } from '../../sidecar/src/policy/analyzer.js';
import { Authorizer } from '../../sidecar/src/policy/authorizer.js';
import { PolicyEngine } from '../../sidecar/src/policy/engine.js';
import { MessageReader, Verdict } from '../../sidecar/src/protocol/frame-reader.js';
import { Spool } from '../../sidecar/src/spool/spool.js';
import { TableExtractor } from '../../sidecar/src/sql/tables.js';

function msg(type: string, body: Buffer): Buffer {
  const out = Buffer.alloc(5 + body.length);
  out[0] = type.charCodeAt(0);
  out.writeInt32BE(4 + body.length, 1);
  body.copy(out, 5);
  return out;
}
const cstr = (s: string) => Buffer.from(`${s}\0`);
const int16 = (n: number) => Buffer.from([n >> 8, n & 0xff]);
const int32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};

function simpleQuery(aid: number): Buffer {
  return msg('Q', cstr(`SELECT abalance FROM pgbench_accounts WHERE aid = ${aid};`));
}
const preparedExecute = (aid: number) =>
  Buffer.concat([
    msg(
      'B',
      Buffer.concat([
        cstr(''),
        cstr('P0_1'),
        int16(0),
        int16(1),
        int32(String(aid).length),
        Buffer.from(String(aid)),
        int16(0),
      ]),
    ),
    msg('E', Buffer.concat([cstr(''), int32(0)])),
    msg('S', Buffer.alloc(0)),
  ]);
const rowDescription = msg(
  'T',
  Buffer.concat([int16(1), cstr('abalance'), int32(16397), int16(3), int32(23), int16(4), int32(-1), int16(0)]),
);
const dataRow = msg('D', Buffer.concat([int16(1), int32(4), Buffer.from('1234')]));
const answerSimple = Buffer.concat([rowDescription, dataRow, msg('C', cstr('SELECT 1')), msg('Z', Buffer.from('I'))]);
const answerPrepared = Buffer.concat([
  msg('2', Buffer.alloc(0)),
  dataRow,
  msg('C', cstr('SELECT 1')),
  msg('Z', Buffer.from('I')),
]);

const SHAPE_ROUNDS = 3;

export interface CoreFigures {
  protocol: 'simple' | 'prepared';
  forwardUs: number;
  shapeUs: number;
  /**
   * The policy decision per statement: simple, every text new (parse + facts + decide, as for
   * statements with literals); prepared, the facts kept from Parse and the decision cached.
   */
  policyUs: number;
  /**
   * The spool as a pod runs it (durability batch, a real file in the temp dir): a begin record
   * written before each statement is forwarded, its events appended once shaped. Wall time per
   * transaction on the event loop, and CPU time of the whole process (fsync threads included).
   */
  spoolUs: number;
  spoolCpuUs: number;
}

export async function measureCore(iterations = 100_000): Promise<CoreFigures[]> {
  const tables = await TableExtractor.create();
  const out: CoreFigures[] = [];
  for (const protocol of ['simple', 'prepared'] as const) {
    const finished: StatementRecord[] = [];
    const tracker = new StatementTracker(
      { begin() {}, finish: (r) => finished.push(r) },
      { captureParamValues: false },
    );
    const sink = { push() {} };
    const client = new MessageReader(
      {
        onMessage: (t, b, s, e) => {
          tracker.onFrontend(t, b, s, e);
          return Verdict.forward;
        },
        onStreamed() {},
        onFramingError() {},
      },
      sink,
      1 << 26,
      { streamedTypes: 'd' },
    );
    const server = new MessageReader(
      {
        onMessage: (t, b, s, e) => {
          tracker.onBackend(t, b, s, e);
          return Verdict.forward;
        },
        onStreamed: (t) => tracker.onBackendStreamed(t),
        onFramingError() {},
      },
      sink,
      1 << 26,
      { streamedTypes: 'Dd' },
    );
    if (protocol === 'prepared') {
      client.push(
        msg(
          'P',
          Buffer.concat([cstr('P0_1'), cstr('SELECT abalance FROM pgbench_accounts WHERE aid = $1;'), int16(0)]),
        ),
      );
      client.push(msg('S', Buffer.alloc(0)));
      server.push(Buffer.concat([msg('1', Buffer.alloc(0)), msg('Z', Buffer.from('I'))]));
    }
    const requests = Array.from({ length: 1000 }, (_, i) =>
      protocol === 'simple' ? simpleQuery(i * 7919) : preparedExecute(i * 7919),
    );
    const answer = protocol === 'simple' ? answerSimple : answerPrepared;
    const t0 = performance.now();
    for (let i = 0; i < iterations; i++) {
      client.push(requests[i % 1000]!);
      server.push(answer);
    }
    const forwardUs = ((performance.now() - t0) * 1000) / iterations;

    const builder = new EventBuilder('redacted', tables);
    const session: SessionInfo = {
      id: 's',
      identity: { kind: 'agent', name: 'bench', namespace: null, pod: null, serviceAccount: null, source: 'static' },
      target: { database: 'postgres', host: '127.0.0.1', port: 5432, route: 'bench' },
      client: '127.0.0.1:5000',
      dbUser: 'app',
      applicationName: 'pgbench',
      nextSeq: 1,
    };
    // CPU time, the best of a few rounds: on a shared machine wall time of one pass measures the
    // neighbours (a loaded run read 13–24 µs for what takes 7–9).
    let shapeUs = Number.POSITIVE_INFINITY;
    let bytes = 0;
    for (let round = 0; round < SHAPE_ROUNDS; round++) {
      const chain = new EventChain('bench');
      const cpu0 = process.cpuUsage();
      for (const record of finished) {
        for (const e of builder.statementEvents(session, record)) bytes += chain.append(e).length;
      }
      const cpu = process.cpuUsage(cpu0);
      shapeUs = Math.min(shapeUs, (cpu.user + cpu.system) / finished.length);
    }
    if (bytes === 0) throw new Error('no events were shaped');
    const spool = await measureSpool(session, finished, iterations);
    out.push({
      protocol,
      forwardUs,
      shapeUs,
      policyUs: await measurePolicy(protocol, iterations),
      spoolUs: spool.wallUs,
      spoolCpuUs: spool.cpuUs,
    });
  }
  return out;
}

/**
 * The spool's cost per transaction on the forward path and the event loop: begin record, the
 * write before forwarding, the finished event appended. Runs in slices of 100 transactions per
 * event-loop turn, as a busy sidecar does, so that its timers (events flush, batch fsync) run.
 */
async function measureSpool(
  session: SessionInfo,
  records: StatementRecord[],
  iterations: number,
): Promise<{ wallUs: number; cpuUs: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'byline-bench-spool-'));
  try {
    const { spool } = Spool.open({ dir, durability: 'batch', maxBytes: 1 << 40, logger: pino({ level: 'silent' }) });
    spool.sessionStarted(session);
    const builder = new EventBuilder('redacted', null);
    const chain = new EventChain(spool.stream);
    const line = chain.append(builder.statementEvents(session, records[0]!)[0]!);
    const batch = {
      head: chain.position,
      jsonl: `${line}\n`,
      groups: [{ session: session.id, record: 0, nextSeq: 2, ended: false, lines: [line] }],
    };
    const n = Math.min(iterations, records.length);
    // As a session begins them: with the policy's decision (one shared object, as the engine caches it).
    const decision = [
      { allow: true, rule: 'access readWrite (AgentIdentity bench)', approval: null, message: null, hint: null },
    ];
    for (let j = 0; j < n; j++) records[j]!.authz = decision;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    let wall = 0;
    for (let i = 0; i < n; i += 100) {
      const s0 = performance.now();
      for (let j = i; j < Math.min(n, i + 100); j++) {
        const r = records[j]!;
        spool.begin(session, r);
        if (!spool.flushPending()) throw new Error('the spool refused a write');
        batch.groups[0]!.record = r.seq;
        spool.write(batch);
      }
      wall += performance.now() - s0;
      await new Promise((resolve) => setImmediate(resolve));
    }
    await spool.close();
    const cpu = process.cpuUsage(cpu0);
    if (performance.now() - t0 <= 0) throw new Error('no time passed');
    return { wallUs: (wall * 1000) / n, cpuUs: (cpu.user + cpu.system) / n };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * µs per statement for the policy decision as the session asks it (Authorizer: analysis, decision,
 * the decision counter), with a guarded readWrite route (the work a real policy asks for).
 */
async function measurePolicy(protocol: 'simple' | 'prepared', iterations: number): Promise<number> {
  const analyzer = await StatementAnalyzer.create({ cacheSize: 1000 });
  const engine = new PolicyEngine();
  engine.setPolicy({
    version: '1',
    identity: { name: 'bench', namespace: null },
    routes: [
      {
        name: 'bench',
        access: 'readWrite',
        accessSource: 'AgentIdentity bench',
        guardrails: [
          {
            source: 'AgentIdentity bench',
            guardrails: { deny: { tables: ['public.payroll*'] }, requireWhere: ['delete'] },
          },
        ],
        approvals: [],
      },
    ],
  });
  const authorizer = new Authorizer(engine, analyzer, new SidecarMetrics());
  let allowed = 0;
  let t0: number;
  if (protocol === 'simple') {
    const n = Math.min(iterations, 20_000);
    const texts = Array.from({ length: n }, (_, i) => `SELECT abalance FROM pgbench_accounts WHERE aid = ${i * 7919};`);
    // Warm the parser and the JIT on other texts first: the figure is the steady state.
    for (let i = 0; i < 5000; i++) analyzer.analyze(`SELECT abalance FROM pgbench_accounts WHERE aid = -${i};`);
    t0 = performance.now();
    for (const text of texts) if (authorizer.query('bench', text, 0, 0)[0]!.allow) allowed++;
    if (allowed !== n) throw new Error('the policy bench expected every statement to be allowed');
    return ((performance.now() - t0) * 1000) / n;
  }
  // A prepared statement as the tracker keeps it: analysed at its first Execute, decided at every one.
  const prepared = { text: 'SELECT abalance FROM pgbench_accounts WHERE aid = $1;', name: 'p', flags: 0, raw: null };
  authorizer.execute('bench', prepared, 0);
  t0 = performance.now();
  for (let i = 0; i < iterations; i++) if (authorizer.execute('bench', prepared, i)[0]!.allow) allowed++;
  if (allowed !== iterations) throw new Error('the policy bench expected every statement to be allowed');
  return ((performance.now() - t0) * 1000) / iterations;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const f of await measureCore()) {
    console.log(
      `${f.protocol}: forward path ${f.forwardUs.toFixed(2)} µs/tx, event shaping ${f.shapeUs.toFixed(2)} µs/event, ` +
        `policy decision ${f.policyUs.toFixed(2)} µs/statement, ` +
        `spool ${f.spoolUs.toFixed(2)} µs/tx on the event loop (${f.spoolCpuUs.toFixed(2)} µs CPU)`,
    );
  }
}
