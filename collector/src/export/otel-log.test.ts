import type { AuditEvent } from '@byline/api';
import { describe, expect, test } from 'vitest';
import { SampleStream } from '../sample-events.js';
import { parseTraceparent, toOtelLog } from './otel-log.js';

function statement(change: (e: AuditEvent) => void = () => {}): { event: AuditEvent; json: string } {
  const s = new SampleStream({ approval: 'month-end-close', requestedBy: 'carol@example.com' });
  s.take(1); // session.start
  const [c] = s.take(1);
  const event = structuredClone(c!.event) as AuditEvent;
  change(event);
  return { event, json: c!.json };
}

describe('toOtelLog', () => {
  test('maps a statement to the database semantic conventions and byline.* attributes, body unchanged', () => {
    const { event, json } = statement();
    const log = toOtelLog(event, json, '2026-11-27T03:00:01.000Z');
    const st = event.statement!;
    expect(log.body).toBe(json);
    expect(log.eventName).toBe('byline.statement');
    expect(log.timeMs).toBe(Date.parse(event.time));
    expect(log.severityText).toBe('INFO');
    expect(log.attributes).toMatchObject({
      'log.record.uid': event.id,
      'db.system.name': 'postgresql',
      'db.namespace': 'orders',
      'db.operation.name': st.command,
      'db.query.text': st.text,
      'db.response.returned_rows': 1,
      'server.address': '10.0.0.5',
      'server.port': 5432,
      'byline.identity.name': 'billing-agent',
      'byline.route': 'orders-db',
      'byline.statement.class': st.class,
      'byline.authz.decision': 'allow',
      'byline.authz.approval.name': 'month-end-close',
      'byline.authz.approval.requested_by': 'carol@example.com',
      'byline.authz.approval.approved_by': 'alice@example.com',
      'byline.chain.stream': event.chain.stream,
      'byline.chain.seq': event.chain.seq,
      'byline.chain.hash': event.chain.hash,
      'byline.received_at': '2026-11-27T03:00:01.000Z',
    });
    // Nulls are left out rather than sent as empty values.
    expect(Object.values(log.attributes)).not.toContain(null);
    expect('byline.identity.pod' in log.attributes).toBe(false);
  });

  test('db.collection.name only for a single table; all of them under byline.statement.tables', () => {
    const one = toOtelLog(
      statement((e) => (e.statement!.tables = ['public.customers'])).event,
      '{}',
      '2026-11-27T03:00:01Z',
    );
    expect(one.attributes['db.collection.name']).toBe('public.customers');
    const two = toOtelLog(statement((e) => (e.statement!.tables = ['a', 'b'])).event, '{}', '2026-11-27T03:00:01Z');
    expect(two.attributes['db.collection.name']).toBeUndefined();
    expect(two.attributes['byline.statement.tables']).toEqual(['a', 'b']);
  });

  test('denials warn and errors carry error.type and the SQLSTATE', () => {
    const denied = toOtelLog(
      statement((e) => Object.assign(e.result!, { status: 'denied', sqlstate: '42501', rows: null })).event,
      '{}',
      '2026-11-27T03:00:01Z',
    );
    expect(denied.severityText).toBe('WARN');
    expect(denied.attributes).toMatchObject({ 'error.type': '42501', 'db.response.status_code': '42501' });
    const failed = toOtelLog(
      statement((e) => Object.assign(e.result!, { status: 'error', sqlstate: '23505' })).event,
      '{}',
      '2026-11-27T03:00:01Z',
    );
    expect(failed.severityNumber).toBe(17);
  });

  test('a valid traceparent becomes the span context; anything else is ignored', () => {
    const tp = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const log = toOtelLog(statement((e) => (e.context!.traceparent = tp)).event, '{}', '2026-11-27T03:00:01Z');
    expect(log.trace).toEqual({
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      spanId: '00f067aa0ba902b7',
      traceFlags: 1,
    });
    expect(parseTraceparent('00-00000000000000000000000000000000-00f067aa0ba902b7-01')).toBeUndefined();
    expect(parseTraceparent('garbage')).toBeUndefined();
    expect(parseTraceparent(null)).toBeUndefined();
  });
});
