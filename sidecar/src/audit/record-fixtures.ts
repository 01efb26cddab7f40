/** Statement records and sessions as the capture layer hands them to shaping, for the audit and spool tests (not shipped code). */
import type { ResultRecord, StatementRecord } from '../capture/records.js';
import type { SessionInfo } from './event-builder.js';

/** A statically named agent's session `id` on the orders route. */
export function session(id: string): SessionInfo {
  return {
    id,
    identity: { kind: 'agent', name: 'billing', namespace: null, pod: null, serviceAccount: null, source: 'static' },
    target: { database: 'orders', host: 'db', port: 5432, route: 'orders-db' },
    client: '127.0.0.1:5000',
    dbUser: 'app',
    applicationName: 'app',
    nextSeq: 0,
  };
}

export const ok = (tag: string, rows: number | null): ResultRecord => ({
  status: 'ok',
  tag,
  rows,
  sqlstate: null,
  error: null,
  copy: false,
  durationUs: 10,
});

export function record(partial: Partial<StatementRecord>): StatementRecord {
  return {
    kind: 'query',
    receivedAt: Date.parse('2026-11-27T10:00:00.000Z'),
    startedAt: 0,
    text: '',
    preparedName: null,
    params: null,
    applicationName: null,
    results: [],
    notExecuted: null,
    seq: 1,
    unrecorded: false,
    ...partial,
  };
}
