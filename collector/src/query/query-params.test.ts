import { describe, expect, test } from 'vitest';
import { HttpError } from '../http/respond.js';
import { decodeCursor, encodeCursor } from './cursor.js';
import { DEFAULT_LIMIT, parseEventQuery } from './query-params.js';
import { renderEventPage } from './render.js';

const parse = (q: string) => parseEventQuery(new URLSearchParams(q));

function refusal(q: string): string {
  try {
    parse(q);
  } catch (e) {
    expect(e).toBeInstanceOf(HttpError);
    expect((e as HttpError).status).toBe(400);
    return (e as Error).message;
  }
  throw new Error(`accepted ${q}`);
}

describe('parseEventQuery', () => {
  test('no parameters: everything, the default page', () => {
    expect(parse('')).toEqual({ filter: {}, limit: DEFAULT_LIMIT, after: undefined });
  });

  test('class, status and statement text', () => {
    expect(parse('class=write&status=denied&text=update%20customers').filter).toEqual({
      statementClass: 'write',
      status: 'denied',
      text: 'update customers',
    });
    expect(refusal('class=writes')).toMatch(/class: expected one of read, write, ddl, role, tcl, misc, got "writes"/);
    expect(refusal('status=failed')).toMatch(/status: expected one of ok, error, cancelled, denied, unknown/);
    expect(refusal(`text=${'x'.repeat(1001)}`)).toMatch(/text: at most 1000 characters/);
    expect(refusal('text=')).toMatch(/text: expected a value/);
    expect(refusal('text=a%00b')).toMatch(/text: must not contain a NUL character/);
  });

  test('every filter, times as microseconds, limit and cursor', () => {
    const cursor = encodeCursor({ timeUs: 1_700_000_000_000_123, stream: 's-1', seq: 42, id: 'e' });
    const q = parse(
      'identity=billing-agent&table=public.customers&route=orders-db&database=orders&session=s&approval=CHG-1' +
        `&stream=s-1&type=statement&since=2026-11-27T03:00:00Z&until=2026-11-27T04:00:00.5%2B01:00&limit=5000&cursor=${cursor}`,
    );
    expect(q).toEqual({
      filter: {
        identity: 'billing-agent',
        table: 'public.customers',
        route: 'orders-db',
        database: 'orders',
        session: 's',
        approval: 'CHG-1',
        stream: 's-1',
        type: 'statement',
        sinceUs: Date.UTC(2026, 10, 27, 3) * 1000,
        untilUs: (Date.UTC(2026, 10, 27, 3) + 500) * 1000,
      },
      limit: 5000,
      after: { timeUs: 1_700_000_000_000_123, stream: 's-1', seq: 42, id: 'e' },
    });
  });

  test.each([
    ['identiy=x', /unknown query parameter "identiy" \(known: identity, table/],
    ['route=a&route=b', /route: given more than once/],
    ['route=', /route: expected a value/],
    ['limit=0', /limit: expected an integer from 1 to 5000, got "0"/],
    ['limit=5001', /limit: expected an integer from 1 to 5000/],
    ['limit=1.5', /limit: expected an integer/],
    ['limit=-1', /limit: expected an integer/],
    ['until=2026-11-27', /until: expected an RFC 3339 time/],
    ['cursor=%%%', /cursor: not a cursor this collector handed out/],
    [`cursor=${Buffer.from('[1,"s",2]').toString('base64url')}`, /cursor: not a cursor/],
    [`cursor=${Buffer.from('[1.5,"s",2,"id"]').toString('base64url')}`, /cursor: not a cursor/],
  ])('%s is refused', (q, message) => {
    expect(refusal(q)).toMatch(message);
  });

  test('several problems are reported together', () => {
    expect(refusal('limit=x&since=y')).toMatch(/since: .*; limit: /);
  });
});

describe('cursors', () => {
  test('round trip, and are opaque URL-safe text', () => {
    const key = { timeUs: 1_764_213_507_378_123, stream: 'a/b+c', seq: 9_007_199_254_740_991, id: 'ü' };
    const text = encodeCursor(key);
    expect(text).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeCursor(text)).toEqual(key);
  });
});

describe('renderEventPage', () => {
  test('splices the stored text in unchanged and parses as JSON', () => {
    const stored = '{"b":1,"a":"x\\u0000\\"y"}'; // not even in sorted order: it must come back as is
    const text = renderEventPage(
      [{ key: { timeUs: 1, stream: 's', seq: 1, id: 'i' }, json: stored, receivedAt: '2026-11-27T04:00:00.000Z' }],
      [],
      null,
    );
    expect(text).toBe(
      `{"events":[{"event":${stored},"receivedAt":"2026-11-27T04:00:00.000Z","stream":"s","seq":1}],"markers":[],"nextCursor":null}`,
    );
    expect(JSON.parse(text).events[0].event).toEqual({ b: 1, a: 'x\u0000"y' });
  });
});
