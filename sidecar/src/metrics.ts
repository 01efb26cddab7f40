/**
 * The sidecar's Prometheus metrics (served on `metrics.listen`). One registry per sidecar, so
 * several sidecars in one test process do not share counters.
 */
import { createServer, type Server } from 'node:http';
import { registerProcessMetrics } from '@byline/api/process-metrics';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export class SidecarMetrics {
  readonly registry = new Registry();
  readonly statements = new Counter({
    name: 'byline_statements_total',
    help: 'Statements recorded, by route, class and result status.',
    labelNames: ['route', 'class', 'status'] as const,
    registers: [this.registry],
  });
  readonly statementDuration = new Histogram({
    name: 'byline_statement_duration_seconds',
    help: 'Time from a statement reaching the sidecar (or the previous result) to its result.',
    buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
    registers: [this.registry],
  });
  readonly refused = new Counter({
    name: 'byline_statements_refused_total',
    help: 'Statements refused because the audit spool could not take them.',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly dropped = new Counter({
    name: 'byline_statements_unrecorded_total',
    help: 'Statements run without being recorded because the spool was full and onBacklogFull is drop.',
    registers: [this.registry],
  });
  readonly splitMismatches = new Counter({
    name: 'byline_statement_split_mismatches_total',
    help: 'Query messages whose result count disagreed with the statements the sidecar split them into (each result recorded, flagged splitMismatch).',
    registers: [this.registry],
  });
  readonly sessions = new Gauge({
    name: 'byline_sessions_active',
    help: 'Client sessions open through the sidecar.',
    registers: [this.registry],
  });
  readonly protocolErrors = new Counter({
    name: 'byline_protocol_errors_total',
    help: 'Client connections closed for malformed protocol input.',
    registers: [this.registry],
  });
  readonly spoolBytes = new Gauge({
    name: 'byline_spool_bytes',
    help: 'Bytes in the audit spool (segments on disk and buffered).',
    registers: [this.registry],
  });
  readonly spoolMaxBytes = new Gauge({
    name: 'byline_spool_max_bytes',
    help: 'The spool limit (maxSpoolBytes): at byline_spool_bytes >= this, statements are refused or unrecorded.',
    registers: [this.registry],
  });
  readonly oldestUnshipped = new Gauge({
    name: 'byline_spool_oldest_unshipped_seconds',
    help: 'Age of the oldest event not yet acknowledged by the collector (0 when caught up).',
    registers: [this.registry],
  });
  readonly shipAttempts = new Counter({
    name: 'byline_ship_attempts_total',
    help: 'Batches sent to the collector.',
    registers: [this.registry],
  });
  readonly shipFailures = new Counter({
    name: 'byline_ship_failures_total',
    help: 'Batches the collector did not acknowledge, by reason.',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly unshippedEvents = new Gauge({
    name: 'byline_spool_unshipped_events',
    help: 'Events in the spool not yet acknowledged by the collector (nor dead-lettered).',
    registers: [this.registry],
  });
  readonly deadLettered = new Counter({
    name: 'byline_events_dead_lettered_total',
    help: 'Events the collector permanently refused, moved to the dead-letter directory, by reason.',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly spoolDamage = new Counter({
    name: 'byline_spool_damaged_ranges_total',
    help: 'Damaged byte ranges found in spool segments (their records are lost; see spool.damaged events).',
    registers: [this.registry],
  });
  readonly eventsShipped = new Counter({
    name: 'byline_events_shipped_total',
    help: 'Events acknowledged by the collector.',
    registers: [this.registry],
  });
  readonly policyUpdates = new Counter({
    name: 'byline_policy_updates_total',
    help: 'Policy documents received from the collector: applied, or rejected (the previous policy stays).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  constructor() {
    registerProcessMetrics(this.registry);
  }

  /** Called before every scrape, for values read from elsewhere. */
  beforeScrape: (() => void) | null = null;

  /** Every route listens (and the identity is known): what /readyz, the pod's startup probe, asks. */
  ready = false;

  listen(host: string, port: number): Promise<Server> {
    const server = createServer((req, res) => {
      const path = req.url?.split('?')[0];
      if (req.method === 'GET' && path === '/healthz') {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
        return;
      }
      if (req.method === 'GET' && path === '/readyz') {
        res
          .writeHead(this.ready ? 200 : 503, { 'content-type': 'text/plain' })
          .end(this.ready ? 'ready\n' : 'starting\n');
        return;
      }
      if (req.method !== 'GET' || path !== '/metrics') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: /metrics, /readyz, /healthz\n');
        return;
      }
      this.beforeScrape?.();
      this.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': this.registry.contentType }).end(text),
        (e: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${e.message}\n`),
      );
    });
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve(server));
    });
  }
}
