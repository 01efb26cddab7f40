/**
 * The spool's segment files: appending, writing, syncing, rolling over, reading back, deleting.
 *
 * The one synchronous system call is the write(2) of what was appended (flush), because a begin
 * record must be in the operating system before its statement is forwarded. Everything else runs
 * off the event loop: fsync (group commit: one fsync serves every waiter up to its position),
 * closing a rolled-over segment, reads for shipping, deletion. fsyncs run one at a time and in
 * order, a rolled-over segment's before the current one's, so `synced` only ever moves forward
 * over bytes that are durable.
 */
import { close, promises as fsp, fsync, open as openFile, openSync, read, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { AppendBuffer } from './append-buffer.js';
import type { RecordTypeCode } from './record-codec.js';

export const segmentName = (n: number) => `segment-${String(n).padStart(12, '0')}.log`;
export const SEGMENT_RE = /^segment-(\d{12})\.log$/;

const FSYNC_RETRY_MS = 50;

export interface SegmentState {
  number: number;
  bytes: number;
  /** Begin records in this segment whose events are not written yet. */
  openBegins: number;
}

/** The descriptor reads of one segment share, and the reads using it now. */
interface Reader {
  segment: number;
  fd: Promise<number>;
  users: number;
  retired: boolean;
}

function closeReader(reader: Reader): void {
  reader.fd.then(
    (fd) => close(fd, () => {}),
    () => {},
  );
}

interface Waiter {
  at: number;
  run: () => void;
}

export class SegmentLog {
  private fd = -1;
  current!: SegmentState;
  readonly segments = new Map<number, SegmentState>();
  private readonly out = new AppendBuffer();
  /** Bytes of every segment on disk, kept as a sum: the backlog bound is checked per statement. */
  diskBytes = 0;
  /** Bytes handed to write(2) and bytes known durable, counted across segments. */
  private written = 0;
  private synced = 0;
  /** A position syncTo asked to make durable. */
  private wanted = 0;
  /** Rolled-over segments still to be fsynced and closed, with the position they end at. */
  private retiring: { fd: number; at: number }[] = [];
  private syncing = false;
  private waiters: Waiter[] = [];
  /** Rolling over: the old segment's last write must not start another roll-over. */
  private opening = false;
  writeError: Error | null = null;
  /** write(2) calls made (the bench and tests read it: one per event-loop turn is the aim). */
  writeCalls = 0;
  /** Bytes read back from segments (for shipping). */
  bytesRead = 0;
  /**
   * Called after each write(2) of appended bytes, failed ones too: `written` bytes of `bytes` (a
   * view valid during the call) went to segment `segment` at `base`; `complete`, nothing appended
   * is left unwritten.
   */
  onWritten: ((segment: number, base: number, written: number, complete: boolean, bytes: Buffer) => void) | null = null;
  /** Called when the current segment reaches its size (the spool opens the next one). */
  onFull: (() => void) | null = null;

  constructor(
    readonly dir: string,
    private readonly segmentBytes: number,
    private readonly logger: Logger,
  ) {}

  /** Registers a segment found on disk (recovery). */
  adopt(state: SegmentState): void {
    this.segments.set(state.number, state);
    this.diskBytes += state.bytes;
  }

  /**
   * Starts writing segment `number`. What was appended is written to the old one first; the old
   * one is fsynced and closed off the event loop.
   */
  open(number: number): void {
    if (this.fd >= 0) {
      this.opening = true;
      try {
        this.flush();
      } finally {
        this.opening = false;
      }
      this.retiring.push({ fd: this.fd, at: this.written });
      this.sync();
    }
    this.fd = openSync(join(this.dir, segmentName(number)), 'a', 0o600);
    this.current = { number, bytes: 0, openBegins: 0 };
    this.segments.set(number, this.current);
  }

  append(type: RecordTypeCode, payload: string): void {
    this.out.append(type, payload);
  }

  /** Bytes appended and not yet written. */
  get pendingBytes(): number {
    return this.out.length;
  }

  /**
   * write(2) of everything appended, in one call (more only for a partial write). False when some
   * of it could not be written (ENOSPC, EIO…): it stays appended and is retried on the next flush.
   */
  flush(): boolean {
    const length = this.out.length;
    if (length === 0) return this.writeError === null;
    const bytes = this.out.bytes;
    let off = 0;
    try {
      while (off < length) {
        this.writeCalls += 1;
        off += writeSync(this.fd, bytes, off, length - off);
      }
      this.writeError = null;
    } catch (e) {
      if (!this.writeError) this.logger.error({ err: e, dir: this.dir }, 'cannot write to the spool');
      this.writeError = e as Error;
    }
    this.out.consume(off);
    const base = this.current.bytes;
    this.written += off;
    this.current.bytes += off;
    this.diskBytes += off;
    // `bytes` still views what was written: consume() only moves what was not.
    this.onWritten?.(this.current.number, base, off, off === length, bytes);
    if (this.current.bytes >= this.segmentBytes && !this.opening) this.onFull?.();
    return this.writeError === null;
  }

  /** Bytes handed to write(2) so far, across segments: a position for whenDurableAt and syncTo. */
  get writtenBytes(): number {
    return this.written;
  }

  /** Bytes known durable (fsynced), across segments. */
  get syncedBytes(): number {
    return this.synced;
  }

  /** Runs `then` once everything written so far is durable (strict mode's group commit). */
  whenDurable(then: () => void): void {
    this.whenDurableAt(this.written, then);
  }

  /** Runs `then` once the first `at` bytes written are durable. */
  whenDurableAt(at: number, then: () => void): void {
    if (this.synced >= at) {
      then();
      return;
    }
    this.waiters.push({ at, run: then });
    this.sync();
  }

  /**
   * Makes the first `at` bytes written durable without anyone waiting yet (strict mode starts the
   * fsync of begin records as they are written, so it runs while Postgres executes them).
   */
  syncTo(at: number): void {
    if (at > this.wanted) this.wanted = at;
    this.sync();
  }

  /** Starts an fsync of what is written and not yet durable, unless one is running. */
  sync(): void {
    if (this.syncing || this.fd < 0) return;
    const retiring = this.retiring[0];
    if (retiring) {
      this.syncing = true;
      fsync(retiring.fd, (err) => {
        this.syncing = false;
        if (err) return this.retrySync(err);
        this.retiring.shift();
        close(retiring.fd, () => {});
        this.advance(retiring.at);
      });
      return;
    }
    if (this.synced >= this.written) return;
    this.syncing = true;
    const target = this.written;
    fsync(this.fd, (err) => {
      this.syncing = false;
      if (err) return this.retrySync(err);
      this.advance(target);
    });
  }

  private retrySync(err: Error): void {
    this.logger.error({ err }, 'spool fsync failed');
    setTimeout(() => this.sync(), FSYNC_RETRY_MS).unref();
  }

  private advance(to: number): void {
    if (to > this.synced) this.synced = to;
    if (this.waiters.length > 0) {
      let kept = 0;
      const ready: Waiter[] = [];
      for (const w of this.waiters) {
        if (w.at <= this.synced) ready.push(w);
        else this.waiters[kept++] = w;
      }
      this.waiters.length = kept;
      for (const w of ready) w.run();
    }
    if (this.retiring.length > 0 || this.waiters.length > 0 || this.wanted > this.synced) this.sync();
  }

  /**
   * Bytes [start, end) of segment `number`, read off the event loop. The shipper reads the same
   * segment batch after batch, so its descriptor stays open until another segment is read.
   */
  async read(number: number, start: number, end: number): Promise<Buffer> {
    const reader = this.readerFor(number);
    reader.users += 1;
    try {
      const fd = await reader.fd;
      const buf = Buffer.allocUnsafe(end - start);
      let off = 0;
      while (off < buf.length) {
        const n = await new Promise<number>((resolve, reject) =>
          read(fd, buf, off, buf.length - off, start + off, (err, bytes) => (err ? reject(err) : resolve(bytes))),
        );
        if (n === 0) break;
        off += n;
      }
      this.bytesRead += off;
      return buf.subarray(0, off);
    } finally {
      reader.users -= 1;
      if (reader.retired && reader.users === 0) closeReader(reader);
    }
  }

  private reader: Reader | null = null;

  private readerFor(segment: number): Reader {
    if (this.reader?.segment === segment) return this.reader;
    this.retireReader();
    const fd = new Promise<number>((resolve, reject) =>
      openFile(join(this.dir, segmentName(segment)), 'r', (err, fd) => (err ? reject(err) : resolve(fd))),
    );
    const reader: Reader = { segment, fd, users: 0, retired: false };
    this.reader = reader;
    // A failed open is not kept: the next read tries again.
    fd.catch(() => {
      if (this.reader === reader) this.reader = null;
    });
    return reader;
  }

  /** No new reads on the current descriptor; it is closed once the reads in flight are done. */
  private retireReader(): void {
    const reader = this.reader;
    if (!reader) return;
    this.reader = null;
    reader.retired = true;
    if (reader.users === 0) closeReader(reader);
  }

  /** Deletes segment `number` (off the event loop); its bytes leave the backlog once it is gone. */
  async remove(number: number): Promise<void> {
    const state = this.segments.get(number);
    if (!state) return;
    if (this.reader?.segment === number) this.retireReader();
    await fsp.unlink(join(this.dir, segmentName(number)));
    if (this.segments.delete(number)) this.diskBytes -= state.bytes;
  }

  /** Writes what is appended, waits for every fsync, closes the segment. */
  async close(): Promise<void> {
    this.retireReader();
    this.flush();
    await new Promise<void>((resolve) => this.whenDurable(resolve));
    if (this.fd >= 0) {
      const fd = this.fd;
      this.fd = -1;
      await new Promise<void>((resolve) => close(fd, () => resolve()));
    }
  }
}
