#!/usr/bin/env node
/**
 * What reading a socket costs per read, 'data' events vs net's `onread` into a reused buffer (how
 * the sidecar reads Postgres, sidecar/src/proxy/read-buffer.ts): a loopback ping-pong of
 * OLTP-sized messages, CPU time of this process per round trip, the two modes alternated so that
 * both see the same machine. `node test/bench/read-path.mjs [ROUNDS] [TRIPS]`
 */
import { once } from 'node:events';
import { connect, createServer } from 'node:net';

const rounds = Number(process.argv[2] ?? 3);
const trips = Number(process.argv[3] ?? 50_000);
const message = Buffer.alloc(60, 1);
const server = createServer({ noDelay: true }, (s) => s.on('data', (c) => s.write(c))).listen(0, '127.0.0.1');
await once(server, 'listening');
const port = server.address().port;

/** CPU µs per round trip with the client side reading in `mode`. */
async function measure(mode) {
  let n = 0;
  let started;
  let done;
  const finished = new Promise((resolve) => (done = resolve));
  const onReply = () => {
    n++;
    if (n === 1000) started = process.cpuUsage();
    if (n === trips + 1000) {
      const used = process.cpuUsage(started);
      done((used.user + used.system) / trips);
      return;
    }
    socket.write(message);
  };
  const options = { host: '127.0.0.1', port, noDelay: true };
  if (mode === 'onread') options.onread = { buffer: Buffer.allocUnsafe(64 * 1024), callback: onReply };
  const socket = connect(options);
  if (mode === 'data') socket.on('data', onReply);
  await once(socket, 'connect');
  socket.write(message);
  const us = await finished;
  socket.destroy();
  return us;
}

const results = { data: [], onread: [] };
for (let i = 0; i < rounds; i++) for (const mode of ['data', 'onread']) results[mode].push(await measure(mode));
for (const [mode, list] of Object.entries(results))
  console.log(`${mode.padEnd(6)} ${list.map((us) => us.toFixed(2)).join(' ')} µs CPU per round trip (both ends)`);
server.close();
