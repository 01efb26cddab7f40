/**
 * Where spool records are framed on the hot path: one reused buffer, records encoded straight into
 * it (header, payload, CRC in place; no per-record Buffer, no concatenation), handed to write(2)
 * as one slice. Same bytes as record-codec.ts's encodeRecord.
 */
import { crc32 } from 'node:zlib';
import type { RecordTypeCode } from './record-codec.js';

const HEADER = 9;
const INITIAL_BYTES = 64 * 1024;
/** After a flush, a buffer grown past this (a huge statement) is let go, so idle memory stays small. */
const KEEP_BYTES = 1024 * 1024;

export class AppendBuffer {
  private buf = Buffer.allocUnsafe(INITIAL_BYTES);
  /** Bytes framed and not yet written. */
  length = 0;

  /** Frames one record at the end. */
  append(type: RecordTypeCode, payload: string): void {
    // UTF-8 needs at most 3 bytes per UTF-16 unit: reserve that instead of measuring the string.
    this.reserve(HEADER + payload.length * 3);
    const at = this.length;
    const body = this.buf.write(payload, at + HEADER, 'utf8');
    this.buf.writeUInt32BE(1 + body, at);
    this.buf[at + 8] = type;
    this.buf.writeUInt32BE(crc32(this.buf.subarray(at + 8, at + HEADER + body)), at + 4);
    this.length = at + HEADER + body;
  }

  /** The framed bytes, a view valid until the next append or consume. */
  get bytes(): Buffer {
    return this.buf.subarray(0, this.length);
  }

  /** The first `n` bytes were written: drop them (keeping the rest for the next write). */
  consume(n: number): void {
    if (n >= this.length) {
      this.length = 0;
      if (this.buf.length > KEEP_BYTES) this.buf = Buffer.allocUnsafe(INITIAL_BYTES);
      return;
    }
    this.buf.copyWithin(0, n, this.length);
    this.length -= n;
  }

  private reserve(more: number): void {
    if (this.length + more <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + more) size *= 2;
    const grown = Buffer.allocUnsafe(size);
    this.buf.copy(grown, 0, 0, this.length);
    this.buf = grown;
  }
}
