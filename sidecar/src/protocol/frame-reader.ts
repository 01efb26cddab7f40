/**
 * One reusable reader per direction of a Postgres connection. It frames messages across chunk
 * boundaries and decides, message by message, which bytes are forwarded — always the original
 * bytes: a run of whole messages inside one chunk is forwarded as a single view of that chunk,
 * and only a message that spans chunks is copied into a buffer of its own.
 *
 * Bulk messages (DataRow, CopyData) are "streamed": once their header is known their body bytes
 * flow through as they arrive, are never buffered and never decoded, so their size is not
 * limited by `maxMessageBytes`. Every other message is buffered whole, bounded by
 * `maxMessageBytes`, and handed to the handler before its bytes are forwarded.
 */

/** What to do with a complete message. */
export const Verdict = { forward: 0, drop: 1, stop: 2 } as const;
export type Verdict = (typeof Verdict)[keyof typeof Verdict];

/** The startup-phase messages have no type byte; they are reported with this type. */
export const UNTYPED = 0;

export interface MessageHandler {
  /**
   * A complete message: `buf[start, end)` is the whole message including its header. The view is
   * only valid during the call: copy whatever must outlive it.
   */
  onMessage(type: number, buf: Buffer, start: number, end: number): Verdict;
  /** The header of a streamed message; its body is forwarded without being buffered. */
  onStreamed(type: number, bodyLength: number): void;
  /** The byte stream cannot be framed; nothing more is read or forwarded from this side. */
  onFramingError(reason: string): void;
}

/** Where forwarded bytes go; flushed by the connection once per chunk. */
export interface ForwardSink {
  push(buf: Buffer): void;
}

/** Postgres accepts startup packets of at most 10000 bytes (MAX_STARTUP_PACKET_LENGTH). */
const MAX_STARTUP_PACKET = 10_000;
/** Postgres refuses any message longer than this (PQ_LARGE_MESSAGE_LIMIT, 1 GiB - 1). */
const MAX_POSTGRES_MESSAGE = 0x3fffffff;

enum State {
  idle = 0,
  header = 1,
  body = 2,
  streaming = 3,
  stopped = 4,
}

export class MessageReader {
  /** True until the StartupMessage: messages are `int32 length` + body, with no type byte. */
  untyped: boolean;
  private readonly streamed = new Uint8Array(256);
  private state = State.idle;
  private readonly header = Buffer.alloc(5);
  private headerFill = 0;
  private message: Buffer = Buffer.alloc(0);
  private messageFill = 0;
  private streamLeft = 0;
  // The chunk being read and the start of the run of its bytes not yet pushed to the sink.
  private chunk: Buffer | null = null;
  private runStart = 0;
  private messageStart = 0;

  constructor(
    private readonly handler: MessageHandler,
    private readonly sink: ForwardSink,
    private readonly maxMessageBytes: number,
    options: { untyped?: boolean; streamedTypes?: string } = {},
  ) {
    this.untyped = options.untyped ?? false;
    for (const c of options.streamedTypes ?? '') this.streamed[c.charCodeAt(0)] = 1;
  }

  get stopped(): boolean {
    return this.state === State.stopped;
  }

  /** Bytes of an incomplete message held back, waiting for the rest. */
  get bufferedBytes(): number {
    return this.state === State.header ? this.headerFill : this.state === State.body ? this.messageFill : 0;
  }

  /** Bytes that followed the message on which the handler stopped; they were not read. */
  leftoverAfterStop = 0;

  /** Stop reading; bytes after the current message are neither delivered nor forwarded. */
  stop(): void {
    this.state = State.stopped;
  }

  /** Start afresh (after a TLS upgrade): untyped or typed, nothing buffered. */
  reset(untyped: boolean): void {
    this.state = State.idle;
    this.untyped = untyped;
    this.headerFill = 0;
    this.messageFill = 0;
    this.streamLeft = 0;
    this.leftoverAfterStop = 0;
  }

  /**
   * Forward `buf` at the current position, after everything before the current message.
   * For a handler that replaces the message it was given (and returns `drop`).
   */
  inject(buf: Buffer): void {
    this.pushRun(this.messageStart);
    this.sink.push(buf);
  }

