import { canonicalJson, chainHash } from '@byline/api';
import { describe, expect, test } from 'vitest';
import { ndjson, SampleStream } from '../sample-events.js';
import { parseBatch } from './parse-batch.js';

const writer = { name: 'billing-agent', kind: 'agent', source: 'static' } as const;
const bytes = (text: string) => new TextEncoder().encode(text);

function batch(n = 3, approval: string | null = null) {
  return new SampleStream({ approval, sessionLength: 5 }).take(n);
}

describe('parseBatch', () => {
  test('accepts canonical, hashed events of the writer and keeps each line verbatim', () => {
    const events = batch(4, 'month-end-close');
    const parsed = parseBatch(bytes(ndjson(events)), writer, 100);
    if (!parsed.ok) throw new Error(parsed.error);
    expect(parsed.events.map((e) => e.json)).toEqual(events.map((e) => e.json));
    const statement = parsed.events[1]!;
    expect(statement).toMatchObject({
      id: events[1]!.event.id,
      type: 'statement',
      identity: 'billing-agent',
      route: 'orders-db',
      database: 'orders',
      stream: events[1]!.event.chain.stream,
      seq: 2,
      prev: events[0]!.event.chain.hash,
      hash: events[1]!.event.chain.hash,
      approval: 'month-end-close',
      tables: ['customers'],
      sessionSeq: 1,
      timeUs: Date.parse(events[1]!.event.time) * 1000,
    });
    expect(parsed.events[0]!.approval).toBeNull();
  });

  test('a last line without its newline is fine; repeated table names are kept once', () => {
    const s = new SampleStream();
    s.take(1);
    const e = s.writer.append({ ...s.nextEvent() });
    const parsed = parseBatch(bytes(e.json), writer, 10);
    expect(parsed.ok).toBe(true);
  });

  test.each<[string, (lines: string[]) => string[], number, RegExp]>([
    ['malformed JSON names the line', (l) => [l[0]!, '{"v":1,', l[2]!], 400, /line 2: not valid JSON/],
    ['an empty line in the middle', (l) => [l[0]!, '', l[1]!], 400, /line 2: empty line/],
    [
      'a schema violation names line and field',
      (l) => [l[0]!, l[1]!.replace('"status":"ok"', '"status":"fine"')],
      400,
      /line 2: result\.status: expected one of "ok", "error"/,
    ],
    [
      'a missing field names it',
      (l) => [l[0]!.replace(/"v":1/, '"w":1')],
      400,
      /line 1: .*v: required field is missing/,
    ],
    [
      'non-canonical text (white space)',
      (l) => [l[0]!.replace('{"authz"', '{ "authz"')],
      400,
      /line 1: not in canonical JSON form/,
    ],
    [
      'an altered statement keeps its old hash',
      (l) => [l[0]!, l[1]!.replace('"rows":1', '"rows":0')],
      400,
      /line 2: chain\.hash does not match the event's content \(event [0-9a-f-]+ was altered/,
    ],
  ])('%s', (_name, edit, status, message) => {
    const lines = ndjson(batch(3)).trimEnd().split('\n');
    const parsed = parseBatch(bytes(edit(lines).join('\n')), writer, 100);
    expect(parsed.ok).toBe(false);
    if (parsed.ok) return;
    expect(parsed.status).toBe(status);
    expect(parsed.error).toMatch(/^batch refused, nothing stored: /);
    expect(parsed.error).toMatch(message);
  });

  test('duplicate keys cannot smuggle a second reading of an event', () => {
    const [e] = batch(1);
    const text = e!.json.replace('{"authz"', '{"type":"session.end","authz"');
    const parsed = parseBatch(bytes(text), writer, 10);
    expect(parsed.ok || parsed.error).toMatch(/not in canonical JSON form/);
  });

  test('spool.damaged and spool.deadLettered events carry their incident; no other event carries one', () => {
    const s = new SampleStream();
    const damage = {
      end: 120,
      kind: 'spool.damaged' as const,
      quarantine: null,
      segment: 'segment-000000000001.log',
      seqAfter: 3,
      seqBefore: 5,
      start: 80,
    };
    const base = s.nextEvent();
    const good = s.writer.append({ ...base, type: 'spool.damaged', statement: null, incident: damage });
    const parsed = parseBatch(bytes(`${good.json}\n`), writer, 10);
    expect(parsed.ok || parsed.error).toBe(true);
    if (parsed.ok) expect(parsed.events[0]!.type).toBe('spool.damaged');

    const bare = s.writer.append({ ...s.nextEvent(), type: 'spool.damaged', statement: null });
    expect(parseBatch(bytes(bare.json), writer, 10)).toMatchObject({
      ok: false,
      status: 400,
      error: expect.stringContaining('a "spool.damaged" event needs its incident'),
    });
    const smuggled = s.writer.append({ ...s.nextEvent(), incident: damage });
    expect(parseBatch(bytes(smuggled.json), writer, 10)).toMatchObject({
      ok: false,
      status: 400,
      error: expect.stringContaining('only a "spool.damaged" event may carry it'),
    });
  });

  test('an event written for another identity is refused with 403', () => {
    const mine = batch(1);
    const theirs = new SampleStream({ identity: 'someone-else' }).take(1);
    const parsed = parseBatch(bytes(ndjson([...mine, ...theirs])), writer, 10);
    expect(parsed).toMatchObject({ ok: false, status: 403 });
    if (parsed.ok) return;
    expect(parsed.error).toContain(
      'line 2: identity.name is "someone-else", but this token writes only for "billing-agent"',
    );
    expect(parsed.problems).toEqual([expect.objectContaining({ line: 2, reason: 'identity' })]);
  });

  test('identity fields the authenticator vouches for must match too', () => {
    const parsed = parseBatch(bytes(ndjson(batch(1))), { ...writer, namespace: 'payments' }, 10);
    expect(parsed.ok || parsed.error).toContain('identity.namespace is null, but this token stands for "payments"');
  });

  test('too many events is 413; an empty body and bad UTF-8 are 400', () => {
    expect(parseBatch(bytes(ndjson(batch(3))), writer, 2)).toMatchObject({ ok: false, status: 413 });
    expect(parseBatch(bytes(''), writer, 2)).toMatchObject({ ok: false, status: 400 });
    expect(parseBatch(new Uint8Array([0x7b, 0xff, 0x7d]), writer, 2)).toMatchObject({
      ok: false,
      status: 400,
      error: expect.stringContaining('not valid UTF-8'),
    });
  });

  test('problems on several lines are all listed, up to a limit', () => {
    const lines = Array.from({ length: 30 }, () => 'nope');
    const parsed = parseBatch(bytes(lines.join('\n')), writer, 100);
    if (parsed.ok) throw new Error('accepted garbage');
    expect(parsed.problems).toHaveLength(20);
    expect(parsed.error).toContain('(and 19 more problems)');
  });

  test('the hash check is the real chain hash', () => {
    const [e] = batch(1);
    expect(chainHash(e!.event)).toBe(e!.event.chain.hash);
    expect(canonicalJson(e!.event)).toBe(e!.json);
  });
});
