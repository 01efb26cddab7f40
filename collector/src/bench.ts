/**
 * Ingest throughput over HTTP: a collector started in-process on loopback, realistic events
 * (sessions, statements with tables, chained) posted in batches of 500 one after another, as one
 * sidecar's shipper would. The events are built before the clock starts.
 */
import { request } from 'node:http';
import pino from 'pino';
import { startCollector } from './collector.js';
import { ndjson, SampleStream } from './sample-events.js';

const BATCH = 500;
const TOKEN = 'bench-writer-token-0123456789';

export async function measureIngest(storeUrl: string, events = 20000): Promise<{ eventsPerSecond: number }> {
  const stream = new SampleStream({ identity: 'bench-agent' });
  const bodies: Buffer[] = [];
  for (let sent = 0; sent < events; sent += BATCH) {
    bodies.push(Buffer.from(ndjson(stream.take(Math.min(BATCH, events - sent)))));
  }
  const collector = await startCollector(
    {
      listen: '127.0.0.1:0',
      store: storeUrl,
      auth: { static: [{ token: TOKEN, identity: 'bench-agent' }] },
      limits: { maxBatchEvents: BATCH },
    },
    { logger: pino({ level: 'silent' }) },
  );
  try {
    const started = process.hrtime.bigint();
    for (const body of bodies) await post(collector.port, body);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    return { eventsPerSecond: events / seconds };
  } finally {
    await collector.close();
  }
}

function post(port: number, body: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/v1/events',
        headers: {
          Authorization: `Bearer ${TOKEN}`,
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
