/**
 * Between the forward path and the sinks: collects finished records from every session, and once
 * per event-loop turn shapes them into events, chains them and hands the batch to the sinks.
 */
import type { AuditEvent, UnchainedEvent } from '@byline/api';
import { ChainWriter, uuidv7 } from '@byline/api';
import type { Logger } from 'pino';
import type { StatementRecord } from '../capture/records.js';
import type { SidecarMetrics } from '../metrics.js';
import type { EventBuilder, SessionInfo } from './event-builder.js';
import type { AuditSink, EventGroup } from './sink.js';

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

export class AuditPipeline {
  readonly chain: ChainWriter;
  private pending: Pending[] = [];
  private scheduled = false;
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
    this.chain = new ChainWriter(stream, position.seq, position.prev);
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
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.drain());
  }

  private drain(): void {
    this.scheduled = false;
    const batch = this.pending;
    if (batch.length === 0) return;
    this.pending = [];
    const events: AuditEvent[] = [];
    const groups: EventGroup[] = [];
    let jsonl = '';
    for (const item of batch) {
      if ('incident' in item) {
        const chained = this.chain.appendCanonical(item.incident);
        events.push(chained.event);
        jsonl += `${chained.json}\n`;
        groups.push({ session: null, record: null, nextSeq: null, ended: false, lines: [chained.json] });
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
        if (this.metrics && e.statement && e.result) {
          this.metrics.statements.inc({ route: e.target.route, class: e.statement.class, status: e.result.status });
          if (e.result.durationUs !== null) this.metrics.statementDuration.observe(e.result.durationUs / 1e6);
        }
        const chained = this.chain.appendCanonical(e);
        events.push(chained.event);
        lines.push(chained.json);
        jsonl += `${chained.json}\n`;
      }
      groups.push({
        session: item.session.id,
        record: 'record' in item ? item.record.seq : null,
        nextSeq: item.session.nextSeq,
        ended: !('record' in item) && item.type === 'session.end',
        lines,
      });
    }
    this.eventsWritten += events.length;
    const out = { events, jsonl, groups };
    for (const sink of this.sinks) sink.write(out);
  }

  /** Everything recorded so far is written and durable. */
  async flush(): Promise<void> {
    this.drain();
    await Promise.all(this.sinks.map((s) => s.flush()));
  }

  async close(): Promise<void> {
    await this.flush();
    await Promise.all(this.sinks.map((s) => s.close()));
  }
}
