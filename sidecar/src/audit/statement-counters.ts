/**
 * byline_statements_total and the duration histogram, counted per event. prom-client looks a
 * labelled child up by hashing the label object on every inc(); the children are kept here by
 * route, class and status instead, so counting costs a few map lookups.
 */
import type { UnchainedEvent } from '@byline/api';
import type { Counter } from 'prom-client';
import type { SidecarMetrics } from '../metrics.js';

type Child = Counter.Internal;

export class StatementCounters {
  private readonly children = new Map<string, Map<string, Map<string, Child>>>();

  constructor(private readonly metrics: SidecarMetrics) {}

  count(e: UnchainedEvent): void {
    const st = e.statement;
    const result = e.result;
    if (!st || !result) return;
    this.child(e.target.route, st.class, result.status).inc();
    if (result.durationUs !== null) this.metrics.statementDuration.observe(result.durationUs / 1e6);
  }

  private child(route: string, klass: string, status: string): Child {
    let byClass = this.children.get(route);
    if (!byClass) {
      byClass = new Map();
      this.children.set(route, byClass);
    }
    let byStatus = byClass.get(klass);
    if (!byStatus) {
      byStatus = new Map();
      byClass.set(klass, byStatus);
    }
    let child = byStatus.get(status);
    if (!child) {
      child = this.metrics.statements.labels({ route, class: klass, status });
      byStatus.set(status, child);
    }
    return child;
  }
}
