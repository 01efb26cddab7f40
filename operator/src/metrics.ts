/**
 * The operator's Prometheus metrics, in a registry of its own (several operators in one process, as
 * in tests, never clash), and the plain-HTTP server for /metrics, /healthz and /readyz, kept apart
 * from the webhook's TLS port so that scrapers and probes need no certificate.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { registerProcessMetrics } from '@byline/api/process-metrics';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export class OperatorMetrics {
  readonly registry = new Registry();
  readonly reconciles: Counter<'kind' | 'outcome'>;
  readonly reconcileDuration: Histogram<'kind'>;
  readonly statusWrites: Counter<'kind' | 'reason'>;
  readonly admissions: Counter<'outcome' | 'reason'>;
  readonly admissionDuration: Histogram<'outcome'>;
  readonly watchRestarts: Counter<'resource' | 'cause'>;
  readonly watchRelists: Counter<'resource' | 'cause'>;
  readonly leader: Gauge;
  readonly queueDepth: Gauge;
  readonly certificateRotations: Counter<'what'>;

  constructor() {
    const registers = [this.registry];
    registerProcessMetrics(this.registry);
    this.reconciles = new Counter({
      name: 'byline_operator_reconciles_total',
      help: 'Reconciles by kind and outcome (unchanged: status already right; updated: status written; error: retried).',
      labelNames: ['kind', 'outcome'],
      registers,
    });
    this.reconcileDuration = new Histogram({
      name: 'byline_operator_reconcile_duration_seconds',
      help: 'Time one reconcile took, status write included.',
      labelNames: ['kind'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    this.statusWrites = new Counter({
      name: 'byline_operator_status_writes_total',
      help: 'Ready conditions written, by kind and the reason written.',
      labelNames: ['kind', 'reason'],
      registers,
    });
    this.admissions = new Counter({
      name: 'byline_operator_admissions_total',
      help: 'Pod admission reviews answered, by outcome (injected, skipped, refused, error) and reason.',
      labelNames: ['outcome', 'reason'],
      registers,
    });
    this.admissionDuration = new Histogram({
      name: 'byline_operator_admission_duration_seconds',
      help: 'Time from receiving an admission review to answering it.',
      labelNames: ['outcome'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    });
    this.watchRestarts = new Counter({
      name: 'byline_operator_watch_restarts_total',
      help: 'Watches started again from their resourceVersion (closed: server timeout; silent: no event for too long; error).',
      labelNames: ['resource', 'cause'],
      registers,
    });
    this.watchRelists = new Counter({
      name: 'byline_operator_watch_relists_total',
      help: 'Full relists of a resource (gone: 410, resourceVersion too old; error: a failed list retried).',
      labelNames: ['resource', 'cause'],
      registers,
    });
    this.leader = new Gauge({
      name: 'byline_operator_leader',
      help: '1 while this replica holds the byline-operator Lease and reconciles, else 0.',
      registers,
    });
    this.queueDepth = new Gauge({
      name: 'byline_operator_workqueue_depth',
      help: 'Keys waiting to be reconciled.',
      registers,
    });
    this.certificateRotations = new Counter({
      name: 'byline_operator_webhook_certificate_rotations_total',
      help: 'Webhook certificates issued by this replica (ca or serving).',
      labelNames: ['what'],
      registers,
    });
    this.leader.set(0);
  }
}

export interface AdminServer {
  url: string;
  close(): Promise<void>;
}

/** Serves GET /metrics, /healthz (the process is up) and /readyz (`ready()` says the caches are synced). */
export async function startAdminServer(
  listen: { host: string; port: number },
  metrics: OperatorMetrics,
  ready: () => { ready: boolean; detail: string },
): Promise<AdminServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET' }).end();
      return;
    }
    if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    } else if (path === '/readyz') {
      const r = ready();
      res.writeHead(r.ready ? 200 : 503, { 'content-type': 'text/plain' }).end(`${r.detail}\n`);
    } else if (path === '/metrics') {
      metrics.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
        (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${err.message}\n`),
      );
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${host}:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
