/**
 * The shipper's HTTP, measured rather than assumed: the sidecar's CPU per shipped event for
 * keep-alive or a new connection per request, over http and https, with the body sent as is or
 * compressed (gzip level 1 and 6, brotli quality 1), and how many bytes go over the wire. The
 * receiving server runs in a child process, so the figures are the sender's alone.
 *
 * `npx tsx test/bench/core-ship.ts [--requests N] [--events-per-request N]`
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { EventBuilder } from '../../sidecar/src/audit/event-builder.js';
import { EventChain } from '../../sidecar/src/audit/event-chain.js';
import type { StatementRecord } from '../../sidecar/src/capture/records.js';
import { makeCertificates } from '../harness/certs.js';
import { benchSession } from './bench-session.js';

type Compression = 'none' | 'gzip-1' | 'gzip-6' | 'brotli-1';

export interface ShipFigure {
  protocol: 'http' | 'https';
  keepAlive: boolean;
  compression: Compression;
  cpuUsPerEvent: number;
  wireBytesPerEvent: number;
}

/** Events as the sidecar ships them: pgbench-like statements, chained, one line each. */
function eventLines(n: number): string[] {
  const builder = new EventBuilder('redacted', null);
  const chain = new EventChain('0190a0b0-1111-7222-8333-444455556666');
  const session = benchSession();
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    const record: StatementRecord = {
      kind: i % 2 ? 'execute' : 'query',
      receivedAt: Date.now() + i,
      startedAt: 0,
      text:
        i % 2
          ? 'SELECT abalance FROM pgbench_accounts WHERE aid = $1'
          : `UPDATE pgbench_accounts SET abalance = abalance + ${i % 5000} WHERE aid = ${i * 7919}`,
      preparedName: null,
      params: i % 2 ? { lengths: [String(i).length], formats: [0], values: null } : null,
      applicationName: null,
      results: [
        {
          status: 'ok',
          tag: i % 2 ? 'SELECT 1' : 'UPDATE 1',
          rows: 1,
          sqlstate: null,
          error: null,
          copy: false,
          durationUs: 80 + (i % 300),
        },
      ],
      notExecuted: null,
      seq: i,
      unrecorded: false,
    };
    for (const e of builder.statementEvents(session, record)) lines.push(chain.append(e));
  }
  return lines;
}

function compress(body: Buffer, how: Compression): Buffer {
  if (how === 'gzip-1') return gzipSync(body, { level: 1 });
  if (how === 'gzip-6') return gzipSync(body, { level: 6 });
  if (how === 'brotli-1') return brotliCompressSync(body, { params: { [constants.BROTLI_PARAM_QUALITY]: 1 } });
  return body;
}

/** A server in another process that reads each body and answers 200. */
async function startServer(tls: { certFile: string; keyFile: string } | null): Promise<{ port: number; stop(): void }> {
  const source = `
    const tls = ${JSON.stringify(tls)};
    const fs = require('node:fs');
    const handler = (req, res) => { req.on('data', () => {}); req.on('end', () => { res.setHeader('content-type', 'application/json'); res.end('{"accepted":1}'); }); };
    const server = tls
      ? require('node:https').createServer({ cert: fs.readFileSync(tls.certFile), key: fs.readFileSync(tls.keyFile) }, handler)
      : require('node:http').createServer(handler);
    server.keepAliveTimeout = 60000;
    server.listen(0, '127.0.0.1', () => process.send(server.address().port));
  `;
  const child = spawn(process.execPath, ['-e', source], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m) => resolve(m as number));
    child.once('exit', (code) => reject(new Error(`the bench server exited (${code})`)));
  });
  return { port, stop: () => child.kill() };
}

async function measure(
  protocol: 'http' | 'https',
  keepAlive: boolean,
  compression: Compression,
  lines: string[],
  requests: number,
  perRequest: number,
  server: { port: number },
  ca: Buffer | undefined,
): Promise<ShipFigure> {
  const agent =
    protocol === 'https'
      ? new HttpsAgent({ keepAlive, ca, maxSockets: 1 })
      : new HttpAgent({ keepAlive, maxSockets: 1 });
  const send = protocol === 'https' ? httpsRequest : httpRequest;
  const post = (body: Buffer) =>
    new Promise<void>((resolve, reject) => {
      const req = send(
        { host: '127.0.0.1', port: server.port, path: '/v1/events', method: 'POST', agent, ca },
        (res) => {
          res.on('data', () => {});
          res.on('end', resolve);
        },
      );
      req.setHeader('content-type', 'application/x-ndjson');
      req.setHeader('content-length', body.length);
      if (compression !== 'none') req.setHeader('content-encoding', compression.startsWith('gzip') ? 'gzip' : 'br');
      req.on('error', reject);
      req.end(body);
    });
  let wire = 0;
  // One warm-up request (connection, JIT), then the measured ones.
  await post(compress(Buffer.from(`${lines.slice(0, perRequest).join('\n')}\n`), compression));
  const cpu0 = process.cpuUsage();
  for (let r = 0; r < requests; r++) {
    const start = (r * perRequest) % (lines.length - perRequest);
    // As the shipper does: join the lines, encode, (compress), send.
    const body = compress(Buffer.from(`${lines.slice(start, start + perRequest).join('\n')}\n`, 'utf8'), compression);
    wire += body.length;
    await post(body);
  }
  const cpu = process.cpuUsage(cpu0);
  agent.destroy();
  const events = requests * perRequest;
  return {
    protocol,
    keepAlive,
    compression,
    cpuUsPerEvent: (cpu.user + cpu.system) / events,
    wireBytesPerEvent: wire / events,
  };
}

export async function measureShipping(requests = 200, perRequest = 100): Promise<ShipFigure[]> {
  const dir = mkdtempSync(join(tmpdir(), 'byline-bench-ship-'));
  const lines = eventLines(Math.max(4 * perRequest, 2000));
  const out: ShipFigure[] = [];
  try {
    const certs = makeCertificates(dir);
    const ca = readFileSync(certs.caFile);
    for (const protocol of ['http', 'https'] as const) {
      const server = await startServer(protocol === 'https' ? certs : null);
      try {
        for (const keepAlive of [true, false]) {
          for (const compression of ['none', 'gzip-1', 'gzip-6', 'brotli-1'] as const) {
            if (!keepAlive && compression !== 'none') continue;
            out.push(await measure(protocol, keepAlive, compression, lines, requests, perRequest, server, ca));
          }
        }
      } finally {
        server.stop();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: { requests: { type: 'string', default: '200' }, 'events-per-request': { type: 'string', default: '100' } },
  });
  const perRequest = Number(values['events-per-request']);
  console.log(`shipper HTTP, ${values.requests} requests of ${perRequest} events, sender CPU per event:`);
  for (const f of await measureShipping(Number(values.requests), perRequest)) {
    console.log(
      `  ${f.protocol.padEnd(5)} ${(f.keepAlive ? 'keep-alive' : 'new conn').padEnd(10)} ${f.compression.padEnd(8)} ` +
        `${f.cpuUsPerEvent.toFixed(2).padStart(7)} µs/event  ${f.wireBytesPerEvent.toFixed(0).padStart(5)} bytes/event on the wire`,
    );
  }
}