  push(chunk: Buffer): void {
    if (this.state === State.stopped) return;
    this.chunk = chunk;
    this.runStart = 0;
    const len = chunk.length;
    let pos = 0;
    while (pos < len) {
      switch (this.state) {
        case State.streaming: {
          const n = Math.min(this.streamLeft, len - pos);
          this.streamLeft -= n;
          pos += n;
          if (this.streamLeft === 0) this.state = State.idle;
          break;
        }
        case State.idle: {
          const headerSize = this.untyped ? 4 : 5;
          if (len - pos < headerSize) {
            this.pushRun(pos);
            chunk.copy(this.header, 0, pos, len);
            this.headerFill = len - pos;
            this.state = State.header;
            pos = len;
            this.runStart = len;
            break;
          }
          const type = this.untyped ? 0 : chunk[pos]!;
          const total = this.untyped ? chunk.readInt32BE(pos) : 1 + chunk.readInt32BE(pos + 1);
          if (!this.checkLength(type, total)) {
            this.fail(pos);
            return;
          }
          if (this.streamed[type] === 1) {
            this.handler.onStreamed(type, total - 5);
            const available = len - pos;
            if (available >= total) {
              pos += total;
            } else {
              this.streamLeft = total - available;
              this.state = State.streaming;
              pos = len;
            }
          } else if (len - pos >= total) {
            this.messageStart = pos;
            const verdict = this.handler.onMessage(type, chunk, pos, pos + total);
            if (!this.apply(verdict, pos, pos + total)) return;
            pos += total;
          } else {
            this.pushRun(pos);
            this.beginBody(total);
            chunk.copy(this.message, 0, pos, len);
            this.messageFill = len - pos;
            pos = len;
            this.runStart = len;
          }
          break;
        }
        case State.header: {
          const headerSize = this.untyped ? 4 : 5;
          const n = Math.min(headerSize - this.headerFill, len - pos);
          chunk.copy(this.header, this.headerFill, pos, pos + n);
          this.headerFill += n;
          pos += n;
          this.runStart = pos;
          if (this.headerFill < headerSize) break;
          const type = this.untyped ? 0 : this.header[0]!;
          const total = this.untyped ? this.header.readInt32BE(0) : 1 + this.header.readInt32BE(1);
          if (!this.checkLength(type, total)) {
            this.fail(pos);
            return;
          }
          if (this.streamed[type] === 1) {
            this.handler.onStreamed(type, total - 5);
            this.sink.push(Buffer.from(this.header.subarray(0, headerSize)));
            this.streamLeft = total - headerSize;
            this.state = this.streamLeft > 0 ? State.streaming : State.idle;
          } else {
            this.beginBody(total);
            this.header.copy(this.message, 0, 0, headerSize);
            this.messageFill = headerSize;
            if (total === headerSize && !this.completeBody()) {
              this.leftoverAfterStop = len - pos;
              this.chunk = null;
              return;
            }
          }
          break;
        }
        case State.body: {
          const n = Math.min(this.message.length - this.messageFill, len - pos);
          chunk.copy(this.message, this.messageFill, pos, pos + n);
          this.messageFill += n;
          pos += n;
          this.runStart = pos;
          if (this.messageFill === this.message.length && !this.completeBody()) {
            this.leftoverAfterStop = len - pos;
            this.chunk = null;
            return;
          }
          break;
        }
        default:
          // Stopped by a handler that still let its own message through: that message goes, nothing after.
          this.pushRun(pos);
          this.chunk = null;
          return;
      }
    }
    this.pushRun(len);
    this.chunk = null;
  }

  private beginBody(total: number): void {
    this.message = Buffer.allocUnsafe(total);
    this.messageFill = 0;
    this.state = State.body;
  }

  /** Delivers a message assembled from several chunks; false when the handler stopped reading. */
  private completeBody(): boolean {
    const message = this.message;
    this.state = State.idle;
    this.message = Buffer.alloc(0);
    this.messageStart = this.runStart;
    const verdict = this.handler.onMessage(this.untyped ? 0 : message[0]!, message, 0, message.length);
    if (verdict === Verdict.forward) {
      this.sink.push(message);
      return true;
    }
    if (verdict === Verdict.stop) {
      this.state = State.stopped;
      return false;
    }
    return true;
  }

  private apply(verdict: Verdict, start: number, end: number): boolean {
    if (verdict === Verdict.forward) return true;
    this.pushRun(start);
    if (verdict === Verdict.stop || this.state === State.stopped) {
      this.state = State.stopped;
      this.leftoverAfterStop = (this.chunk?.length ?? end) - end;
      this.runStart = end;
      this.chunk = null;
      return false;
    }
    this.runStart = end;
    return true;
  }

  private checkLength(type: number, total: number): boolean {
    const headerSize = this.untyped ? 4 : 5;
    if (total < headerSize) {
      this.failure = `invalid message length ${total - (this.untyped ? 0 : 1)}`;
      return false;
    }
    if (this.streamed[type] === 1 && total - 1 > MAX_POSTGRES_MESSAGE) {
      this.failure = `message of type '${String.fromCharCode(type)}' is ${total} bytes, above Postgres's own limit`;
      return false;
    }
    const limit = this.untyped ? MAX_STARTUP_PACKET : this.maxMessageBytes;
    if (total > limit && this.streamed[type] !== 1) {
      this.failure = this.untyped
        ? `startup packet of ${total} bytes exceeds the limit of ${MAX_STARTUP_PACKET}`
        : `message of type '${String.fromCharCode(type)}' is ${total} bytes, above the limit of ${limit}`;
      return false;
    }
    return true;
  }

  private failure = '';

  private fail(pos: number): void {
    this.pushRun(pos);
    this.state = State.stopped;
    this.chunk = null;
    this.handler.onFramingError(this.failure);
  }

  private pushRun(end: number): void {
    const chunk = this.chunk;
    if (chunk !== null && end > this.runStart) {
      this.sink.push(this.runStart === 0 && end === chunk.length ? chunk : chunk.subarray(this.runStart, end));
    }
    this.runStart = end;
  }
}
