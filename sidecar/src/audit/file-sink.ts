/**
 * Appends events as JSON lines to a file. One write in flight at a time; batches that arrive
 * meanwhile are joined into the next write, so a busy sidecar makes few large writes. A failed
 * write is kept and retried: events are never dropped here.
 */
import { constants, promises as fs } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import type { AuditSink, EventBatch } from './sink.js';

const RETRY_MS = 500;
/** Batches are gathered this long before a write, so a busy sidecar makes few large writes. */
const GATHER_MS = 5;
/** …unless this much is already waiting. */
const GATHER_BYTES = 256 * 1024;

export class FileSink implements AuditSink {
  readonly name: string;
  private handle: fs.FileHandle | null = null;
  private queued: Buffer[] = [];
  private writing: Promise<void> | null = null;
  private failures = 0;
  private queuedBytes = 0;
  private timer: NodeJS.Timeout | null = null;

  private constructor(
    readonly path: string,
    private readonly logger: Logger,
  ) {
    this.name = `file:${path}`;
  }

  static async open(path: string, logger: Logger): Promise<FileSink> {
    const sink = new FileSink(path, logger);
    await fs.mkdir(dirname(path), { recursive: true });
    // O_APPEND: every write lands at the end even if another process appends too.
    sink.handle = await fs.open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND, 0o600);
    return sink;
  }

  write(batch: EventBatch): void {
    const buf = Buffer.from(batch.jsonl, 'utf8');
    this.queued.push(buf);
    this.queuedBytes += buf.length;
    if (this.queuedBytes >= GATHER_BYTES) void this.pump();
    else if (!this.timer && !this.writing) this.timer = setTimeout(() => void this.pump(), GATHER_MS);
  }

  private pump(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (!this.writing) this.writing = this.drain().finally(() => (this.writing = null));
    return this.writing;
  }

  private async drain(): Promise<void> {
    while (this.queued.length > 0) {
      const handle = this.handle;
      if (!handle) {
        this.logger.error(
          { file: this.path, bytes: this.queuedBytes },
          'audit events arrived after the file was closed',
        );
        return;
      }
      const items = this.queued;
      this.queued = [];
      this.queuedBytes = 0;
      const batch = items.length === 1 ? items[0]! : Buffer.concat(items);
      let off = 0;
      try {
        while (off < batch.length) {
          const { bytesWritten } = await handle.write(batch, off, batch.length - off);
          off += bytesWritten;
        }
        this.failures = 0;
      } catch (e) {
        // Keep what was not written: a full disk or a transient error must not lose events.
        this.queued.unshift(batch.subarray(off));
        this.queuedBytes += batch.length - off;
        this.failures += 1;
        this.logger.error({ err: e, file: this.path, attempt: this.failures }, 'cannot write audit events; will retry');
        await new Promise((r) => setTimeout(r, RETRY_MS));
      }
    }
  }

  async flush(): Promise<void> {
    while (this.writing || this.queued.length > 0) await this.pump();
    try {
      await this.handle?.datasync();
    } catch (e) {
      // A character device or pipe (/dev/null, /dev/stdout) cannot be synced, and needs not be.
      if ((e as NodeJS.ErrnoException).code !== 'EINVAL') throw e;
    }
  }

  async close(): Promise<void> {
    await this.flush();
    await this.handle?.close();
    this.handle = null;
  }
}
