import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import { READ_BUFFER_BYTES, ReusedReadBuffer } from './read-buffer.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

/** A real loopback connection whose client side reads into `reads`; `peer` is the server's side. */
async function connected(reads: ReusedReadBuffer): Promise<{ socket: Socket; peer: Socket }> {
  const server: Server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  const accepted = once(server, 'connection');
  const socket = connect({ host: '127.0.0.1', port, onread: reads.onread });
  await once(socket, 'connect');
  const [peer] = (await accepted) as [Socket];
  cleanups.push(() => {
    socket.destroy();
    peer.destroy();
    server.close();
  });
  return { socket, peer };
}

/** Resolves with the next `n` chunks handed to the consumer (views, as the consumer gets them). */
function collector() {
  const chunks: Buffer[] = [];
  let wake: (() => void) | null = null;
  return {
    chunks,
    consume: (chunk: Buffer) => {
      chunks.push(chunk);
      wake?.();
    },
    async next(): Promise<Buffer> {
      const have = chunks.length;
      while (chunks.length === have) await new Promise<void>((r) => (wake = r));
      return chunks[chunks.length - 1]!;
    },
  };
}

describe('ReusedReadBuffer', () => {
  test('reads that nobody keeps all land in the same buffer', async () => {
    const reads = new ReusedReadBuffer();
    const c = collector();
    reads.attach(c.consume);
    const { peer } = await connected(reads);
    const seen = new Set<ArrayBufferLike>();
    for (let i = 0; i < 50; i++) {
      peer.write(Buffer.from(`message ${i}`));
      const chunk = await c.next();
      expect(chunk.toString()).toBe(`message ${i}`);
      seen.add(chunk.buffer);
    }
    expect(seen.size).toBe(1);
    expect(reads.allocations).toBe(1);
  });

  test('a pinned read keeps its bytes: the next read goes to a new buffer', async () => {
    const reads = new ReusedReadBuffer();
    const kept: Buffer[] = [];
    const c = collector();
    reads.attach((chunk) => {
      c.consume(chunk);
      // Keep every other read's view, as an outbox that could not be written would.
      if (c.chunks.length % 2 === 1) {
        kept.push(chunk);
        reads.pin();
      }
    });
    const { peer } = await connected(reads);
    for (let i = 0; i < 20; i++) {
      peer.write(Buffer.alloc(100 + i, 65 + i));
      await c.next();
    }
    expect(kept).toHaveLength(10);
    kept.forEach((chunk, k) => {
      const i = 2 * k;
      expect(chunk.equals(Buffer.alloc(100 + i, 65 + i))).toBe(true);
    });
    expect(reads.allocations).toBe(11);
  });

  test('a read larger than the buffer arrives as several reads, in order and complete', async () => {
    const reads = new ReusedReadBuffer();
    const parts: Buffer[] = [];
    let got = 0;
    const total = 3 * READ_BUFFER_BYTES + 123;
    const done = new Promise<void>((resolve) =>
      reads.attach((chunk) => {
        parts.push(Buffer.from(chunk));
        got += chunk.length;
        if (got >= total) resolve();
      }),
    );
    const { peer } = await connected(reads);
    const sent = Buffer.alloc(total);
    for (let i = 0; i < total; i++) sent[i] = (i * 7) % 251;
    peer.write(sent);
    await done;
    expect(parts.every((p) => p.length <= READ_BUFFER_BYTES)).toBe(true);
    expect(Buffer.concat(parts).equals(sent)).toBe(true);
  });

  test('reads before a consumer is attached are kept, copied, and handed over first', async () => {
    const reads = new ReusedReadBuffer();
    const { peer } = await connected(reads);
    peer.write('early one');
    await new Promise((r) => setTimeout(r, 50));
    peer.write('early two');
    await new Promise((r) => setTimeout(r, 50));
    const c = collector();
    reads.attach(c.consume);
    expect(c.chunks.map(String)).toEqual(['early one', 'early two']);
    peer.write('late');
    expect(String(await c.next())).toBe('late');
  });

  test('pause() stops reads and resume() restarts them, as with data events', async () => {
    const reads = new ReusedReadBuffer();
    const c = collector();
    reads.attach(c.consume);
    const { socket, peer } = await connected(reads);
    socket.pause();
    peer.write('while paused');
    await new Promise((r) => setTimeout(r, 100));
    expect(c.chunks).toHaveLength(0);
    socket.resume();
    expect(String(await c.next())).toBe('while paused');
  });

  test("the peer's end still ends and closes the socket", async () => {
    const reads = new ReusedReadBuffer();
    reads.attach(() => {});
    const { socket, peer } = await connected(reads);
    const closed = once(socket, 'close');
    peer.end();
    await closed;
    expect(socket.destroyed).toBe(true);
  });
});
