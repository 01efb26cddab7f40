/**
 * The tracker on its own: hand-built frontend and backend messages, no sockets. The same
 * conversations against real Postgres are in test/differential.
 */

import iconv from 'iconv-lite';
import { describe, expect, test } from 'vitest';
import {
  bind,
  close,
  copyData,
  copyDone,
  execute,
  message,
  parse,
  query,
  sync,
} from '../../test-support/frontend-messages.js';
import { MessageReader, Verdict } from '../protocol/frame-reader.js';
import { ProtocolError } from '../protocol/messages.js';
import { SCAN_DEFAULT, SCS_OFF } from '../sql/tokenizer.js';
import type { StatementRecord } from './records.js';
import { NOT_EXECUTED_PIPELINE, NOT_EXECUTED_QUERY, StatementTracker } from './statement-tracker.js';

const cstr = (s: string) => Buffer.from(`${s}\0`);
const B = {
  parseComplete: () => message('1'),
  bindComplete: () => message('2'),
  closeComplete: () => message('3'),
  row: () => message('D', Buffer.from([0, 1, 0, 0, 0, 1, 0x31])),
  rowDescription: () => message('T', Buffer.from([0, 0])),
  complete: (tag: string) => message('C', cstr(tag)),
  suspended: () => message('s'),
  ready: (status = 'I') => message('Z', Buffer.from(status)),
  copyIn: () => message('G', Buffer.from([0, 0, 0])),
  status: (name: string, value: string) => message('S', cstr(name), cstr(value)),
  error: (code: string, text: string) =>
    message('E', cstr(`SERROR`), cstr(`C${code}`), cstr(`M${text}`), Buffer.from([0])),
};

function harness() {
  const begun: StatementRecord[] = [];
  const finished: StatementRecord[] = [];
  const problems: string[] = [];
  const tracker = new StatementTracker(
    { begin: (r) => begun.push(r), finish: (r) => finished.push(r) },
    { captureParamValues: true },
  );
  const sink = { push() {} };
  const frontend = new MessageReader(
    {
      onMessage: (t, b, s, e) => {
        tracker.onFrontend(t, b, s, e);
        return Verdict.forward;
      },
      onStreamed() {},
      onFramingError: (r) => problems.push(r),
    },
    sink,
    1 << 20,
    { streamedTypes: 'd' },
  );
  const backend = new MessageReader(
    {
      onMessage: (t, b, s, e) => {
        const problem = tracker.onBackend(t, b, s, e);
        if (problem) problems.push(problem);
        return Verdict.forward;
      },
      onStreamed: (t) => tracker.onBackendStreamed(t),
      onFramingError: (r) => problems.push(r),
    },
    sink,
    1 << 20,
    { streamedTypes: 'Dd' },
  );
  return {
    tracker,
    begun,
    finished,
    problems,
    client: (...m: Buffer[]) => frontend.push(Buffer.concat(m)),
    server: (...m: Buffer[]) => backend.push(Buffer.concat(m)),
  };
}

const summary = (r: StatementRecord) => ({
  text: r.text,
  results: r.results.map((x) => [x.status, x.tag, x.rows, x.sqlstate]),
  notExecuted: r.notExecuted,
});

