import { AuditEventSchema, ChainWriter, canonicalJson, isValid, type UnchainedEvent } from '@byline/api';
import { beforeAll, describe, expect, test } from 'vitest';
import type { ResultRecord } from '../capture/records.js';
import { TableExtractor } from '../sql/tables.js';
import { SCS_OFF } from '../sql/tokenizer.js';
import { EventBuilder, type SessionInfo, splitMismatch } from './event-builder.js';
import { ok, record } from './record-fixtures.js';

let tables: TableExtractor;
beforeAll(async () => {
  tables = await TableExtractor.create();
});

function session(): SessionInfo {
  return {
    id: 'session-1',
    identity: { kind: 'agent', name: 'billing', namespace: null, pod: null, serviceAccount: null, source: 'static' },
    target: { database: 'orders', host: 'db', port: 5432, route: 'orders-db' },
    client: '127.0.0.1:5000',
    dbUser: 'app',
    applicationName: 'app',
    nextSeq: 1,
  };
}

function expectCanonicalAndValid(events: UnchainedEvent[]): void {
  const chain = new ChainWriter('s');
  for (const e of events) {
    // The chain's fast path relies on the builder producing keys in canonical order.
    expect(JSON.stringify(e)).toBe(canonicalJson(e));
    const chained = chain.appendCanonical(e);
    expect(chained.json).toBe(canonicalJson(chained.event));
    expect(isValid(AuditEventSchema, chained.event)).toBe(true);
  }
}

