import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import { BULK_READ_BYTES, MAX_DEFERRED_BYTES, Relay } from './relay.js';

/** A connected pair of real loopback sockets: `near` is the relay's side, `far` the peer's. */
async function socketPair(): Promise<{ near: Socket; far: Socket; server: Server }> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  const accepted = once(server, 'connection');
  const far = connect(port, '127.0.0.1');
  await once(far, 'connect');
  const [near] = (await accepted) as [Socket];
  return { near, far, server };
}

/** Counts the writes a socket is asked for (each a write(2) or writev(2) unless corked together). */
function countWrites(socket: Socket): { writes: number } {
  const counter = { writes: 0 };
  // net.Socket's one path to the handle for write() and a corked writev(), as Node names it.
  const s = socket as unknown as { _writeGeneric: (...args: unknown[]) => unknown };
  const write = s._writeGeneric.bind(socket);
  s._writeGeneric = (...args: unknown[]) => {
    counter.writes++;
    return write(...args);
  };
  return counter;
}

async function readExactly(socket: Socket, n: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let got = 0;
  while (got < n) {
    const [chunk] = (await once(socket, 'data')) as [Buffer];
    parts.push(chunk);
    got += chunk.length;
  }
  return Buffer.concat(parts);
}

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

async function relayWithPeers() {
  const client = await socketPair();
  const upstream = await socketPair();
  cleanups.push(() => {
    for (const p of [client, upstream]) {
      p.near.destroy();
      p.far.destroy();
      p.server.close();
    }
  });
  const relay = new Relay(client.near, () => {});
  relay.attachUpstream(upstream.near, null);
  return { relay, client, upstream };
}

function bytes(n: number, fill: number): Buffer {
  return Buffer.alloc(n, fill);
}

describe('Relay: writes to each socket', () => {
  test('bulk reads from Postgres in one event-loop turn leave as one write, in order', async () => {
    const { relay, client } = await relayWithPeers();
    const counter = countWrites(client.near);
    const parts = [bytes(BULK_READ_BYTES, 1), bytes(64 * 1024, 2), bytes(BULK_READ_BYTES * 2, 3)];
    for (const p of parts) {
      relay.toClient.push(p);
      relay.afterUpstreamRead(true, p.length);
    }
    await nextTurn();
    expect(counter.writes).toBe(1);
    const total = parts.reduce((n, p) => n + p.length, 0);
    expect((await readExactly(client.far, total)).equals(Buffer.concat(parts))).toBe(true);
  });

  test('a small read after bulk ones writes everything at once, in order, and nothing is written twice', async () => {
    const { relay, client } = await relayWithPeers();
    const counter = countWrites(client.near);
    const bulk = bytes(BULK_READ_BYTES, 7);
    const tail = Buffer.from('C\0\0\0\x0dSELECT 1\0Z\0\0\0\x05I');
    relay.toClient.push(bulk);
    relay.afterUpstreamRead(true, bulk.length);
    relay.toClient.push(tail);
    relay.afterUpstreamRead(true, tail.length);
    // Written at the small read, before the turn ends: the last answer is not delayed.
    expect(counter.writes).toBe(1);
    await nextTurn();
    expect(counter.writes).toBe(1);
    const got = await readExactly(client.far, bulk.length + tail.length);
    expect(got.equals(Buffer.concat([bulk, tail]))).toBe(true);
  });

  test('a small answer is written at once, not at the end of the turn', async () => {
    const { relay, client } = await relayWithPeers();
    const counter = countWrites(client.near);
    relay.toClient.push(Buffer.from('Z\0\0\0\x05I'));
    relay.afterUpstreamRead(true, 6);
    expect(counter.writes).toBe(1);
  });

  test('bulk client data (COPY) in one turn goes to Postgres as one write', async () => {
    const { relay, upstream } = await relayWithPeers();
    const counter = countWrites(upstream.near);
    const parts = [bytes(BULK_READ_BYTES, 4), bytes(BULK_READ_BYTES, 5)];
    for (const p of parts) {
      relay.toUpstream.push(p);
      relay.afterClientRead(p.length);
    }
    expect(counter.writes).toBe(0);
    await nextTurn();
    expect(counter.writes).toBe(1);
    expect((await readExactly(upstream.far, 2 * BULK_READ_BYTES)).equals(Buffer.concat(parts))).toBe(true);
  });

  test('no more than MAX_DEFERRED_BYTES waits for the end of the turn: beyond it the outbox is written at once', async () => {
    const { relay, client } = await relayWithPeers();
    const counter = countWrites(client.near);
    const chunk = bytes(64 * 1024, 6);
    const reads = MAX_DEFERRED_BYTES / chunk.length;
    for (let i = 0; i < reads - 1; i++) {
      relay.toClient.push(chunk);
      relay.afterUpstreamRead(true, chunk.length);
    }
    expect(counter.writes).toBe(0);
    relay.toClient.push(chunk);
    relay.afterUpstreamRead(true, chunk.length);
    expect(counter.writes).toBe(1);
    expect(relay.toClient.empty).toBe(true);
    await nextTurn();
    expect(counter.writes).toBe(1);
    expect((await readExactly(client.far, MAX_DEFERRED_BYTES)).every((b) => b === 6)).toBe(true);
  });

  test('a session closed before the end of the turn writes nothing more', async () => {
    const { relay, client } = await relayWithPeers();
    const counter = countWrites(client.near);
    relay.toClient.push(bytes(BULK_READ_BYTES, 9));
    relay.afterUpstreamRead(true, BULK_READ_BYTES);
    relay.close();
    await nextTurn();
    expect(counter.writes).toBe(0);
  });
});
