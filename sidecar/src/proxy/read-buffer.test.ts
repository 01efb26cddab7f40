import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import { MIN_READ_BYTES, READ_BUFFER_BYTES, ReusedReadBuffer } from './read-buffer.js';

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

  test('a pinned read keeps its bytes: the next read goes after them', async () => {
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
    // Ten small pinned reads fit in the first slab after one another.
    expect(reads.allocations).toBe(1);
  });

  test('small reads kept by a slow client share slabs instead of holding 64 KiB each', async () => {
    const reads = new ReusedReadBuffer();
    const kept: Buffer[] = [];
    const c = collector();
    reads.attach((chunk) => {
      c.consume(chunk);
      kept.push(chunk);
      reads.pin();
    });
    const { peer } = await connected(reads);
    const size = 1000;
    for (let i = 0; i < 200; i++) {
      peer.write(Buffer.alloc(size, i % 256));
      await c.next();
    }
    kept.forEach((chunk, i) => {
      expect(chunk.equals(Buffer.alloc(size, i % 256))).toBe(true);
    });
    // 200 KB kept in four slabs (each used until less than MIN_READ_BYTES is left), not in 200;
    // the slab for the next read is allocated as soon as the last one is full.
    const perSlab = Math.floor((READ_BUFFER_BYTES - MIN_READ_BYTES) / size) + 1;
    expect(new Set(kept.map((k) => k.buffer)).size).toBe(Math.ceil(200 / perSlab));
    expect(reads.allocations).toBeLessThanOrEqual(Math.ceil(200 / perSlab) + 1);
  });

  test('a pinned read that leaves less than MIN_READ_BYTES of its slab moves the next read to a new slab', async () => {
    const reads = new ReusedReadBuffer();
    const kept: Buffer[] = [];
    let got = 0;
    const total = READ_BUFFER_BYTES - MIN_READ_BYTES + 1;
    const done = new Promise<void>((resolve) =>
      reads.attach((chunk) => {
        kept.push(chunk);
        reads.pin();
        got += chunk.length;
        if (got >= total + 5) resolve();
      }),
    );
    const { peer } = await connected(reads);
    peer.write(Buffer.alloc(total, 7));
    // Let the first write arrive as its own read(s) before the next one.
    await new Promise((r) => setTimeout(r, 100));
    peer.write(Buffer.from('after'));
    await done;
    expect(kept[kept.length - 1]!.toString()).toBe('after');
    expect(Buffer.concat(kept.slice(0, -1)).equals(Buffer.alloc(total, 7))).toBe(true);
    expect(kept[kept.length - 1]!.buffer).not.toBe(kept[0]!.buffer);
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