describe('EventBuilder', () => {
  test('a Query with several statements gives one event per statement, each with its own result', () => {
    const builder = new EventBuilder('redacted', tables);
    const s = session();
    const events = builder.statementEvents(
      s,
      record({
        text: "select * from customers; update orders set x = 1 /*task='T-7',traceparent='00-ab-cd-01'*/; drop table t",
        results: [ok('SELECT 3', 3), { ...ok('', null), status: 'error', tag: null, sqlstate: '23505', error: 'dup' }],
        notExecuted: 'not executed: an earlier statement in the same Query message failed',
      }),
    );
    expect(events.map((e) => e.statement!.text)).toEqual([
      'select * from customers',
      "update orders set x = 1 /*task='T-7',traceparent='00-ab-cd-01'*/",
      'drop table t',
    ]);
    expect(events.map((e) => e.session.seq)).toEqual([1, 2, 3]);
    expect(events.map((e) => e.statement!.class)).toEqual(['read', 'write', 'ddl']);
    expect(events.map((e) => e.statement!.tables)).toEqual([['customers'], ['orders'], ['t']]);
    expect(events[0]!.result).toMatchObject({ status: 'ok', rows: 3, tag: 'SELECT 3' });
    expect(events[1]!.result).toMatchObject({ status: 'error', sqlstate: '23505' });
    expect(events[1]!.context).toEqual({
      tags: { task: 'T-7', traceparent: '00-ab-cd-01' },
      task: 'T-7',
      traceparent: '00-ab-cd-01',
    });
    expect(events[2]!.result).toMatchObject({
      status: 'error',
      sqlstate: null,
      error: expect.stringMatching(/^not executed/),
    });
    expectCanonicalAndValid(events);
  });

  test('an error after the last statement completed (a failing commit) lands on the last statement', () => {
    const builder = new EventBuilder('redacted', tables);
    const [e] = builder.statementEvents(
      session(),
      record({
        text: 'insert into t values (1)',
        results: [
          ok('INSERT 0 1', 1),
          { ...ok('', null), status: 'error', tag: null, sqlstate: '23505', error: 'dup' },
        ],
      }),
    );
    expect(e!.result).toMatchObject({ status: 'error', tag: 'INSERT 0 1', rows: 1, sqlstate: '23505', error: 'dup' });
  });

  test('parameters per mode: none, redacted (sizes only), full (text as text, binary as hex)', () => {
    const params = {
      lengths: [5, -1, 4],
      formats: [0, 0, 1],
      values: [Buffer.from('hello'), null, Buffer.from([0, 0, 0, 42])],
    };
    const execute = record({
      kind: 'execute',
      text: 'select $1, $2, $3',
      params,
      preparedName: 's1',
      results: [ok('SELECT 1', 1)],
    });
    const [none] = new EventBuilder('none', tables).statementEvents(session(), execute);
    const [redacted] = new EventBuilder('redacted', tables).statementEvents(session(), execute);
    const [full] = new EventBuilder('full', tables).statementEvents(session(), execute);
    expect(none!.statement).toMatchObject({
      params: null,
      paramsMode: 'none',
      protocol: 'extended',
      preparedName: 's1',
    });
    expect(redacted!.statement!.params).toEqual(['<redacted 5 bytes>', null, '<redacted 4 bytes>']);
    expect(full!.statement!.params).toEqual(['hello', null, '\\x0000002a']);
    expectCanonicalAndValid([none!, redacted!, full!]);
  });

  test('an empty Query is still one event; a statement with no result is unknown', () => {
    const builder = new EventBuilder('redacted', tables);
    const [empty] = builder.statementEvents(
      session(),
      record({ text: '  ', results: [{ ...ok('', null), tag: null }] }),
    );
    expect(empty!.statement).toMatchObject({ text: '  ', command: null, class: 'misc' });
    const [lost] = builder.statementEvents(session(), record({ kind: 'execute', text: 'select pg_sleep(5)' }));
    expect(lost!.result).toMatchObject({ status: 'unknown', error: 'no result was seen for this statement' });
    expectCanonicalAndValid([empty!, lost!]);
  });

  test('COPY and FunctionCall set the protocol; session events carry how the session went', () => {
    const builder = new EventBuilder('redacted', tables);
    const s = session();
    const [copy] = builder.statementEvents(
      s,
      record({ text: 'copy t from stdin', results: [{ ...ok('COPY 2', 2), copy: true }] }),
    );
    const [call] = builder.statementEvents(
      s,
      record({ kind: 'function', text: 'FunctionCall(oid=1397)', results: [ok('', null)] }),
    );
    const start = builder.sessionEvent(s, 'session.start', Date.now(), { ok: true });
    const end = builder.sessionEvent(s, 'session.end', Date.now(), { ok: false, sqlstate: '08006', error: 'gone' });
    expect(copy!.statement).toMatchObject({ protocol: 'copy', command: 'COPY', class: 'write' });
    expect(call!.statement).toMatchObject({ protocol: 'function', tables: null });
    expect(start).toMatchObject({ type: 'session.start', statement: null, result: { status: 'ok' } });
    expect(end.result).toMatchObject({ status: 'error', sqlstate: '08006', error: 'gone' });
    expect([copy!, call!, start, end].map((e) => e.session.seq)).toEqual([1, 2, 3, 4]);
    expectCanonicalAndValid([copy!, call!, start, end]);
  });

  test('results that disagree with the split: one flagged event per result, never merged', () => {
    const b = new EventBuilder('redacted', tables);
    const attack = "select 'a\\''; delete from customers where id = 20; --'";
    // Split under standard strings (one statement), but Postgres ran two.
    const events = b.statementEvents(
      session(),
      record({ text: attack, results: [ok('SELECT 1', 1), ok('DELETE 1', 1)] }),
    );
    expect(
      events.map((e) => [e.statement?.text, e.statement?.command, e.statement?.class, e.statement?.splitMismatch]),
    ).toEqual([
      [attack, 'SELECT', 'read', true],
      [attack, 'DELETE', 'write', true],
    ]);
    expectCanonicalAndValid(events);
    // Split with the setting Postgres reported: two statements, no mismatch.
    const right = b.statementEvents(
      session(),
      record({ text: attack, scanFlags: SCS_OFF, results: [ok('SELECT 1', 1), ok('DELETE 1', 1)] }),
    );
    expect(right.map((e) => [e.statement?.text, e.statement?.tables, 'splitMismatch' in e.statement!])).toEqual([
      ["select 'a\\''", [], false],
      ['delete from customers where id = 20', ['customers'], false],
    ]);
  });

  test('splitMismatch: fewer results though none failed, more beyond one late error', () => {
    const failed: ResultRecord = { ...ok('', null), status: 'error', tag: null, sqlstate: '23505' };
    expect(splitMismatch(2, [ok('SELECT 1', 1)])).toBe(true);
    expect(splitMismatch(2, [failed])).toBe(false); // stopped at the error
    expect(splitMismatch(1, [ok('SELECT 1', 1), failed])).toBe(false); // the implicit commit failed
    expect(splitMismatch(1, [ok('SELECT 1', 1), ok('DELETE 1', 1)])).toBe(true);
    expect(splitMismatch(2, [ok('SELECT 1', 1), ok('SELECT 1', 1)])).toBe(false);
  });

  test('textRaw carries the exact bytes of a text that does not convert exactly', () => {
    const bytes = Buffer.from([0x73, 0x65, 0x6c, 0x65, 0x63, 0x74, 0x20, 0x27, 0x83, 0x5c, 0x27]); // select 'ソ' in SJIS
    const events = new EventBuilder('redacted', null).statementEvents(
      session(),
      record({
        text: "select '\ufffd'",
        raw: { bytes, encoding: 'SHIFT_JIS_2004', bytewise: false },
        results: [ok('SELECT 1', 1)],
      }),
    );
    expect(events[0]!.statement).toMatchObject({
      text: "select '\ufffd'",
      textRaw: { base64: bytes.toString('base64'), encoding: 'SHIFT_JIS_2004' },
    });
    expectCanonicalAndValid(events);
  });

  test('SQL EXECUTE takes its command and class from what ran (its tag)', () => {
    const events = new EventBuilder('redacted', null).statementEvents(
      session(),
      record({ text: 'execute del(7); execute pending', results: [ok('DELETE 1', 1), ok('SELECT 0', 0)] }),
    );
    expect(events.map((e) => [e.statement?.command, e.statement?.class])).toEqual([
      ['DELETE', 'write'],
      ['SELECT', 'read'],
    ]);
  });

  test('the approval a statement ran under names who asked for it and who approved it', () => {
    const b = new EventBuilder('none', tables);
    const approval = {
      name: 'migrate-1',
      approvedBy: 'bob',
      reason: 'add a column',
      ticket: 'CHG-7',
      expiresAt: '2026-12-06T16:00:00.000Z',
    };
    const decision = (a: typeof approval & { requestedBy?: string }) => [
      { allow: true, rule: 'gate', approval: a, message: null, hint: null },
    ];
    const [asked] = b.statementEvents(
      session(),
      record({
        text: 'alter table t add c int',
        results: [ok('ALTER TABLE', null)],
        authz: decision({ ...approval, requestedBy: 'alice' }),
      }),
    );
    const [unknown] = b.statementEvents(
      session(),
      record({ text: 'alter table t add d int', results: [ok('ALTER TABLE', null)], authz: decision(approval) }),
    );
    expect(asked!.authz?.approval).toEqual({ ...approval, requestedBy: 'alice' });
    // Unknown (an older collector): omitted, not null, so such events keep the bytes they had.
    expect(unknown!.authz?.approval).toEqual(approval);
    expect(JSON.stringify(unknown!.authz?.approval)).not.toContain('requestedBy');
    expectCanonicalAndValid([asked!, unknown!]);
  });

  test('tables are remembered by exact text and scan setting, never across settings', () => {
    const b = new EventBuilder('redacted', tables);
    // One string under standard_conforming_strings off; a string, a subquery and a comment when on.
    const text = "select 'x\\' , (select 1 from t2) as y from t1 --'";
    const run = (scanFlags: number) =>
      b.statementEvents(session(), record({ text, scanFlags, results: [ok('SELECT 1', 1)] }))[0]!.statement!.tables;
    expect(run(0)).toEqual(['t2', 't1']);
    expect(run(SCS_OFF)).toEqual([]);
    expect(run(0)).toEqual(['t2', 't1']);
    expect(run(SCS_OFF)).toEqual([]);
  });
});
