import { createHash } from 'node:crypto';
import { AuditEventSchema, ChainWriter, isValid, MAX_EVENT_BYTES, type UnchainedEvent } from '@byline/api';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { boundEvent, jsonStringBytes, prefixLength } from './truncate.js';

function event(text: string): UnchainedEvent {
  return {
    authz: { approval: null, decision: 'allow', rule: null },
    context: { tags: {}, task: null, traceparent: null },
    id: '01939a6e-1d2b-7c3d-8e4f-0123456789ab',
    identity: { kind: 'agent', name: 'a', namespace: null, pod: null, serviceAccount: null, source: 'static' },
    result: { durationUs: 1, error: null, rows: 1, sqlstate: null, status: 'ok', tag: 'SELECT 1' },
    session: { applicationName: null, client: null, dbUser: null, id: 's', seq: 1 },
    statement: {
      class: 'read',
      command: 'SELECT',
      params: null,
      paramsMode: 'full',
      preparedName: null,
      protocol: 'simple',
      tables: [],
      text,
    },
    target: { database: 'db', host: 'h', port: 5432, route: 'r' },
    time: '2026-12-06T12:00:00.000Z',
    type: 'statement',
    v: 1,
  };
}

const chained = (e: UnchainedEvent) => new ChainWriter('s').appendCanonical(e);
const sha = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');

describe('prefixLength / jsonStringBytes', () => {
  test('agree with JSON.stringify on any string, and never split a surrogate pair', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 200 }), fc.integer({ min: 2, max: 400 }), (s, budget) => {
        expect(jsonStringBytes(s)).toBe(Buffer.byteLength(JSON.stringify(s)));
        const n = prefixLength(s, budget);
        expect(Buffer.byteLength(JSON.stringify(s.slice(0, n)))).toBeLessThanOrEqual(budget);
        if (n < s.length) expect(Buffer.byteLength(JSON.stringify(s.slice(0, n + 1)))).toBeGreaterThan(budget);
        const c = s.charCodeAt(n - 1);
        if (n > 0 && n < s.length && c >= 0xd800 && c <= 0xdbff) {
          expect(s.charCodeAt(n)).not.toSatisfy((d: number) => d >= 0xdc00 && d <= 0xdfff);
        }
      }),
    );
  });
});

describe('boundEvent', () => {
  test('an ordinary event is left exactly as it was', () => {
    const e = event('select 1');
    const before = JSON.stringify(e);
    expect(boundEvent(e)).toBe(e);
    expect(JSON.stringify(e)).toBe(before);
    expect(e.statement!.truncated).toBeUndefined();
  });

  test('a 9 MiB statement is cut to a prefix, with its original length and SHA-256 recorded', () => {
    const text = `select '${'x'.repeat(9 * 1024 * 1024)}'`;
    const e = boundEvent(event(text));
    const { json, event: out } = chained(e);
    expect(Buffer.byteLength(json)).toBeLessThanOrEqual(MAX_EVENT_BYTES);
    expect(isValid(AuditEventSchema, JSON.parse(json))).toBe(true);
    expect(text.startsWith(out.statement!.text)).toBe(true);
    expect(out.statement!.text.length).toBeGreaterThan(300 * 1024);
    expect(out.statement!.truncated).toEqual({
      others: [],
      params: null,
      text: { bytes: text.length, sha256: sha(text) },
    });
  });

  test('huge parameters are cut each to a fair share and hashed; more than 500 are dropped and counted', () => {
    const big = 'é'.repeat(3 * 1024 * 1024);
    const e = event('insert into t values ($1, $2, $3)');
    e.statement!.params = ['small', big, null];
    const out = chained(boundEvent(e));
    const t = out.event.statement!.truncated!;
    expect(out.event.statement!.params![0]).toBe('small');
    expect(out.event.statement!.params![2]).toBeNull();
    expect(t.params).toEqual([{ bytes: Buffer.byteLength(big), index: 1, sha256: sha(big) }]);
    expect(Buffer.byteLength(out.json)).toBeLessThanOrEqual(MAX_EVENT_BYTES);

    const many = event('select');
    many.statement!.params = Array.from({ length: 65535 }, () => '<redacted 1 bytes>');
    const m = chained(boundEvent(many)).event.statement!;
    expect(m.params).toHaveLength(500);
    expect(m.truncated!.others).toEqual(['statement.params: 500 of 65535 kept']);
  });

  test('the worst a hostile client can build still fits in MAX_EVENT_BYTES and passes the schema', () => {
    // Control characters cost 6 bytes each in JSON: the most expensive text there is.
    const nasty = (n: number) => '\u0001'.repeat(n);
    const e = event(nasty(8 * 1024 * 1024));
    e.statement!.params = Array.from({ length: 2000 }, () => nasty(100_000));
    e.statement!.tables = Array.from({ length: 100_000 }, (_, i) => `"${nasty(60)}${i}"`);
    e.statement!.preparedName = nasty(1_000_000);
    e.session.applicationName = nasty(1_000_000);
    e.result!.error = nasty(1_000_000);
    e.context = {
      task: nasty(1_000_000),
      traceparent: nasty(1_000_000),
      tags: Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`k${String(i).padStart(5, '0')}`, nasty(1000)])),
    };
    const { json } = chained(boundEvent(e));
    expect(Buffer.byteLength(json)).toBeLessThanOrEqual(MAX_EVENT_BYTES);
    const parsed = JSON.parse(json);
    expect(isValid(AuditEventSchema, parsed)).toBe(true);
    expect(parsed.statement.truncated.others).toEqual([
      'statement.params: 500 of 2000 kept',
      expect.stringMatching(/^statement\.tables: \d+ of 100000 kept$/),
      'statement.preparedName: 1000000 bytes cut to a prefix',
      'session.applicationName: 1000000 bytes cut to a prefix',
      'result.error: 1000000 bytes cut to a prefix',
      'context.task: 1000000 bytes cut to a prefix',
      'context.traceparent: 1000000 bytes cut to a prefix',
      expect.stringMatching(/^context\.tags: \d+ of 5000 kept$/),
    ]);
  });
});
