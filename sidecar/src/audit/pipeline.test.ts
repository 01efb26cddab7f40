import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { beforeAll, describe, expect, test } from 'vitest';
import type { StatementRecord } from '../capture/records.js';
import { TableExtractor } from '../sql/tables.js';
import { EventBuilder } from './event-builder.js';
import { AuditPipeline, SHAPE_BATCH_MAX, SHAPE_DELAY_MS } from './pipeline.js';
import { session } from './record-fixtures.js';
import type { AuditSink, EventBatch } from './sink.js';

const logger = pino({ level: 'silent' });
let tables: TableExtractor;
beforeAll(async () => {
  tables = await TableExtractor.create();
});

class RecordingSink implements AuditSink {
  readonly name = 'recording';
  readonly batches: EventBatch[] = [];
  write(batch: EventBatch): void {
    this.batches.push(batch);
  }
  async flush(): Promise<void> {}
  async close(): Promise<void> {}
  get lines(): { seq: number; sessionId: string; text: string | null }[] {
    return this.batches.flatMap((b) =>
      b.jsonl
        .trimEnd()
        .split('\n')
        .map((l) => {
          const e = JSON.parse(l);
          return { seq: e.chain.seq, sessionId: e.session.id, text: e.statement?.text ?? null };
        }),
    );
  }
}

function record(seq: number, text: string): StatementRecord {
  return {
    kind: 'query',
    receivedAt: Date.now(),
    startedAt: 0,
    text,
    preparedName: null,
    params: null,
    applicationName: 'app',
    results: [{ status: 'ok', tag: 'SELECT 1', rows: 1, sqlstate: null, error: null, copy: false, durationUs: 5 }],
    notExecuted: null,
    seq,
    unrecorded: false,
  };
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

function setup() {
  const sink = new RecordingSink();
  const pipeline = new AuditPipeline(new EventBuilder('full', tables), [sink], logger);
  return { sink, pipeline };
}

describe('AuditPipeline scheduling', () => {
  test('a finished statement is not shaped in the turns right after its answer, but within SHAPE_DELAY_MS', async () => {
    const { sink, pipeline } = setup();
    const started = performance.now();
    pipeline.statement(session('s1'), record(0, 'SELECT 1'));
    // The client's next statement arrives in these turns: shaping must not sit in front of it.
    await nextTurn();
    await nextTurn();
    // (On a starved machine the two turns can outlast the delay, and then the timer rightly fired.)
    if (performance.now() - started < SHAPE_DELAY_MS) expect(sink.batches).toHaveLength(0);
    await sleep(SHAPE_DELAY_MS + 20);
    expect(sink.lines.map((l) => l.text)).toEqual(['SELECT 1']);
  });

  test('statements and session events of several sessions arriving within the delay go out as one batch, in arrival order', async () => {
    const { sink, pipeline } = setup();
    const a = session('a');
    const b = session('b');
    pipeline.session(a, 'session.start', { ok: true });
    pipeline.statement(a, record(0, 'SELECT 1'));
    pipeline.session(b, 'session.start', { ok: true });
    pipeline.statement(b, record(0, 'SELECT 2'));
    await nextTurn();
    pipeline.statement(a, record(1, 'SELECT 3'));
    pipeline.session(a, 'session.end', { ok: true });
    await sleep(SHAPE_DELAY_MS + 20);
    expect(sink.batches).toHaveLength(1);
    expect(sink.lines.map((l) => [l.sessionId, l.text])).toEqual([
      ['a', null],
      ['a', 'SELECT 1'],
      ['b', null],
      ['b', 'SELECT 2'],
      ['a', 'SELECT 3'],
      ['a', null],
    ]);
    expect(sink.lines.map((l) => l.seq)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(pipeline.eventsWritten).toBe(6);
  });

  test('a burst of SHAPE_BATCH_MAX records is shaped in the next turn without waiting for the timer', async () => {
    const { sink, pipeline } = setup();
    const s = session('burst');
    for (let i = 0; i < SHAPE_BATCH_MAX; i++) pipeline.statement(s, record(i, `SELECT ${i}`));
    expect(sink.batches).toHaveLength(0);
    await nextTurn();
    expect(sink.lines).toHaveLength(SHAPE_BATCH_MAX);
    expect(sink.lines.at(-1)?.text).toBe(`SELECT ${SHAPE_BATCH_MAX - 1}`);
  });

  test('no turn shapes more than SHAPE_BATCH_MAX records: a larger burst goes on in the next turns, in order', async () => {
    const { sink, pipeline } = setup();
    const s = session('flood');
    const n = 3 * SHAPE_BATCH_MAX + 5;
    for (let i = 0; i < n; i++) pipeline.statement(s, record(i, `SELECT ${i}`));
    await nextTurn();
    expect(sink.lines).toHaveLength(SHAPE_BATCH_MAX);
    await nextTurn();
    expect(sink.lines).toHaveLength(2 * SHAPE_BATCH_MAX);
    for (let i = 0; i < 3; i++) await nextTurn();
    expect(sink.batches.map((b) => b.groups.length)).toEqual([SHAPE_BATCH_MAX, SHAPE_BATCH_MAX, SHAPE_BATCH_MAX, 5]);
    expect(sink.lines.map((l) => l.seq)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
    expect(sink.lines.at(-1)?.text).toBe(`SELECT ${n - 1}`);
  });

  test('flush shapes a burst larger than one turn all at once', async () => {
    const { sink, pipeline } = setup();
    const n = 2 * SHAPE_BATCH_MAX + 1;
    for (let i = 0; i < n; i++) pipeline.statement(session('big'), record(i, `SELECT ${i}`));
    await pipeline.flush();
    expect(sink.lines).toHaveLength(n);
    await nextTurn();
    expect(sink.lines).toHaveLength(n);
  });

  test('flush shapes what is pending at once, and the timer then finds nothing to write twice', async () => {
    const { sink, pipeline } = setup();
    pipeline.statement(session('f'), record(0, 'SELECT 1'));
    await pipeline.flush();
    expect(sink.lines.map((l) => l.text)).toEqual(['SELECT 1']);
    await sleep(SHAPE_DELAY_MS + 20);
    expect(sink.batches).toHaveLength(1);
    pipeline.statement(session('f'), record(1, 'SELECT 2'));
    await sleep(SHAPE_DELAY_MS + 20);
    expect(sink.lines.map((l) => l.text)).toEqual(['SELECT 1', 'SELECT 2']);
  });
});
