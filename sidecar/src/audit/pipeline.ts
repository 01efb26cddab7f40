/**
 * Between the forward path and the sinks: collects finished records from every session, and in
 * batches shapes them into events, chains them and hands the batch to the sinks.
 *
 * Shaping waits on a short timer rather than running in the turn right after an answer: there it
 * sat between the answer and the client's next statement, which at one client arrives in exactly
 * that gap. Durability is unchanged (the begin record is durable before forwarding; shaping only
 * writes the outcome); the wait is bounded in time (SHAPE_DELAY_MS) and size (SHAPE_BATCH_MAX), and
 * a batch keeps arrival order. One turn shapes at most SHAPE_BATCH_MAX records and leaves the rest
 * to the next (setImmediate, after the sockets' I/O): a Query message of thousands of statements
 * must not stall every other session for the whole of its shaping.
 */
import type { UnchainedEvent } from '@byline/api';
import { uuidv7 } from '@byline/api';
import type { Logger } from 'pino';
import type { StatementRecord } from '../capture/records.js';
import type { SidecarMetrics } from '../metrics.js';
import type { EventBuilder, SessionInfo } from './event-builder.js';
import { EventChain } from './event-chain.js';
import type { AuditSink, EventBatch, EventGroup } from './sink.js';
import { StatementCounters } from './statement-counters.js';

type Pending =
  | { session: SessionInfo; record: StatementRecord }
  | {
      session: SessionInfo;
      type: 'session.start' | 'session.end';
      time: number;
      ok: boolean;
      sqlstate: string | null;
      error: string | null;
    }
  | { incident: UnchainedEvent };

/** The longest a finished record waits to be shaped. */
export const SHAPE_DELAY_MS = 2;
/**
 * A batch this large is shaped in the next turn instead of waiting for the timer, and no turn
 * shapes more: at 6-9 µs a record (test/bench/core.ts) about 1 ms of the event loop.
 */
export const SHAPE_BATCH_MAX = 128;

export class AuditPipeline {
  readonly chain: EventChain;
  private readonly counters: StatementCounters | null;
  private pending: Pending[] = [];
  private timer: NodeJS.Timeout | null = null;
  private immediate: NodeJS.Immediate | null = null;
  private readonly drainNow = (): void => this.drain();
  /** Events handed to the sinks so far. */
  eventsWritten = 0;

  constructor(
    private readonly builder: EventBuilder,
    private readonly sinks: readonly AuditSink[],
    private readonly logger: Logger,
    stream: string = uuidv7(),
    position: { seq: number; prev: string | null } = { seq: 0, prev: null },
    private readonly metrics: SidecarMetrics | null = null,
  ) {
    this.chain = new EventChain(stream, position.seq, position.prev);
    this.counters = metrics ? new StatementCounters(metrics) : null;
  }

  statement(session: SessionInfo, record: StatementRecord): void {
    if (record.unrecorded) {
      this.metrics?.dropped.inc();
      return;
    }
    this.pending.push({ session, record });
    this.schedule();
  }

  session(
    session: SessionInfo,
    type: 'session.start' | 'session.end',
    outcome: { ok: boolean; sqlstate?: string | null; error?: string | null },
  ): void {
    this.pending.push({
      session,
      type,
      time: Date.now(),
      ok: outcome.ok,
      sqlstate: outcome.sqlstate ?? null,
      error: outcome.error ?? null,
    });
    this.schedule();
  }

  /** An event about the trail itself (spool.damaged, spool.deadLettered): chained like any other. */
  incident(event: UnchainedEvent): void {
    this.pending.push({ incident: event });
    this.schedule();
  }

  private schedule(): void {
    if (this.pending.length >= SHAPE_BATCH_MAX) {
      this.immediate ??= setImmediate(this.drainNow);
      return;
    }
    this.timer ??= setTimeout(this.drainNow, SHAPE_DELAY_MS);
  }

  private drain(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.immediate) {
      clearImmediate(this.immediate);
      this.immediate = null;
    }
    if (this.pending.length === 0) return;
    let batch = this.pending;
    if (batch.length > SHAPE_BATCH_MAX) {
      batch = this.pending.splice(0, SHAPE_BATCH_MAX);
      this.immediate = setImmediate(this.drainNow);
    } else this.pending = [];
    const groups: EventGroup[] = [];
    let jsonl = '';
    let count = 0;
    for (const item of batch) {
      if ('incident' in item) {
        const line = this.chain.append(item.incident);
        count++;
        jsonl += `${line}\n`;
        groups.push({ session: null, record: null, nextSeq: null, ended: false, lines: [line] });
        continue;
      }
      let shaped: UnchainedEvent[];
      try {
        shaped =
          'record' in item
            ? this.builder.statementEvents(item.session, item.record)
            : [this.builder.sessionEvent(item.session, item.type, item.time, item)];
      } catch (e) {
        // Never lose a statement to a bug in shaping: log it and record what is certain.
        this.logger.error({ err: e }, 'could not shape an audit event; recording it unparsed');
        shaped = 'record' in item ? [this.builder.fallbackEvent(item.session, item.record)] : [];
      }
      const lines: string[] = [];
      if (shaped[0]?.statement?.splitMismatch) this.metrics?.splitMismatches.inc();
      for (const e of shaped) {
        this.counters?.count(e);
        const line = this.chain.append(e);
        lines.push(line);
        jsonl += `${line}\n`;
      }
      count += shaped.length;
      groups.push({
        session: item.session.id,
        record: 'record' in item ? item.record.seq : null,
        nextSeq: item.session.nextSeq,
        ended: !('record' in item) && item.type === 'session.end',
        lines,
      });
    }
    this.eventsWritten += count;
    const out: EventBatch = { head: count > 0 ? this.chain.position : null, jsonl, groups };
    for (const sink of this.sinks) sink.write(out);
  }

  /** Everything recorded so far is written and durable. */
  async flush(): Promise<void> {
    while (this.pending.length > 0) this.drain();
    await Promise.all(this.sinks.map((s) => s.flush()));
  }

  async close(): Promise<void> {
    await this.flush();
    await Promise.all(this.sinks.map((s) => s.close()));
  }
}
