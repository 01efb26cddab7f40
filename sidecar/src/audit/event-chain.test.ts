import { type AuditEvent, ChainWriter, canonicalJson, type UnchainedEvent, verifyStream } from '@byline/api';
import { beforeAll, describe, expect, test } from 'vitest';
import type { AuthzDecision } from '../capture/records.js';
import { TableExtractor } from '../sql/tables.js';
import { SCS_OFF } from '../sql/tokenizer.js';
import { EventBuilder, type SessionInfo } from './event-builder.js';
import { EventChain } from './event-chain.js';
import { incidentEvent } from './incident-event.js';
import { ok, record } from './record-fixtures.js';

let tables: TableExtractor;
beforeAll(async () => {
  tables = await TableExtractor.create();
});

const session = (): SessionInfo => ({
  id: 'session-"1"',
  identity: {
    kind: 'agent',
    name: 'bill\u00e9ng\n',
    namespace: 'ns',
    pod: null,
    serviceAccount: 'sa',
    source: 'static',
  },
  target: { database: 'orders', host: 'db', port: 5432, route: 'orders-db' },
  client: '127.0.0.1:5000',
  dbUser: 'app',
  applicationName: 'app \u2028 \ud800',
  nextSeq: 0,
});

const deny: AuthzDecision = {
  allow: false,
  rule: 'guardrail: table "payroll"',
  approval: null,
  message: 'byline: denied',
  hint: 'ask',
};
const approved: AuthzDecision = {
  allow: true,
  rule: 'approval',
  approval: { name: 'a-1', approvedBy: 'alice', reason: 'fix \u00e9', ticket: null, expiresAt: '2026-12-01T00:00:00Z' },
  message: null,
  hint: null,
};

/** Every kind of event the builder makes, with strings JSON must escape, in one session. */
function corpus(): UnchainedEvent[] {
  const b = new EventBuilder('full', tables);
  const s = session();
  const t0 = Date.parse('2026-11-27T10:00:00.000Z');
  return [
    b.sessionEvent(s, 'session.start', t0, { ok: true }),
    ...b.statementEvents(
      s,
      record({
        text: "select 'a\"b\\\\c\u0001\u00ff\ud83d\ude00\udc00' from t /*task='T-7',traceparent='00-ab-cd-01'*/; update t set x = 1",
        results: [
          ok('SELECT 1', 1),
          { ...ok('', null), status: 'error', tag: null, sqlstate: '23505', error: 'dup "x"\n' },
        ],
      }),
    ),
    ...b.statementEvents(
      s,
      record({
        kind: 'execute',
        text: 'select $1, $2',
        preparedName: 'p\t1',
        params: { lengths: [2, -1], formats: [0, 1], values: [Buffer.from('h\u00e9', 'latin1'), null] },
        results: [ok('SELECT 1', 1)],
        authz: [approved],
      }),
    ),
    ...b.statementEvents(s, record({ text: 'delete from payroll', authz: [deny], results: [] })),
    ...b.statementEvents(
      s,
      record({
        text: "select 'a\\''; delete from t where id = 2; --'",
        results: [ok('SELECT 1', 1), ok('DELETE 1', 1)],
      }),
    ),
    ...b.statementEvents(
      s,
      record({
        text: "select '\ufffd'",
        raw: { bytes: Buffer.from([0x73, 0x27, 0x83, 0x5c, 0x27]), encoding: 'SHIFT_JIS_2004', bytewise: false },
        results: [ok('SELECT 1', 1)],
      }),
    ),
    ...b.statementEvents(s, record({ text: `select '${'x'.repeat(500_000)}'`, results: [ok('SELECT 1', 1)] })),
    ...b.statementEvents(s, record({ text: "select 'a\\'b'", scanFlags: SCS_OFF, results: [ok('SELECT 1', 1)] })),
    b.fallbackEvent(s, record({ text: 'garbage', authz: [deny] })),
    incidentEvent(
      {
        end: 20,
        kind: 'spool.damaged',
        quarantine: null,
        segment: 'segment-000000000001.log',
        seqAfter: 3,
        seqBefore: 1,
        start: 10,
      },
      { stream: 'stream', identity: s.identity, target: s.target },
      t0,
    ),
    b.sessionEvent(s, 'session.end', t0 + 1, { ok: false, sqlstate: '08006', error: 'gone' }),
  ];
}

describe('EventChain', () => {
  test('writes the same lines, hashes and chain as ChainWriter over canonical JSON', () => {
    const events = corpus();
    // The corpus reaches the optional fields the fast writer must not miss.
    const statements = events.map((e) => e.statement).filter((st) => st !== null);
    expect(statements.some((st) => st.splitMismatch)).toBe(true);
    expect(statements.some((st) => st.textRaw)).toBe(true);
    expect(statements.some((st) => st.truncated)).toBe(true);
    expect(events.some((e) => e.incident)).toBe(true);

    const reference = new ChainWriter('stream "s"', 41, 'f'.repeat(64));
    const fast = new EventChain('stream "s"', 41, 'f'.repeat(64));
    const chained: AuditEvent[] = [];
    for (const e of events) {
      const expected = reference.append(structuredClone(e));
      const line = fast.append(e);
      expect(line).toBe(expected.json);
      expect(canonicalJson(JSON.parse(line))).toBe(line);
      chained.push(JSON.parse(line) as AuditEvent);
    }
    expect(fast.position).toEqual(reference.position);
    expect(verifyStream(chained)).toBeUndefined();
  });

  test('a shared identity or authz part is serialized once, and a new object is serialized anew', () => {
    const b = new EventBuilder('redacted', null);
    const s = session();
    const chain = new EventChain('s');
    const first = JSON.parse(chain.append(b.sessionEvent(s, 'session.start', 0, { ok: true }))) as AuditEvent;
    // The session's identity is replaced (never edited) when the sidecar's identity changes.
    s.identity = { ...s.identity, name: 'renamed' };
    const second = JSON.parse(chain.append(b.sessionEvent(s, 'session.end', 1, { ok: true }))) as AuditEvent;
    expect([first.identity.name, second.identity.name]).toEqual(['bill\u00e9ng\n', 'renamed']);
    expect(verifyStream([first, second])).toBeUndefined();
  });
});
