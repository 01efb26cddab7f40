import type { UnchainedEvent } from '@byline/api';
import { describe, expect, test } from 'vitest';
import { SidecarMetrics } from '../metrics.js';
import { StatementCounters } from './statement-counters.js';

function event(route: string, klass: 'read' | 'write', status: 'ok' | 'error', durationUs: number | null) {
  return {
    target: { route },
    statement: { class: klass },
    result: { status, durationUs },
  } as unknown as UnchainedEvent;
}

describe('StatementCounters', () => {
  test('counts by route, class and status, and observes durations, as the labelled counter does', async () => {
    const metrics = new SidecarMetrics();
    const counters = new StatementCounters(metrics);
    counters.count(event('a', 'read', 'ok', 100));
    counters.count(event('a', 'read', 'ok', null));
    counters.count(event('a', 'write', 'ok', 100));
    counters.count(event('b', 'read', 'error', 2_000_000));
    counters.count({ ...event('a', 'read', 'ok', 1), statement: null });
    const text = await metrics.registry.metrics();
    expect(text).toContain('byline_statements_total{route="a",class="read",status="ok"} 2');
    expect(text).toContain('byline_statements_total{route="a",class="write",status="ok"} 1');
    expect(text).toContain('byline_statements_total{route="b",class="read",status="error"} 1');
    expect(text).toContain('byline_statement_duration_seconds_count 3');
    expect(text).toContain('byline_statement_duration_seconds_bucket{le="1"} 2');
  });
});
