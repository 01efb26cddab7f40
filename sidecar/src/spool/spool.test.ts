import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AuditEvent, verifyStream } from '@byline/api';
import pino from 'pino';
import { afterEach, beforeAll, describe, expect, test } from 'vitest';
import { EventBuilder, type SessionInfo } from '../audit/event-builder.js';
import { AuditPipeline } from '../audit/pipeline.js';
import { session } from '../audit/record-fixtures.js';
import type { StatementRecord } from '../capture/records.js';
import { TableExtractor } from '../sql/tables.js';
import { SCS_OFF } from '../sql/tokenizer.js';
import { AppendBuffer } from './append-buffer.js';
import { CHECKPOINT_INTERVAL_MS } from './backlog.js';
import { decodeRecords, encodeRecord, RecordType } from './record-codec.js';
import { Spool, type SpoolOptions } from './spool.js';

const logger = pino({ level: 'silent' });
let tables: TableExtractor;
const dirs: string[] = [];
beforeAll(async () => {
  tables = await TableExtractor.create();
});
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'byline-spool-'));
  dirs.push(d);
  return d;
}

function open(dir: string, options: Partial<SpoolOptions> = {}) {
  const { spool, recovered } = Spool.open({ dir, durability: 'batch', maxBytes: 1 << 30, logger, ...options });
  const pipeline = new AuditPipeline(new EventBuilder('full', tables), [spool], logger, spool.stream, recovered.chain);
  return { spool, recovered, pipeline };
}

function record(seq: number, text: string, done: boolean): StatementRecord {
  return {
    kind: 'execute',
    receivedAt: Date.now(),
    startedAt: 0,
    text,
    preparedName: null,
    params: { lengths: [1], formats: [0], values: [Buffer.from('7')] },
    applicationName: 'app',
    results: done
      ? [{ status: 'ok', tag: 'UPDATE 1', rows: 1, sqlstate: null, error: null, copy: false, durationUs: 5 }]
      : [],
    notExecuted: null,
    seq,
    unrecorded: false,
  };
}

/**
 * Updates `from`..`to` of session `s`, each begun in the spool (written at once with
 * `writeBegins`, as a statement waiting on it makes happen) and finished; the pipeline is flushed
 * after every `flushEvery` statements (0: never).
 */
async function runUpdates(
  { spool, pipeline }: { spool: Spool; pipeline: AuditPipeline },
  s: SessionInfo,
  from: number,
  to: number,
  { flushEvery = 1, writeBegins = false } = {},
): Promise<void> {
  for (let i = from; i <= to; i++) {
    const r = record(i, `update t set x = $1 where id = ${i}`, true);
    spool.begin(s, r);
    if (writeBegins) spool.flushPending();
    pipeline.statement(s, r);
    if (flushEvery > 0 && i % flushEvery === 0) await pipeline.flush();
  }
}

async function allEvents(spool: Spool): Promise<AuditEvent[]> {
  return (await spool.readEvents({ segment: 0, offset: 0 }, 1 << 30)).events.lines.map(
    (l) => JSON.parse(l) as AuditEvent,
  );
}

describe('record codec', () => {
  test('a torn write at any offset leaves exactly the whole records before it', () => {
    const records = [encodeRecord(RecordType.begin, '{"a":1}'), encodeRecord(RecordType.events, 'é☃\nline')];
    const all = Buffer.concat(records);
    for (let cut = 0; cut <= all.length; cut++) {
      const { records: got, validEnd } = decodeRecords(all.subarray(0, cut));
      const whole = cut >= all.length ? 2 : cut >= records[0]!.length ? 1 : 0;
      expect(got.length, `cut at ${cut}`).toBe(whole);
      expect(validEnd).toBe(whole === 0 ? 0 : whole === 1 ? records[0]!.length : all.length);
    }
    expect(decodeRecords(all).records.map((r) => r.payload)).toEqual(['{"a":1}', 'é☃\nline']);
  });

  test('a byte flipped anywhere costs only the record it hit: the reader resyncs on the next frame', () => {
    const payloads = ['{"s":"a"}', '{"s":"b","x":"select 1"}', '{"h":1}\n{"e":2}\n{"e":3}', '{"seq":4,"prev":null}'];
    const types = [RecordType.session, RecordType.begin, RecordType.events, RecordType.chain];
    const records = payloads.map((p, i) => encodeRecord(types[i]!, p));
    const all = Buffer.concat(records);
    const starts = records.map((_, i) => records.slice(0, i).reduce((n, r) => n + r.length, 0));
    for (let at = 0; at < all.length; at++) {
      for (const flip of [0x01, 0x80, 0xff]) {
        const bad = Buffer.from(all);
        bad[at]! ^= flip;
        const hit = starts.findLastIndex((s) => s <= at);
        const { records: got, damaged, validEnd } = decodeRecords(bad);
        const expected = payloads.filter((_, i) => i !== hit);
        expect(
          got.map((r) => r.payload),
          `byte ${at} ^ ${flip}`,
        ).toEqual(expected);
        if (hit === records.length - 1) {
          // The last record: nothing valid follows, so it reads as a torn tail.
          expect(damaged).toEqual([]);
          expect(validEnd).toBe(starts[hit]);
        } else {
          expect(damaged).toEqual([{ start: starts[hit]!, end: starts[hit + 1]! }]);
          expect(validEnd).toBe(all.length);
        }
      }
    }
  });

  test('statement text that imitates a spool frame is never taken for one when resyncing', () => {
    // A hostile statement embedding a whole valid record: inside JSON its bytes below 0x0A are
    // escaped, so after damage in front of it the reader cannot land inside it.
    const fake = encodeRecord(RecordType.events, '{"forged":true}').toString('latin1');
    const records = [
      encodeRecord(RecordType.session, '{"s":"a"}'),
      encodeRecord(RecordType.begin, JSON.stringify({ x: fake })),
      encodeRecord(RecordType.chain, '{"seq":1}'),
    ];
    const bad = Buffer.concat(records);
    bad[records[0]!.length + 2]! ^= 0xff; // the begin record's length
    const { records: got } = decodeRecords(bad);
    expect(got.map((r) => r.payload)).toEqual(['{"s":"a"}', '{"seq":1}']);
  });

  test('a flipped bit is caught by the CRC', () => {
    const r = encodeRecord(RecordType.begin, '{"x":"select 1"}');
    r[r.length - 3]! ^= 0x01;
    expect(decodeRecords(r).records).toEqual([]);
  });
});