describe('StatementTracker', () => {
  test('a simple Query: rows counted from DataRows, tag and rows from CommandComplete', () => {
    const h = harness();
    h.client(query('select 1 union all select 1'));
    expect(h.begun).toHaveLength(1); // begun before anything came back
    expect(h.finished).toHaveLength(0);
    h.server(B.rowDescription(), B.row(), B.row(), B.complete('SELECT 2'), B.ready());
    expect(h.finished.map(summary)).toEqual([
      { text: 'select 1 union all select 1', results: [['ok', 'SELECT 2', 2, null]], notExecuted: null },
    ]);
    expect(h.problems).toEqual([]);
  });

  test('several statements in one Query: results in order, the rest not executed after an error', () => {
    const h = harness();
    h.client(query('begin; select 1/0; select 2'));
    h.server(B.complete('BEGIN'), B.error('22012', 'division by zero'), B.ready('E'));
    expect(h.finished.map(summary)).toEqual([
      {
        text: 'begin; select 1/0; select 2',
        results: [
          ['ok', 'BEGIN', null, null],
          ['error', null, null, '22012'],
        ],
        notExecuted: NOT_EXECUTED_QUERY,
      },
    ]);
    expect(h.tracker.transactionStatus).toBe('E');
  });

  test('a pipeline: an Execute fails, Postgres skips to Sync, the next Execute is not executed', () => {
    const h = harness();
    h.client(
      parse('', 'select $1::int'),
      bind('', '', ['1']),
      execute(''),
      parse('', 'select 1/$1::int'),
      bind('', '', ['0']),
      execute(''),
      parse('', 'select 3'),
      bind('', ''),
      execute(''),
      sync(),
    );
    h.server(B.parseComplete(), B.bindComplete(), B.row(), B.complete('SELECT 1'));
    h.server(B.parseComplete(), B.bindComplete(), B.error('22012', 'division by zero'), B.ready());
    expect(h.finished.map(summary)).toEqual([
      { text: 'select $1::int', results: [['ok', 'SELECT 1', 1, null]], notExecuted: null },
      { text: 'select 1/$1::int', results: [['error', null, null, '22012']], notExecuted: null },
      { text: 'select 3', results: [], notExecuted: NOT_EXECUTED_PIPELINE },
    ]);
    expect(h.finished[0]!.params?.values?.map((v) => v?.toString())).toEqual(['1']);
    expect(h.problems).toEqual([]);
  });

  test('a failed Parse hands its error to the Execute that needed it, even one sent after the error', () => {
    const h = harness();
    h.client(parse('', 'selec 1'), bind('', ''));
    h.server(B.error('42601', 'syntax error at or near "selec"'));
    h.client(execute(''), sync());
    h.server(B.ready());
    expect(h.finished.map(summary)).toEqual([
      { text: 'selec 1', results: [['error', null, null, '42601']], notExecuted: null },
    ]);
  });

  test('a failed redefinition of a named statement is undone: the name keeps its first text', () => {
    const h = harness();
    h.client(parse('s1', 'select 1'), sync());
    h.server(B.parseComplete(), B.ready());
    h.client(parse('s1', 'select 2'), sync());
    h.server(B.error('42P05', 'prepared statement "s1" already exists'), B.ready());
    h.client(bind('', 's1'), execute(''), sync());
    h.server(B.bindComplete(), B.row(), B.complete('SELECT 1'), B.ready());
    expect(h.finished.map((r) => [r.text, r.preparedName])).toEqual([['select 1', 's1']]);
  });

  test('Execute with a row limit: PortalSuspended ends each Execute with the rows it returned', () => {
    const h = harness();
    h.client(
      parse('', 'select g from generate_series(1,3) g'),
      bind('p', ''),
      execute('p', 2),
      execute('p', 2),
      sync(),
    );
    h.server(
      B.parseComplete(),
      B.bindComplete(),
      B.row(),
      B.row(),
      B.suspended(),
      B.row(),
      B.complete('SELECT 1'),
      B.ready(),
    );
    expect(h.finished.map((r) => r.results.map((x) => [x.tag, x.rows]))).toEqual([[[null, 2]], [['SELECT 1', 1]]]);
  });

  test('a Sync sent while COPY FROM STDIN runs is ignored, as Postgres ignores it', () => {
    const h = harness();
    h.client(parse('', 'copy t from stdin'), bind('', ''), execute(''), sync());
    h.server(B.parseComplete(), B.bindComplete(), B.copyIn());
    h.client(copyData('1\n'), copyDone(), sync());
    h.server(B.complete('COPY 1'), B.ready());
    h.client(query('select 1'));
    h.server(B.rowDescription(), B.row(), B.complete('SELECT 1'), B.ready());
    expect(h.finished.map((r) => [r.text, r.results[0]?.tag, r.results[0]?.copy])).toEqual([
      ['copy t from stdin', 'COPY 1', true],
      ['select 1', 'SELECT 1', false],
    ]);
    expect(h.problems).toEqual([]);
  });

  test('Close drops the statement: a later Bind to it finds nothing to name', () => {
    const h = harness();
    h.client(parse('s', 'select 1'), close('S', 's'), bind('', 's'), execute(''), sync());
    h.server(
      B.parseComplete(),
      B.closeComplete(),
      B.error('26000', 'prepared statement "s" does not exist'),
      B.ready(),
    );
    expect(h.finished.map(summary)).toEqual([
      { text: '', results: [['error', null, null, '26000']], notExecuted: null },
    ]);
  });

  test('closing the connection ends what had no answer as unknown; unsent records as not executed', () => {
    const h = harness();
    h.client(query('select pg_sleep(10)'));
    h.client(query('select 2'));
    h.tracker.abandonFrom(2, 'not executed: never sent');
    h.tracker.close();
    expect(h.finished.map((r) => [r.results.map((x) => x.status), r.notExecuted])).toEqual([
      [['unknown'], null],
      [[], 'not executed: never sent'],
    ]);
  });

  test('an unknown frontend message type is a protocol error naming the type', () => {
    const h = harness();
    expect(() => h.client(message('Y'))).toThrow(ProtocolError);
    expect(() => harness().client(message('Y'))).toThrow(/invalid frontend message type 89 \('Y'\)/);
  });

  test('standard_conforming_strings from ParameterStatus: stamped on records, queued Queries restamped', () => {
    const h = harness();
    h.client(query('select 1'));
    expect(h.begun[0]!.scanFlags).toBe(SCAN_DEFAULT);
    h.server(B.complete('SELECT 1'), B.ready());
    h.client(query('set standard_conforming_strings = off'), query("select 'a\\''"));
    // The second Query was read before Postgres reported the change made by the first.
    expect(h.begun[2]!.scanFlags).toBe(SCAN_DEFAULT);
    h.server(B.complete('SET'), B.status('standard_conforming_strings', 'off'), B.ready());
    expect(h.begun[2]!.scanFlags).toBe(SCS_OFF);
    h.server(B.complete('SELECT 1'), B.ready());
    h.client(query('select 3'));
    expect(h.begun[3]!.scanFlags).toBe(SCS_OFF);
    h.server(B.complete('SELECT 1'), B.status('standard_conforming_strings', 'on'), B.ready());
    h.client(query('select 4'));
    expect(h.begun[4]!.scanFlags).toBe(SCAN_DEFAULT);
  });

  test('client_encoding: texts decoded with it, and queued Queries decoded again when it changes', () => {
    const sjisQuery = (s: string) => message('Q', iconv.encode(s, 'shift_jis'), Buffer.from([0]));
    const h = harness();
    h.client(query("set client_encoding = 'SJIS'"), sjisQuery("select 'ソ'"));
    expect(h.begun[1]!.text).not.toBe("select 'ソ'");
    h.server(B.complete('SET'), B.status('client_encoding', 'SJIS'), B.ready());
    expect(h.begun[1]!.text).toBe("select 'ソ'");
    h.client(sjisQuery("select '表'"));
    expect(h.begun[2]).toMatchObject({ text: "select '表'", raw: null });
    // Without an exact conversion the bytes are kept.
    h.server(B.complete('SELECT 1'), B.ready(), B.complete('SELECT 1'), B.ready());
    h.server(B.status('client_encoding', 'SHIFT_JIS_2004'));
    h.client(sjisQuery("select '表'"));
    expect(h.begun[3]!.raw).toMatchObject({ encoding: 'SHIFT_JIS_2004', bytewise: false });
    expect(h.begun[3]!.raw!.bytes.equals(iconv.encode("select '表'", 'shift_jis'))).toBe(true);
  });

  test('SQL PREPARE, DEALLOCATE and DISCARD ALL act on the names Bind uses', () => {
    const h = harness();
    h.client(parse('q', 'select 1'), sync());
    h.server(B.parseComplete(), B.ready());
    h.client(query('deallocate q; prepare Q (int) as delete from t where id = $1'));
    h.server(B.complete('DEALLOCATE'), B.complete('PREPARE'), B.ready());
    h.client(bind('', 'q', ['7']), execute(''), sync());
    h.server(B.bindComplete(), B.complete('DELETE 1'), B.ready());
    h.client(query('discard all'));
    h.server(B.complete('DISCARD ALL'), B.ready());
    h.client(bind('', 'q', ['8']), execute(''), sync());
    h.server(B.error('26000', 'prepared statement "q" does not exist'), B.ready());
    const executes = h.finished.filter((r) => r.kind === 'execute');
    expect(executes.map((r) => [r.text, r.preparedName, r.results[0]?.status])).toEqual([
      ['delete from t where id = $1', 'q', 'ok'],
      ['', null, 'error'],
    ]);
  });

  test('SQL PREPARE in other encodings: names keyed as Bind sends them, bodies read from the bytes', () => {
    const sjis = (s: string) => iconv.encode(s, 'shift_jis');
    const sjisQuery = (s: string) => message('Q', sjis(s), Buffer.from([0]));
    // Bind: portal '', statement name (NUL-terminated), no formats, no parameters, no result formats.
    const bindSjis = (name: string) => message('B', Buffer.from([0]), sjis(name), Buffer.alloc(7));
    for (const server of ['UTF8', 'SQL_ASCII']) {
      const h = harness();
      // With a SQL_ASCII server Postgres scans SJIS bytes unconverted: the sidecar keeps and scans bytes.
      h.server(B.status('server_encoding', server), B.status('client_encoding', 'SJIS'));
      h.client(sjisQuery('prepare "表" /* ソ */ as select \'ソ\''));
      expect(h.begun[0]!.raw?.bytewise ?? false).toBe(server === 'SQL_ASCII');
      h.server(B.complete('PREPARE'), B.ready());
      h.client(bindSjis('表'), execute(''), sync());
      h.server(B.bindComplete(), B.complete('SELECT 1'), B.ready());
      expect(h.finished[1]!.text).toBe("select 'ソ'");
    }
  });
});
