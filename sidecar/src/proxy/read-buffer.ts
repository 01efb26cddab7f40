/**
 * Reads a socket into one reused buffer (net's `onread` option) instead of a fresh Buffer per
 * read: no ArrayBuffer allocated and freed per read, and the bytes go straight to the consumer
 * without passing through the Readable stream machinery ('data' events, read-more ticks).
 *
 * The price is that the bytes of a read are overwritten by the next read. The reader forwards
 * views of them, so after each read the consumer says whether any view is still referenced (an
 * outbox not yet written, a write the kernel did not take at once, results held for an fsync):
 * then those bytes are `pin()`ned and the next read goes after them in the same slab, or into a
 * new slab once less than MIN_READ_BYTES is left. Carving keeps a slow client from holding a
 * whole 64 KiB per small read it has not taken yet (Node itself shrinks each read's allocation
 * to its size). Everything else that outlives a read (statement text, parameters, keys) is
 * already copied by the decoders, as it must be for any chunk.
 */
import type { OnReadOpts } from 'node:net';

/** libuv asks for 64 KiB per read; a read never returns more than the buffer holds. */
export const READ_BUFFER_BYTES = 64 * 1024;
/** After pinned bytes, the rest of a slab is used for the next read only if at least this much is left. */
export const MIN_READ_BYTES = 16 * 1024;

export class ReusedReadBuffer {
  private slab = Buffer.allocUnsafe(READ_BUFFER_BYTES);
  /** Where reads go now: the slab, or its part after pinned bytes. */
  private buffer = this.slab;
  private bufferStart = 0;
  /** Slab offset just past the last read's bytes. */
  private readEnd = 0;
  private pinned = false;
  private consumer: ((chunk: Buffer) => void) | null = null;
  /** Reads that arrived before a consumer was attached, copied. */
  private early: Buffer[] = [];
  /** Slabs allocated so far (the first included): a measure of how often reads had to be kept. */
  allocations = 1;

  /** Pass as `onread` to net.connect / new net.Socket. */
  readonly onread: OnReadOpts = {
    buffer: () => this.next(),
    callback: (bytes: number, buffer: Uint8Array) => {
      this.deliver(buffer as Buffer, bytes);
      // Pausing is the consumer's business (socket.pause()), never a side effect of a read.
      return true;
    },
  };

  /** Where reads go from now on; reads that came before are handed over first, in order. */
  attach(consumer: (chunk: Buffer) => void): void {
    this.consumer = consumer;
    const early = this.early;
    this.early = [];
    for (const chunk of early) consumer(chunk);
  }

  /** The bytes of the read being handled are still referenced: the next read must not overwrite them. */
  pin(): void {
    this.pinned = true;
  }

  private next(): Buffer {
    if (this.pinned) {
      this.pinned = false;
      if (this.slab.length - this.readEnd >= MIN_READ_BYTES) {
        this.bufferStart = this.readEnd;
        this.buffer = this.slab.subarray(this.readEnd);
      } else {
        this.slab = Buffer.allocUnsafe(READ_BUFFER_BYTES);
        this.allocations++;
        this.bufferStart = 0;
        this.buffer = this.slab;
      }
    }
    return this.buffer;
  }

  private deliver(buffer: Buffer, bytes: number): void {
    this.readEnd = this.bufferStart + bytes;
    const chunk = buffer.subarray(0, bytes);
    if (this.consumer === null) this.early.push(Buffer.from(chunk));
    else this.consumer(chunk);
  }
}
