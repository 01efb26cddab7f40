import { describe, expect, test } from 'vitest';
import type { AuditEvent, UnchainedEvent } from './audit-event.js';
import { AuditEventSchema } from './audit-event.js';
import { canonicalJson } from './canonical-json.js';
import { ChainWriter, chainHash, verifyStream } from './chain.js';
import { uuidv7 } from './uuid.js';
import { isValid } from './validate.js';

function event(text: string, tags: Record<string, string> = {}): UnchainedEvent {
  return {
    v: 1,
    id: uuidv7(),
    type: 'statement',
    time: '2026-11-27T10:00:00.000Z',
    identity: { name: 'a', kind: 'agent', namespace: null, serviceAccount: null, pod: null, source: 'static' },
    session: { id: 's1', seq: 1, client: null, applicationName: null, dbUser: 'u' },
    target: { route: 'r', host: 'h', port: 5432, database: 'd' },
    statement: {
      text,
      protocol: 'simple',
      params: null,
      paramsMode: 'redacted',
      command: 'SELECT',
      class: 'read',
      tables: [],
      preparedName: null,
    },
    result: { status: 'ok', tag: 'SELECT 1', rows: 1, sqlstate: null, error: null, durationUs: 5 },
    authz: { decision: 'allow', rule: null, approval: null },
    context: { task: null, traceparent: null, tags },
  };
}

describe('ChainWriter', () => {
  const writer = new ChainWriter('stream-1');
  const chained = ['select 1', 'select "chain":{ from t', 'é ☃'].map((t, i) =>
    writer.append(event(t, { z: String(i), a: 'x' })),
  );
  const events = chained.map((c) => c.event);

  test('links events: seq from 1, prev is the previous hash, hash is over the canonical form without it', () => {
    expect(events.map((e) => e.chain.seq)).toEqual([1, 2, 3]);
    expect(events[0]!.chain.prev).toBeNull();
    expect(events[1]!.chain.prev).toBe(events[0]!.chain.hash);
    for (const e of events) expect(chainHash(e)).toBe(e.chain.hash);
    expect(verifyStream(events)).toBeUndefined();
  });

  test('the JSON line is the canonical form of the event, hash included, and parses back to it', () => {
    for (const c of chained) {
      expect(c.json).toBe(canonicalJson(c.event));
      const parsed = JSON.parse(c.json) as AuditEvent;
      expect(parsed).toEqual(c.event);
      expect(chainHash(parsed)).toBe(parsed.chain.hash);
      expect(isValid(AuditEventSchema, parsed)).toBe(true);
    }
  });

  test('an edit, a removal and a reordering are each detected and named', () => {
    const edited = events.map((e) => structuredClone(e));
    edited[1]!.statement!.text = 'select 2';
    expect(verifyStream(edited)).toMatchObject({ kind: 'edited', event: { id: events[1]!.id } });
    expect(verifyStream([events[0]!, events[2]!])).toMatchObject({ kind: 'gap', expectedSeq: 2 });
    const swapped = [events[0]!, events[2]!, events[1]!];
    expect(verifyStream(swapped)?.kind).toBe('gap');
  });
});

describe('identity.oidc (gateway sessions)', () => {
  const oidc = {
    issuer: 'https://login.example.com',
    subject: 'ada-0001',
    agentIdentity: 'dbas',
    jti: 'j-1',
    sid: null,
  };
  const withOidc = (extra: Record<string, unknown> = {}) => {
    const e = event('select 1');
    return {
      ...e,
      identity: { ...e.identity, kind: 'human', name: 'ada@example.com', source: 'oidc', oidc: { ...oidc, ...extra } },
    };
  };

  test('an event may name the issuer, subject, jti and sid, and still chains', () => {
    const chained = new ChainWriter('s').append(withOidc() as UnchainedEvent).event;
    expect(isValid(AuditEventSchema, chained)).toBe(true);
    expect(verifyStream([chained])).toBeUndefined();
  });

  test('the token itself has no place in an event', () => {
    const chained = new ChainWriter('s').append(withOidc({ token: 'eyJ...' }) as UnchainedEvent).event;
    expect(isValid(AuditEventSchema, chained)).toBe(false);
  });
});
