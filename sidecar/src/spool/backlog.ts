/**
 * The spool's backlog: how far the collector has acknowledged (the checkpoint), which segments
 * may go, and whether a new statement may run. The checkpoint is written and fsynced, and
 * segments deleted, off the event loop, one persist at a time (a newer acknowledgement that
 * arrives meanwhile is written next, skipping those in between), and at most once per
 * CHECKPOINT_INTERVAL_MS unless it lets a segment go or someone waits for it (each is an open,
 * write, fsync and rename: per acknowledgement, that cost as much as shipping itself). A
 * checkpoint lost to a crash, or not yet written, only means events are shipped again, which the
 * collector stores once (`id` is unique); a segment is deleted only after a checkpoint past it is
 * durable.
 */
import { promises as fsp, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { SpoolPosition } from './recovery.js';
import type { SegmentLog } from './segment-log.js';

/** Checkpoints written at most this often while acknowledgements stay within one segment. */
export const CHECKPOINT_INTERVAL_MS = 1000;

export class Backlog {
  private acked: SpoolPosition;
  /** The position last persisted, and when. */
  private persisted: SpoolPosition;
  private persistedAt = 0;
  /** Ends the wait before the next checkpoint (settled() and close() want it now). */
  private hurry: (() => void) | null = null;
  /** Callers of settled() waiting now. */
  private hurried = 0;
  /** Checkpoint files written (tests read it). */
  checkpointWrites = 0;
  /** The newest acknowledgement not yet persisted, if any. */
  private unpersisted: SpoolPosition | null = null;
  private persisting: Promise<void> | null = null;

  constructor(
    private readonly log: SegmentLog,
    private readonly maxBytes: number,
    private readonly logger: Logger,
  ) {
    this.acked = readCheckpoint(log.dir);
    this.persisted = this.acked;
  }

  get acknowledged(): SpoolPosition {
    return this.acked;
  }

  /** Bytes of every segment on disk plus what is appended and not yet written. */
  get bytes(): number {
    return this.log.diskBytes + this.log.pendingBytes;
  }

  /** False when a new statement must not run: the backlog is at its bound or the disk refuses writes. */
  get accepting(): boolean {
    // After a failed write, try again: once the disk has room the spool accepts statements again.
    if (this.log.writeError !== null) this.log.flush();
    return this.log.writeError === null && this.bytes < this.maxBytes;
  }

  get refusalReason(): string {
    if (this.log.writeError) return `the audit spool cannot be written (${this.log.writeError.message})`;
    return `the audit spool is full (${this.bytes} of ${this.maxBytes} bytes; the collector is not keeping up)`;
  }

  /** The collector has stored everything before `to`: persist that, then delete what is no longer needed. */
  acknowledge(to: SpoolPosition): void {
    this.acked = to;
    this.unpersisted = to;
    this.persisting ??= this.persistLoop();
  }

  /** Resolves once every acknowledgement so far is persisted and its segments are deleted. */
  async settled(): Promise<void> {
    this.hurried += 1;
    try {
      while (this.persisting) {
        this.hurry?.();
        await this.persisting;
      }
    } finally {
      this.hurried -= 1;
    }
  }

  private async persistLoop(): Promise<void> {
    try {
      while (this.unpersisted) {
        // Within one segment nothing can be deleted: let acknowledgements gather a while.
        const wait = this.persistedAt + CHECKPOINT_INTERVAL_MS - Date.now();
        if (wait > 0 && this.hurried === 0 && this.unpersisted.segment === this.persisted.segment)
          await this.pause(wait);
        const to = this.unpersisted;
        this.unpersisted = null;
        try {
          this.checkpointWrites += 1;
          await writeAtomically(join(this.log.dir, 'checkpoint.json'), JSON.stringify(to));
        } catch (e) {
          // The old checkpoint stands: those events may ship again (stored once), nothing is lost.
          this.logger.warn({ err: e }, 'could not write the spool checkpoint');
          continue;
        } finally {
          this.persistedAt = Date.now();
        }
        this.persisted = to;
        await this.deleteBefore(to);
      }
    } finally {
      this.persisting = null;
    }
  }

  /** Waits `ms`, or less when settled() hurries it. */
  private pause(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      // Nothing is lost if the process ends meanwhile (see above); close() hurries it anyway.
      const timer = setTimeout(() => this.hurry?.(), ms);
      timer.unref();
      this.hurry = () => {
        this.hurry = null;
        clearTimeout(timer);
        resolve();
      };
    });
  }

  /** Deletes segments wholly before `to` that hold no unfinished statement (never the current one). */
  private async deleteBefore(to: SpoolPosition): Promise<void> {
    for (const [number, state] of this.log.segments) {
      if (number >= to.segment || number >= this.log.current.number || state.openBegins > 0) continue;
      try {
        await this.log.remove(number);
      } catch (e) {
        this.logger.warn({ err: e, segment: number }, 'could not delete an acknowledged spool segment');
      }
    }
  }
}

function readCheckpoint(dir: string): SpoolPosition {
  try {
    const p = JSON.parse(readFileSync(join(dir, 'checkpoint.json'), 'utf8')) as SpoolPosition;
    if (Number.isInteger(p.segment) && Number.isInteger(p.offset)) return p;
  } catch {
    // no checkpoint yet
  }
  return { segment: 0, offset: 0 };
}

/** Write to a temporary file, fsync, rename over: the file is the old or the new, never half. */
async function writeAtomically(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp`;
  const handle = await fsp.open(tmp, 'w', 0o600);
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fsp.rename(tmp, path);
}
