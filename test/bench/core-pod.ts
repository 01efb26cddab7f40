/**
 * The audit path as a pod runs it, without sockets: CPU per statement for shaping alone (what the
 * no-sink sidecar does), plus the spool in batch durability (begin record, events record, one
 * write per turn of 8 sessions), plus shipping (taking the events back for a request body, every
 * 500 statements, acknowledged) from memory as a caught-up shipper does, or from the segment files
 * as a shipper behind by more than the memory bound does. The HTTP request itself: core-ship.ts.
 *
 * `npx tsx test/bench/core-pod.ts [--statements N] [--rounds N]`
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { EventBuilder } from '../../sidecar/src/audit/event-builder.js';
import { AuditPipeline } from '../../sidecar/src/audit/pipeline.js';
import type { AuthzDecision, StatementRecord } from '../../sidecar/src/capture/records.js';
import { Spool } from '../../sidecar/src/spool/spool.js';
import { benchSession } from './bench-session.js';

type Mode = 'shaping only' | 'spool (batch)' | 'spool + ship from memory' | 'spool + ship from disk';
const MODES: Mode[] = ['shaping only', 'spool (batch)', 'spool + ship from memory', 'spool + ship from disk'];
const SHIP_EVERY = 500;

const session = benchSession();
const decision: AuthzDecision = {
  allow: true,
  rule: 'route orders: readWrite',
  approval: null,
  message: null,
  hint: null,
};

function statement(seq: number): StatementRecord {
  return {
    kind: 'execute',
    receivedAt: Date.now(),
    startedAt: 0,
    text: 'SELECT abalance FROM pgbench_accounts WHERE aid = $1',
    preparedName: 'P0_1',
    params: { lengths: [5], formats: [0], values: null },
    applicationName: null,
    results: [{ status: 'ok', tag: 'SELECT 1', rows: 1, sqlstate: null, error: null, copy: false, durationUs: 80 }],
    notExecuted: null,
    seq,
    unrecorded: false,
    authz: [decision],
  };
}

/** CPU µs per statement in `mode`, and bytes read back from the segments. */
async function measure(mode: Mode, statements: number): Promise<{ cpuUs: number; bytesRead: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'byline-bench-pod-'));
  const logger = pino({ level: 'silent' });
  const { spool, recovered } = Spool.open({
    dir,
    durability: 'batch',
    maxBytes: 1 << 40,
    logger,
    ...(mode === 'spool + ship from disk' ? { recentBytes: 0 } : {}),
  });
  try {
    const spooled = mode !== 'shaping only';
    const ships = mode.includes('ship');
    const pipeline = new AuditPipeline(
      new EventBuilder('redacted', null),
      spooled ? [spool] : [],
      logger,
      spool.stream,
      recovered.chain,
    );
    spool.sessionStarted(session);
    // A caught-up shipper starts where this process began writing.
    spool.acknowledge({ segment: 1, offset: 0 });
    await spool.settled();
    let body = 0;
    const cpu0 = process.cpuUsage();
    for (let i = 1; i <= statements; i++) {
      const r = statement(i);
      if (spooled) spool.begin(session, r);
      // One write per event-loop turn for the 8 sessions of a pgbench run.
      if (spooled && i % 8 === 0) await new Promise<void>((resolve) => spool.writeThisTurn(() => resolve()));
      pipeline.statement(session, r);
      if (i % 256 === 0) await new Promise((resolve) => setTimeout(resolve, 0));
      if (ships && i % SHIP_EVERY === 0) {
        for (;;) {
          const batch = await spool.readEvents(spool.acknowledged, 1024 * 1024);
          if (batch.events.count === 0) break;
          body += batch.events.body.length;
          spool.acknowledge(batch.next, batch.events.count);
        }
      }
    }
    await pipeline.flush();
    const cpu = process.cpuUsage(cpu0);
    if (ships && body === 0) throw new Error('nothing was shipped');
    await spool.close();
    return { cpuUs: (cpu.user + cpu.system) / statements, bytesRead: spool.bytesRead };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: { statements: { type: 'string', default: '50000' }, rounds: { type: 'string', default: '3' } },
  });
  const statements = Number(values.statements);
  const figures = new Map<Mode, number[]>(MODES.map((m) => [m, []]));
  const read = new Map<Mode, number>();
  // Rounds interleave the modes, so drift on a shared machine hits each alike; the median is shown.
  for (let round = 0; round < Number(values.rounds); round++) {
    for (const mode of MODES) {
      const { cpuUs, bytesRead } = await measure(mode, statements);
      figures.get(mode)!.push(cpuUs);
      read.set(mode, bytesRead);
    }
  }
  console.log(`audit path, ${statements} prepared statements, CPU per statement (median of ${values.rounds}):`);
  for (const mode of MODES) {
    const sorted = figures.get(mode)!.sort((a, b) => a - b);
    const median = sorted[sorted.length >> 1]!;
    const bytes = read.get(mode)! / statements;
    console.log(
      `  ${mode.padEnd(26)} ${median.toFixed(2).padStart(6)} µs  (runs ${sorted.map((v) => v.toFixed(1)).join(', ')}; ${bytes.toFixed(0)} bytes read back per statement)`,
    );
  }
}