describe('append buffer', () => {
  test('frames records exactly as encodeRecord does, across growth and partial writes', () => {
    const payloads = ['{"a":1}', 'é☃\nline', '', 'x'.repeat(200_000), '{"s":"😀"}'];
    const out = new AppendBuffer();
    for (const p of payloads) out.append(RecordType.begin, p);
    const expected = Buffer.concat(payloads.map((p) => encodeRecord(RecordType.begin, p)));
    expect(out.bytes.equals(expected)).toBe(true);
    // A partial write keeps what was not written, in order.
    out.consume(100);
    expect(out.bytes.equals(expected.subarray(100))).toBe(true);
    out.append(RecordType.events, 'after');
    expect(out.bytes.equals(Buffer.concat([expected.subarray(100), encodeRecord(RecordType.events, 'after')]))).toBe(
      true,
    );
    out.consume(out.length);
    expect(out.length).toBe(0);
  });
});

describe('Spool', () => {
  test('events written through the pipeline are read back exactly, chained, and acknowledged', async () => {
    const dir = tempDir();
    const { spool, pipeline } = open(dir);
    const s = session('s1');
    spool.sessionStarted(s);
    pipeline.session(s, 'session.start', { ok: true });
    await runUpdates({ spool, pipeline }, s, 1, 3, { flushEvery: 0, writeBegins: true });
    await pipeline.flush();
    const events = await allEvents(spool);
    expect(events.map((e) => e.type)).toEqual(['session.start', 'statement', 'statement', 'statement']);
    expect(events.map((e) => e.session.seq)).toEqual([0, 1, 2, 3]);
    expect(verifyStream(events)).toBeUndefined();
    const { next } = await spool.readEvents(spool.acknowledged, 1 << 30);
    spool.acknowledge(next);
    expect((await spool.readEvents(spool.acknowledged, 1 << 30)).events.lines).toEqual([]);
    await spool.close();
    expect(JSON.parse(readFileSync(join(dir, 'checkpoint.json'), 'utf8'))).toEqual(next);
  });

  test('after a crash, a begun statement gets an unknown result and the open session its end, continuing the chain', async () => {
    const dir = tempDir();
    const first = open(dir);
    const s = session('s1');
    first.spool.sessionStarted(s);
    first.pipeline.session(s, 'session.start', { ok: true });
    const done = record(1, 'update t set x = $1 where id = 1', true);
    first.spool.begin(s, done);
    first.pipeline.statement(s, done);
    await first.pipeline.flush();
    const lost = record(2, 'delete from customers where id = $1', false);
    first.spool.begin(s, lost);
    first.spool.flushPending(); // handed to the OS, then the process "dies": no close, no events
    const stream = first.spool.stream;

    const second = open(dir);
    expect(second.spool.stream).toBe(stream);
    expect(second.recovered.chain.seq).toBe(2);
    expect(
      second.recovered.unfinished.map((u) => [u.session.id, u.record.text, u.record.params?.values?.[0]?.toString()]),
    ).toEqual([['s1', 'delete from customers where id = $1', '7']]);
    expect(second.recovered.openSessions.map((o) => o.id)).toEqual(['s1']);
    for (const u of second.recovered.unfinished) second.pipeline.statement(u.session, u.record);
    for (const o of second.recovered.openSessions)
      second.pipeline.session(o, 'session.end', { ok: false, error: 'stopped' });
    await second.pipeline.flush();

    const events = await allEvents(second.spool);
    expect(events.map((e) => [e.type, e.session.seq, e.result?.status])).toEqual([
      ['session.start', 0, 'ok'],
      ['statement', 1, 'ok'],
      ['statement', 2, 'unknown'],
      ['session.end', 3, 'error'],
    ]);
    expect(events[2]!.statement).toMatchObject({ text: 'delete from customers where id = $1', params: ['7'] });
    expect(verifyStream(events)).toBeUndefined();
    await second.spool.close();

    // A third start finds nothing left to recover: each statement was recorded once.
    const third = open(dir);
    expect(third.recovered.unfinished).toEqual([]);
    expect(third.recovered.openSessions).toEqual([]);
    await third.spool.close();
  });

  test('a recovered statement keeps the scan settings and exact bytes it ran under, and is split by them', async () => {
    const dir = tempDir();
    const first = open(dir);
    const s = session('s1');
    first.spool.sessionStarted(s);
    // With standard_conforming_strings off, \' does not end the string: this is two statements,
    // not three (as the default rules would split it).
    const text = "select 'a\\'; select 2'; select 3";
    const lost: StatementRecord = { ...record(1, text, false), kind: 'query', params: null, scanFlags: SCS_OFF };
    lost.raw = { bytes: Buffer.from([0x73, 0x81, 0x5c]), encoding: 'SJIS', bytewise: false };
    first.spool.begin(s, lost);
    first.spool.flushPending(); // the process dies here

    const second = open(dir);
    const [u] = second.recovered.unfinished;
    expect(u!.record.scanFlags).toBe(SCS_OFF);
    expect(u!.record.raw).toEqual(lost.raw);
    second.pipeline.statement(u!.session, { ...u!.record, raw: null });
    await second.pipeline.flush();
    const texts = (await allEvents(second.spool)).map((e) => e.statement?.text);
    expect(texts).toEqual(["select 'a\\'; select 2'", 'select 3']);
    await second.spool.close();
  });

  test('a recovered statement keeps the policy decision it ran (or was refused) under', async () => {
    const dir = tempDir();
    const first = open(dir);
    const s = session('s1');
    first.spool.sessionStarted(s);
    const approval = {
      name: 'migrate-1',
      approvedBy: 'bob',
      requestedBy: 'alice',
      reason: 'add a column',
      ticket: 'CHG-7',
      expiresAt: '2026-12-06T16:00:00Z',
    };
    const allowed: StatementRecord = { ...record(1, 'alter table t add column c int', false), kind: 'query' };
    allowed.authz = [{ allow: true, rule: 'r1 requireApproval', approval, message: null, hint: null }];
    const denied: StatementRecord = { ...record(2, 'drop table t', false), kind: 'query' };
    denied.authz = [{ allow: false, rule: 'r2 deny.classes', approval: null, message: 'byline: denied', hint: null }];
    first.spool.begin(s, allowed);
    first.spool.begin(s, denied);
    first.spool.flushPending(); // the process dies here

    const second = open(dir);
    expect(second.recovered.unfinished.map((u) => u.record.authz)).toEqual([allowed.authz, denied.authz]);
    for (const u of second.recovered.unfinished) second.pipeline.statement(u.session, u.record);
    await second.pipeline.flush();
    const events = (await allEvents(second.spool)).filter((e) => e.type === 'statement');
    expect(events.map((e) => [e.statement?.text, e.result?.status, e.authz])).toEqual([
      ['alter table t add column c int', 'unknown', { approval, decision: 'allow', rule: 'r1 requireApproval' }],
      ['drop table t', 'unknown', { approval: null, decision: 'deny', rule: 'r2 deny.classes' }],
    ]);
    await second.spool.close();
  });

  test('begin records carry a decision id: one decision record per distinct decision per segment, resolved on recovery', async () => {
    const dir = tempDir();
    const first = open(dir, { segmentBytes: 4096 });
    const s = session('s1');
    first.spool.sessionStarted(s);
    const approval = { name: 'a-1', approvedBy: 'bob', reason: 'r', ticket: null, expiresAt: '2026-12-06T16:00:00Z' };
    const decisions = [
      { allow: true, rule: 'r1 requireApproval: a long rule text '.repeat(4), approval, message: null, hint: null },
      { allow: false, rule: 'r2 deny.classes', approval: null, message: 'byline: denied', hint: 'ask for approval' },
    ];
    const begun: StatementRecord[] = [];
    for (let i = 1; i <= 60; i++) {
      const r: StatementRecord = { ...record(i, `update t set x = $1 where id = ${i}`, false), kind: 'query' };
      // Equal decisions need not be the same object: the engine may build one again.
      r.authz = i % 3 === 0 ? [{ ...decisions[1]! }] : [decisions[0]!, decisions[1]!];
      first.spool.begin(s, r);
      first.spool.flushPending();
      begun.push(r);
    } // the process dies here: none of them has its events

    const segments = readdirSync(dir)
      .filter((f) => f.startsWith('segment-'))
      .sort();
    expect(segments.length).toBeGreaterThan(2);
    for (const segment of segments) {
      const records = decodeRecords(readFileSync(join(dir, segment))).records;
      const begins = records.filter((r) => r.type === RecordType.begin);
      const decisionRecords = records.filter((r) => r.type === RecordType.decision);
      if (begins.length === 0) continue;
      // Each distinct decision once, before the first begin that refers to it; none spelled out in a begin.
      expect(decisionRecords.length, segment).toBe(2);
      const firstUse = (id: number) => begins.find((b) => (JSON.parse(b.payload).i as number[]).includes(id))!.start;
      for (const d of decisionRecords) expect(d.start).toBeLessThan(firstUse(JSON.parse(d.payload).i));
      for (const b of begins) {
        expect(b.payload).not.toContain('rule');
        expect(JSON.parse(b.payload).z).toBeUndefined();
      }
    }

    const second = open(dir);
    expect(second.recovered.unfinished.map((u) => u.record.authz)).toEqual(begun.map((r) => r.authz));
    for (const u of second.recovered.unfinished) second.pipeline.statement(u.session, u.record);
    await second.pipeline.flush();
    const events = (await allEvents(second.spool)).filter((e) => e.type === 'statement');
    expect(events).toHaveLength(60);
    // One statement with two decisions is recorded under the first (event-builder's rule).
    expect(events.map((e) => [e.authz?.decision, e.authz?.rule, e.authz?.approval])).toEqual(
      begun.map((r) => [r.authz![0]!.allow ? 'allow' : 'deny', r.authz![0]!.rule, r.authz![0]!.approval]),
    );
    expect(verifyStream(await allEvents(second.spool))).toBeUndefined();
    await second.spool.close();
  });

  test('a damaged decision record: its statements recover as not known to be allowed, the others exactly', async () => {
    const dir = tempDir();
    const first = open(dir);
    const s = session('s1');
    first.spool.sessionStarted(s);
    const allow = { allow: true, rule: 'r1 access readWrite', approval: null, message: null, hint: null };
    const deny = { allow: false, rule: 'r2 deny.classes', approval: null, message: 'byline: denied', hint: null };
    for (let i = 1; i <= 4; i++) {
      const r: StatementRecord = { ...record(i, `select ${i}`, false), kind: 'query' };
      r.authz = [i % 2 === 1 ? allow : deny];
      first.spool.begin(s, r);
    }
    first.spool.flushPending(); // the process dies here
    const segment = readdirSync(dir).find((f) => f.startsWith('segment-'))!;
    const path = join(dir, segment);
    const original = readFileSync(path);
    const decisionRecords = decodeRecords(original).records.filter((r) => r.type === RecordType.decision);
    expect(decisionRecords.map((d) => JSON.parse(d.payload).d.rule)).toEqual([allow.rule, deny.rule]);
    const victim = decisionRecords[1]!;
    const damaged = Buffer.from(original);
    damaged[(victim.start + victim.end) >> 1]! ^= 0x20;
    writeFileSync(path, damaged);

    const second = open(dir);
    expect(second.recovered.damaged.map((d) => [d.start, d.end])).toEqual([[victim.start, victim.end]]);
    const authz = second.recovered.unfinished.map((u) => u.record.authz![0]!);
    expect(authz.map((d) => [d.allow, d.rule])).toEqual([
      [true, allow.rule],
      [false, 'unknown: the spool record of this decision was damaged'],
      [true, allow.rule],
      [false, 'unknown: the spool record of this decision was damaged'],
    ]);
    await second.spool.close();
  });

  test('begin records written before decision records existed (decisions inline) still recover', async () => {
    const dir = tempDir();
    const first = open(dir);
    first.spool.sessionStarted(session('s1'));
    first.spool.flushPending();
    await first.spool.close();
    const segment = readdirSync(dir).find((f) => f.startsWith('segment-'))!;
    const decision = { allow: false, rule: 'r2 deny.classes', approval: null, message: 'byline: denied', hint: null };
    const legacy = { s: 's1', q: 1, k: 'query', t: Date.now(), x: 'drop table t', n: null, a: null, z: [decision] };
    appendFileSync(join(dir, segment), encodeRecord(RecordType.begin, JSON.stringify(legacy)));
    const second = open(dir);
    expect(second.recovered.unfinished.map((u) => [u.record.text, u.record.authz])).toEqual([
      ['drop table t', [decision]],
    ]);
    await second.spool.close();
  });

  test('acknowledging does not write on the event loop: the checkpoint and deletions follow, and settle', async () => {
    const dir = tempDir();
    const { spool, pipeline } = open(dir, { segmentBytes: 4096 });
    const s = session('s1');
    spool.sessionStarted(s);
    await runUpdates({ spool, pipeline }, s, 1, 39);
    const segments = () => readdirSync(dir).filter((f) => f.startsWith('segment-')).length;
    const before = segments();
    expect(before).toBeGreaterThan(3);
    const { next } = await spool.readEvents(spool.acknowledged, 1 << 30);
    spool.acknowledge(next, 39);
    // Nothing has touched the disk yet: that happens off this turn of the event loop.
    expect(readdirSync(dir)).not.toContain('checkpoint.json');
    expect(segments()).toBe(before);
    expect(spool.acknowledged).toEqual(next);
    await spool.settled();
    expect(JSON.parse(readFileSync(join(dir, 'checkpoint.json'), 'utf8'))).toEqual(next);
    expect(segments()).toBe(1);
    await spool.close();
  });

  test('acknowledgements within a segment are checkpointed at most once a second; settling writes the last at once', async () => {
    const dir = tempDir();
    const { spool, pipeline } = open(dir);
    const s = session('s1');
    spool.sessionStarted(s);
    await runUpdates({ spool, pipeline }, s, 1, 30, { flushEvery: 0 });
    await pipeline.flush();
    const { lines } = (await spool.readEvents(spool.acknowledged, 1 << 30)).events;
    expect(lines).toHaveLength(30);
    // Acknowledge one event at a time, as a shipper of small batches does, a turn apart.
    let position = spool.acknowledged;
    const started = Date.now();
    for (let i = 0; i < 30; i++) {
      const next = await spool.readEvents(position, 1);
      spool.acknowledge(next.next, next.events.lines.length);
      position = next.next;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const elapsed = Date.now() - started;
    expect(spool.checkpointWrites).toBeLessThanOrEqual(1 + Math.ceil(elapsed / CHECKPOINT_INTERVAL_MS));
    await spool.settled();
    expect(JSON.parse(readFileSync(join(dir, 'checkpoint.json'), 'utf8'))).toEqual(position);
    await spool.close();
    // A restart ships from there: nothing acknowledged is shipped again.
    const again = open(dir);
    expect((await again.spool.readEvents(again.spool.acknowledged, 1 << 30)).events.lines).toEqual([]);
    await again.spool.close();
  });

  test('an acknowledgement past a segment is checkpointed at once, so the segment goes without waiting', async () => {
    const dir = tempDir();
    const { spool, pipeline } = open(dir, { segmentBytes: 4096 });
    const s = session('s1');
    spool.sessionStarted(s);
    await runUpdates({ spool, pipeline }, s, 1, 39);
    const segments = () => readdirSync(dir).filter((f) => f.startsWith('segment-')).length;
    expect(segments()).toBeGreaterThan(3);
    // A first, small acknowledgement: the next one within the interval would wait...
    const first = await spool.readEvents(spool.acknowledged, 1);
    spool.acknowledge(first.next, first.events.lines.length);
    await new Promise((resolve) => setTimeout(resolve, 50));
    // ...but this one crosses segments: written and the old segments deleted well within it.
    const rest = await spool.readEvents(spool.acknowledged, 1 << 30);
    spool.acknowledge(rest.next, rest.events.lines.length);
    const deadline = Date.now() + CHECKPOINT_INTERVAL_MS / 2;
    while (segments() > 1 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(segments()).toBe(1);
    expect(JSON.parse(readFileSync(join(dir, 'checkpoint.json'), 'utf8'))).toEqual(rest.next);
    await spool.close();
  });

  test('a torn tail is cut off and the statement it held is recovered from its begin record', async () => {
    const dir = tempDir();
    const first = open(dir);
    const s = session('s1');
    first.spool.sessionStarted(s);
    const r = record(1, 'update t set x = 1', false);
    first.spool.begin(s, r);
    first.spool.flushPending();
    const segment = readdirSync(dir).find((f) => f.startsWith('segment-'))!;
    // Half an events record, as a crash in the middle of write(2) would leave.
    appendFileSync(join(dir, segment), encodeRecord(RecordType.events, '{"s":"s1","q":1}\n{}').subarray(0, 12));
    const second = open(dir);
    expect(second.recovered.unfinished.map((u) => u.record.text)).toEqual(['update t set x = 1']);
    expect(decodeRecords(readFileSync(join(dir, segment))).validEnd).toBe(readFileSync(join(dir, segment)).length);
    await second.spool.close();
  });

  test('damage in the middle of a segment: the records after it are kept, the segment is quarantined, reported once', async () => {
    const dir = tempDir();
    const first = open(dir);
    const s = session('s1');
    first.spool.sessionStarted(s);
    first.pipeline.session(s, 'session.start', { ok: true });
    await runUpdates(first, s, 1, 5);
    first.pipeline.session(s, 'session.end', { ok: true });
    await first.pipeline.close();
    const segment = readdirSync(dir).find((f) => f.startsWith('segment-'))!;
    const path = join(dir, segment);
    const original = readFileSync(path);
    const events = decodeRecords(original).records.filter((r) => r.type === RecordType.events);
    expect(events).toHaveLength(7);
    const victim = events[3]!; // statement 3 (chain seq 4)
    const damaged = Buffer.from(original);
    damaged[(victim.start + victim.end) >> 1]! ^= 0x20;
    writeFileSync(path, damaged);

    const second = open(dir);
    expect(second.recovered.damaged).toEqual([
      {
        segment,
        start: victim.start,
        end: victim.end,
        quarantine: join(dir, 'quarantine', `${segment}.damaged-at-${victim.start}`),
        seqAfter: 3,
        seqBefore: 5,
      },
    ]);
    expect(readFileSync(second.recovered.damaged[0]!.quarantine!)).toEqual(damaged);
    // Everything else is still there to ship, and nothing after the damage was cut off.
    const seqs = (await allEvents(second.spool)).map((e) => e.chain.seq);
    expect(seqs).toEqual([1, 2, 3, 5, 6, 7]);
    expect(second.spool.unshipped).toBe(6);
    expect(second.recovered.chain.seq).toBe(7);
    expect(readFileSync(path).length).toBe(damaged.length);
    second.spool.damageRecorded(second.recovered.damaged[0]!);
    await second.spool.close();

    const third = open(dir);
    expect(third.recovered.damaged).toEqual([]);
    await third.spool.close();
  });

  test('damage met while shipping is reported through onDamage, once', async () => {
    const dir = tempDir();
    const first = open(dir, { segmentBytes: 4096 });
    const s = session('s1');
    first.spool.sessionStarted(s);
    await runUpdates(first, s, 1, 40);
    const segment = readdirSync(dir)
      .filter((f) => f.startsWith('segment-'))
      .sort()[0]!;
    const path = join(dir, segment);
    const buf = readFileSync(path);
    const victim = decodeRecords(buf).records.filter((r) => r.type === RecordType.events)[2]!;
    buf[victim.start + 20]! ^= 0x40;
    writeFileSync(path, buf);
    const reports: unknown[] = [];
    first.spool.onDamage = (r) => reports.push(r);
    const before = (await first.spool.readEvents({ segment: 0, offset: 0 }, 1 << 30)).events.lines.length;
    await first.spool.readEvents({ segment: 0, offset: 0 }, 1 << 30);
    expect(reports).toEqual([expect.objectContaining({ segment, start: victim.start, end: victim.end })]);
    expect(before).toBe(39);
    await first.spool.close();
  });

  test('segments roll over, and an acknowledged one is deleted only when none of its statements is still open', async () => {
    const dir = tempDir();
    const { spool, pipeline } = open(dir, { segmentBytes: 4096 });
    const s = session('s1');
    spool.sessionStarted(s);
    const longRunning = record(1, 'select pg_sleep(3600)', false);
    spool.begin(s, longRunning);
    await runUpdates({ spool, pipeline }, s, 2, 39);
    const segments = () => readdirSync(dir).filter((f) => f.startsWith('segment-')).length;
    expect(segments()).toBeGreaterThan(3);
    spool.acknowledge((await spool.readEvents(spool.acknowledged, 1 << 30)).next);
    await spool.settled();
    // The first segment holds the long-running statement's begin: it must stay.
    expect(
      readdirSync(dir)
        .filter((f) => f.startsWith('segment-'))
        .sort()[0],
    ).toBe('segment-000000000001.log');
    const before = segments();
    longRunning.results.push({
      status: 'ok',
      tag: 'SELECT 1',
      rows: 1,
      sqlstate: null,
      error: null,
      copy: false,
      durationUs: 1,
    });
    pipeline.statement(s, longRunning);
    await pipeline.flush();
    spool.acknowledge((await spool.readEvents(spool.acknowledged, 1 << 30)).next);
    await spool.settled();
    expect(segments()).toBeLessThan(before);
    expect(
      readdirSync(dir)
        .filter((f) => f.startsWith('segment-'))
        .sort()[0],
    ).not.toBe('segment-000000000001.log');
    await spool.close();
  });

  test('a full spool stops accepting and says why', async () => {
    const dir = tempDir();
    const { spool, pipeline } = open(dir, { maxBytes: 65536 });
    const s = session('s1');
    spool.sessionStarted(s);
    let i = 1;
    while (spool.accepting && i < 10_000) {
      const r = record(i++, `insert into t values (${'x'.repeat(200)})`, true);
      spool.begin(s, r);
      pipeline.statement(s, r);
      await pipeline.flush();
    }
    expect(spool.accepting).toBe(false);
    expect(spool.refusalReason).toMatch(/the audit spool is full \(\d+ of 65536 bytes/);
    spool.acknowledge((await spool.readEvents(spool.acknowledged, 1 << 30)).next);
    await spool.settled();
    await spool.close();
  });

  test('strict durability: waiters are released across segment roll-overs', async () => {
    const dir = tempDir();
    const { spool, pipeline } = open(dir, { durability: 'strict', segmentBytes: 4096 });
    const s = session('s1');
    spool.sessionStarted(s);
    for (let i = 1; i < 60; i++) {
      const r = record(i, `update t set x = $1 where id = ${i}`, true);
      spool.begin(s, r);
      pipeline.statement(s, r);
      await pipeline.flush();
      // A statement's result waits for this: it must come, whichever segment it was written to.
      await Promise.race([
        new Promise<void>((resolve) => spool.whenDurable(resolve)),
        new Promise((_, reject) => setTimeout(() => reject(new Error(`waiter ${i} never released`)), 2000)),
      ]);
    }
    expect(readdirSync(dir).filter((f) => f.startsWith('segment-')).length).toBeGreaterThan(3);
    await spool.close();
  });

  test("begin records of every session in one event-loop turn go out in one write, before any session's turn ends", async () => {
    const dir = tempDir();
    const { spool } = open(dir);
    const sessions = ['a', 'b', 'c'].map(session);
    for (const s of sessions) spool.sessionStarted(s);
    spool.flushPending();
    const before = spool.writeCalls;
    const segment = join(dir, readdirSync(dir).find((f) => f.startsWith('segment-'))!);
    const sizeBefore = readFileSync(segment).length;
    const seen: [string, boolean, number][] = [];
    await new Promise<void>((resolve) => {
      sessions.forEach((s, i) => {
        spool.begin(s, record(i + 1, `select ${i}`, false));
        // What each session may forward once told: its begin record is in the file.
        spool.writeThisTurn((written) => {
          seen.push([s.id, written, readFileSync(segment).length]);
          if (seen.length === sessions.length) resolve();
        });
      });
      expect(readFileSync(segment).length).toBe(sizeBefore); // nothing written yet in this turn
    });
    expect(spool.writeCalls - before).toBe(1);
    const size = readFileSync(segment).length;
    expect(size).toBeGreaterThan(sizeBefore);
    expect(seen).toEqual([
      ['a', true, size],
      ['b', true, size],
      ['c', true, size],
    ]);
    await spool.close();
  });

  test('shipping a large backlog reads a window per batch, not the rest of the segment each time, and misses nothing', async () => {
    const dir = tempDir();
    const { spool, pipeline } = open(dir);
    const s = session('s1');
    spool.sessionStarted(s);
    const texts: string[] = [];
    for (let i = 1; i <= 3000; i++) {
      // One statement far larger than the read window: read whole all the same.
      const text = i === 2500 ? `select '${'x'.repeat(600_000)}'` : `update t set x = $1 where id = ${i}`;
      texts.push(text);
      const r = record(i, text, true);
      spool.begin(s, r);
      pipeline.statement(s, r);
      // Begin records and events interleave, as they do when sessions run.
      if (i % 50 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    await pipeline.flush();
    const segmentBytes = spool.bytes;
    expect(segmentBytes).toBeGreaterThan(2_000_000);
    const before = spool.bytesRead;
    const first = await spool.readEvents(spool.acknowledged, 16 * 1024);
    expect(first.events.lines.length).toBeGreaterThan(0);
    expect(spool.bytesRead - before).toBeLessThan(300 * 1024);
    // Batch after batch to the end: every event once, in chain order, none lost at a window's edge.
    const shipped: AuditEvent[] = [];
    let batch = first;
    let reads = 1;
    while (batch.events.lines.length > 0) {
      for (const l of batch.events.lines) shipped.push(JSON.parse(l) as AuditEvent);
      spool.acknowledge(batch.next, batch.events.lines.length);
      batch = await spool.readEvents(spool.acknowledged, 16 * 1024);
      reads += 1;
    }
    expect(shipped.map((e) => e.chain.seq)).toEqual(texts.map((_, i) => i + 1));
    // (The large text is recorded cut, with its length and hash: truncate.ts.)
    expect(shipped.map((e) => e.statement?.text?.slice(0, 40))).toEqual(texts.map((t) => t.slice(0, 40)));
    // A few times the backlog in all, not (batches × backlog) as reading to the segment's end would.
    expect(spool.bytesRead - before).toBeLessThan(segmentBytes * 4);
    expect(reads).toBeGreaterThan(20);
    await spool.settled();
    await spool.close();
  });

  test('events this process wrote ship from memory: the lines and positions the segment holds, nothing read back', async () => {
    const dir = tempDir();
    const { spool, pipeline } = open(dir);
    const s = session('s1');
    spool.sessionStarted(s);
    await runUpdates({ spool, pipeline }, s, 1, 200, { flushEvery: 20, writeBegins: true });
    await pipeline.flush();
    const from = { segment: 1, offset: 0 };
    const before = spool.bytesRead;
    const shipped: string[] = [];
    const positions: unknown[] = [];
    for (let batch = await spool.readEvents(from, 8 * 1024); batch.events.lines.length > 0; ) {
      shipped.push(...batch.events.lines);
      positions.push(batch.next);
      batch = await spool.readEvents(batch.next, 8 * 1024);
    }
    expect(spool.bytesRead - before).toBe(0);
    expect(shipped.length).toBe(200);
    const last = positions.at(-1);
    await spool.close();
    // The file holds the very same lines: read back after a restart (all of it from disk now).
    const again = open(dir);
    const fromDisk = await again.spool.readEvents(from, 1 << 30);
    expect(again.spool.bytesRead).toBeGreaterThan(0);
    expect(fromDisk.events.lines).toEqual(shipped);
    expect(last).toEqual({ segment: 1, offset: readFileSync(join(dir, 'segment-000000000001.log')).length });
    await again.spool.close();
  });

  test('a shipper behind by more than the memory bound reads the rest from disk: every event once, in order', async () => {
    const dir = tempDir();
    const { spool, pipeline } = open(dir, { recentBytes: 16 * 1024, segmentBytes: 64 * 1024 });
    const s = session('s1');
    spool.sessionStarted(s);
    await runUpdates({ spool, pipeline }, s, 1, 600, { flushEvery: 25, writeBegins: true });
    await pipeline.flush();
    const before = spool.bytesRead;
    const seqs: number[] = [];
    let reads = 0;
    for (let more = true; more; reads++) {
      // As the shipper does: past the last events too (begin records), once nothing is left.
      const batch = await spool.readEvents(spool.acknowledged, 8 * 1024);
      for (const l of batch.events.lines) seqs.push((JSON.parse(l) as AuditEvent).chain.seq);
      spool.acknowledge(batch.next, batch.events.count);
      more = batch.events.count > 0;
    }
    expect(seqs).toEqual(Array.from({ length: 600 }, (_, i) => i + 1));
    expect(spool.bytesRead - before).toBeGreaterThan(0);
    expect(reads).toBeGreaterThan(10);
    // Caught up: what is written now ships from memory again.
    const r = record(601, 'select 1', true);
    spool.begin(s, r);
    pipeline.statement(s, r);
    await pipeline.flush();
    const readBefore = spool.bytesRead;
    const last = await spool.readEvents(spool.acknowledged, 8 * 1024);
    expect(last.events.lines.map((l) => (JSON.parse(l) as AuditEvent).chain.seq)).toEqual([601]);
    expect(spool.bytesRead).toBe(readBefore);
    await spool.close();
  });

  test('strict durability starts the fsync when begin records are written, before anyone waits for it', async () => {
    const dir = tempDir();
    const { spool } = open(dir, { durability: 'strict' });
    const s = session('s1');
    spool.sessionStarted(s);
    spool.begin(s, record(1, 'select 1', false));
    await new Promise<void>((resolve) => spool.writeThisTurn(() => resolve()));
    expect(spool.beginsDurable).toBe(false);
    const deadline = Date.now() + 5000;
    while (!spool.beginsDurable && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    expect(spool.beginsDurable).toBe(true);
    // The result then passes at once.
    let released = false;
    spool.whenDurable(() => {
      released = true;
    });
    expect(released).toBe(true);
    await spool.close();
  });

  test('strict durability: events written after the begin records do not hold a result back', async () => {
    const dir = tempDir();
    const { spool, pipeline } = open(dir, { durability: 'strict' });
    const s = session('s1');
    spool.sessionStarted(s);
    const r = record(1, 'update t set x = $1 where id = 1', true);
    spool.begin(s, r);
    await new Promise<void>((resolve) => spool.writeThisTurn(() => resolve()));
    await new Promise<void>((resolve) => spool.whenDurable(resolve));
    // Another session's finished statement: its events go to the file, not yet fsynced.
    pipeline.statement(s, r);
    await new Promise((resolve) => setTimeout(resolve, 20));
    spool.flushPending();
    let released = false;
    spool.whenDurable(() => {
      released = true;
    });
    expect(released).toBe(true);
    // A begin appended and not yet written is: it is written and waited for.
    spool.begin(s, record(2, 'select 2', false));
    let second = false;
    const done = new Promise<void>((resolve) =>
      spool.whenDurable(() => {
        second = true;
        resolve();
      }),
    );
    expect(second).toBe(false);
    await done;
    await spool.close();
  });

  test('strict durability runs the waiter only after an fsync', async () => {
    const dir = tempDir();
    const { spool } = open(dir, { durability: 'strict' });
    spool.sessionStarted(session('s1'));
    spool.begin(session('s1'), record(1, 'select 1', false));
    const order: string[] = [];
    await new Promise<void>((resolve) =>
      spool.whenDurable(() => {
        order.push('durable');
        resolve();
      }),
    );
    order.push('after');
    expect(order).toEqual(['durable', 'after']);
    await spool.close();
  });
});
