/** Statement records as the capture layer hands them to shaping, for the audit tests (not shipped code). */
import type { ResultRecord, StatementRecord } from '../capture/records.js';

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
