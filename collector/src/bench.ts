/**
 * Ingest throughput over HTTP: a collector started in-process on loopback, realistic events
 * (sessions, statements with tables, chained) posted in batches of 500 by several shippers at once,
 * as a collector serving several sidecars sees them: each shipper its own token, identity and
 * stream, sending its next batch when the last one is acknowledged. The events are built before the
 * clock starts; with `cpuProfile` only the timed part is profiled (a V8 .cpuprofile).
 */
import { writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { Session } from 'node:inspector/promises';
import { performance } from 'node:perf_hooks';
import pino from 'pino';
import { startCollector } from './collector.js';
import { ndjson, SampleStream } from './sample-events.js';

const BATCH = 500;

export interface IngestBenchOptions {
  /** Events in all (default 100 000). */
  events?: number;
  /** Shippers posting at the same time (default 4). */
  shippers?: number;
  /** Write a CPU profile of the timed part here. */
  cpuProfile?: string;
  /** Events per request (default 500, the sidecar's largest). */
  batch?: number;
}

export interface IngestBenchResult {
  eventsPerSecond: number;
  /** CPU time of this process (collector and the shippers' HTTP clients) per event, user + system. */
  cpuUsPerEvent: number;
  /** Time the main thread's event loop was busy per event (verification workers' time not included). */
  mainThreadUsPerEvent: number;
  events: number;
  shippers: number;
}

export async function measureIngest(storeUrl: string, options: IngestBenchOptions = {}): Promise<IngestBenchResult> {
  const events = options.events ?? 100_000;
  const shippers = options.shippers ?? 4;
  const batch = options.batch ?? BATCH;
  const plans = Array.from({ length: shippers }, (_, i) => {
    const identity = `bench-agent-${i}`;
    const stream = new SampleStream({ identity });
    const share = Math.floor(events / shippers) + (i < events % shippers ? 1 : 0);
    const bodies: Buffer[] = [];
    for (let sent = 0; sent < share; sent += batch) {
      bodies.push(Buffer.from(ndjson(stream.take(Math.min(batch, share - sent)))));
    }
    return { token: `bench-writer-token-${i}-0123456789`, identity, bodies };
  });
  const collector = await startCollector(
    {
      listen: '127.0.0.1:0',
      store: storeUrl,
      auth: { static: plans.map((p) => ({ token: p.token, identity: p.identity })) },
      limits: { maxBatchEvents: Math.max(batch, BATCH) },
    },
    { logger: pino({ level: 'silent' }) },
  );
  const agent = new Agent({ keepAlive: true, maxSockets: shippers });
  const session = options.cpuProfile ? new Session() : undefined;
  try {
    if (session) {
      session.connect();
      await session.post('Profiler.enable');
      await session.post('Profiler.start');
    }
    const started = process.hrtime.bigint();
    const cpu = process.cpuUsage();
    const elu = performance.eventLoopUtilization();
    await Promise.all(
      plans.map(async (p) => {
        for (const body of p.bodies) await post(collector.port, agent, p.token, body);
      }),
    );
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const used = process.cpuUsage(cpu);
    const busy = performance.eventLoopUtilization(elu);
    if (session && options.cpuProfile) {
      const { profile } = await session.post('Profiler.stop');
      writeFileSync(options.cpuProfile, JSON.stringify(profile));
    }
    return {
      eventsPerSecond: events / seconds,
      cpuUsPerEvent: (used.user + used.system) / events,
      mainThreadUsPerEvent: (busy.active * 1000) / events,
      events,
      shippers,
    };
  } finally {
    session?.disconnect();
    agent.destroy();
    await collector.close();
  }
}

function post(port: number, agent: Agent, token: string, body: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        agent,
        method: 'POST',
        path: '/v1/events',
        headers: {
          Authorization: `Bearer ${token}`,
          'Content-Type': 'application/x-ndjson',
          'Content-Length': body.length,
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          text += d;
        });
        res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`${res.statusCode}: ${text}`))));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}
