import type { Socket } from 'node:net';
import type { ForwardSink } from '../protocol/frame-reader.js';

/**
 * Collects what one read produced for a socket and writes it in one go: a single buffer as is,
 * several under cork() so they leave as one writev.
 */
export class Outbox implements ForwardSink {
  private parts: Buffer[] = [];
  /** Bytes waiting in `parts`. */
  bytes = 0;

  push(buf: Buffer): void {
    this.parts.push(buf);
    this.bytes += buf.length;
  }

  get empty(): boolean {
    return this.parts.length === 0;
  }

  /** Writes and clears; returns false when the socket asks the writer to wait for 'drain'. */
  flushTo(socket: Socket): boolean {
    const parts = this.parts;
    if (parts.length === 0) return true;
    this.parts = [];
    this.bytes = 0;
    if (socket.destroyed) return true;
    if (parts.length === 1) return socket.write(parts[0]!);
    socket.cork();
    let ok = true;
    for (const p of parts) ok = socket.write(p);
    socket.uncork();
    return ok;
  }

  clear(): void {
    this.parts = [];
    this.bytes = 0;
  }
}
