/**
 * The collector's Prometheus metrics, in a registry of its own (so several collectors in one
 * process, as in tests, never clash). Labelled series start at zero, so a rate() works from the
 * first scrape.
 */
import { registerProcessMetrics } from '@byline/api/process-metrics';
import { Counter, Histogram, Registry } from 'prom-client';
import { REFUSAL_REASONS } from './auth/authenticator.js';
import { IDENTITY_FIELDS } from './ingest/identity-check.js';
import type { RejectReason } from './ingest/parse-batch.js';
import type { MarkerKind } from './store/types.js';

export type BatchOutcome =
  | 'accepted'
  | 'bad-request'
  | 'unauthenticated'
  | 'forbidden'
  | 'too-large'
  | 'unsupported-media-type'
  | 'auth-unavailable'
  | 'busy'
  | 'verify-failed'
  | 'store-error';

const OUTCOMES: BatchOutcome[] = [
  'accepted',
  'bad-request',
  'unauthenticated',
  'forbidden',
  'too-large',
  'unsupported-media-type',
  'auth-unavailable',
  'busy',
  'verify-failed',
  'store-error',
];
// 'stream-owner': a batch for a stream another writer opened (checked by the store, not the parser).
const REASONS: (RejectReason | 'stream-owner')[] = [
  'malformed',
  'schema',
  'canonical',
  'hash',
  'identity',
  'too-many-events',
  'stream-owner',
];
const KINDS: MarkerKind[] = ['gap', 'break', 'fork'];

export class CollectorMetrics {
  readonly registry = new Registry();
  readonly batches: Counter<'outcome'>;
  readonly batchEvents: Histogram;
  readonly batchBytes: Histogram;
  readonly eventsStored: Counter;
  readonly duplicates: Counter;
  readonly resentAfterRetirement: Counter;
  readonly rejected: Counter<'reason'>;
  readonly identityMismatches: Counter<'field'>;
  readonly authRefusals: Counter<'reason'>;
  readonly chainProblems: Counter<'kind'>;
  readonly gapsResolved: Counter;
  readonly unsignedBatches: Counter;
  readonly requestDuration: Histogram<'method' | 'route' | 'status'>;
  readonly storeErrors: Counter<'operation'>;
  readonly exported: Counter<'exporter' | 'outcome'>;
  readonly exportFailures: Counter<'exporter'>;
  readonly policyRejections: Counter<'namespace' | 'identity'>;

  constructor() {
    const registers = [this.registry];
    registerProcessMetrics(this.registry);
    this.batches = new Counter({
      name: 'byline_collector_batches_total',
      help: 'Batches posted to /v1/events, by outcome.',
      labelNames: ['outcome'],
      registers,
    });
    this.batchEvents = new Histogram({
      name: 'byline_collector_batch_events',
      help: 'Events per accepted batch.',
      buckets: [1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000],
      registers,
    });
    this.batchBytes = new Histogram({
      name: 'byline_collector_batch_bytes',
      help: 'Body size of accepted batches, in bytes.',
      buckets: [1024, 8192, 65536, 262144, 1048576, 4194304, 16777216],
      registers,
    });
    this.eventsStored = new Counter({
      name: 'byline_collector_events_stored_total',
      help: 'Events stored (each event once, however often it was sent).',
      registers,
    });
    this.duplicates = new Counter({
      name: 'byline_collector_events_duplicate_total',
      help: 'Events acknowledged without storing them again: their id was already stored.',
      registers,
    });
    this.resentAfterRetirement = new Counter({
      name: 'byline_collector_events_retired_resent_total',
      help: 'Events acknowledged without storing them: resent for seqs a retention checkpoint already covers.',
      registers,
    });
    this.rejected = new Counter({
      name: 'byline_collector_events_rejected_total',
      help: 'Events whose batch was refused, by the reason the event gave.',
      labelNames: ['reason'],
      registers,
    });
    this.identityMismatches = new Counter({
      name: 'byline_collector_identity_mismatches_total',
      help: "Events refused because their identity is not the writer's, by the first field that differs.",
      labelNames: ['field'],
      registers,
    });
    this.authRefusals = new Counter({
      name: 'byline_collector_auth_refusals_total',
      help: 'Kubernetes tokens refused, by reason (unclaimed, claimed-twice, reader-denied, …).',
      labelNames: ['reason'],
      registers,
    });
    this.chainProblems = new Counter({
      name: 'byline_collector_chain_problems_total',
      help: 'Chain markers opened at ingest, by kind.',
      labelNames: ['kind'],
      registers,
    });
    this.gapsResolved = new Counter({
      name: 'byline_collector_chain_gaps_resolved_total',
      help: 'Gap markers resolved by late events.',
      registers,
    });
    this.policyRejections = new Counter({
      name: 'byline_collector_policy_rejections_total',
      help: 'Policy documents a sidecar reported it could not use (version skew), by AgentIdentity.',
      labelNames: ['namespace', 'identity'],
      registers,
    });
    this.unsignedBatches = new Counter({
      name: 'byline_collector_unsigned_batches_total',
      help: 'Batches accepted without a signed head (byline verify reports their events as unsigned).',
      registers,
    });
    this.requestDuration = new Histogram({
      name: 'byline_collector_http_request_duration_seconds',
      help: 'HTTP request duration, by method, endpoint and status code.',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    this.storeErrors = new Counter({
      name: 'byline_collector_store_errors_total',
      help: 'Store operations that failed, by operation.',
      labelNames: ['operation'],
      registers,
    });
    this.exported = new Counter({
      name: 'byline_collector_exported_events_total',
      help: 'Events an exporter delivered (outcome delivered) or gave up on as refused (outcome dead_letter).',
      labelNames: ['exporter', 'outcome'],
      registers,
    });
    this.exportFailures = new Counter({
      name: 'byline_collector_export_failures_total',
      help: 'Export requests that failed and will be retried (receiver down, 5xx, 429, timeout).',
      labelNames: ['exporter'],
      registers,
    });
    for (const outcome of OUTCOMES) this.batches.inc({ outcome }, 0);
    for (const reason of REASONS) this.rejected.inc({ reason }, 0);
    for (const kind of KINDS) this.chainProblems.inc({ kind }, 0);
    for (const field of IDENTITY_FIELDS) this.identityMismatches.inc({ field }, 0);
    for (const reason of REFUSAL_REASONS) this.authRefusals.inc({ reason }, 0);
    for (const operation of ['insert', 'query', 'streams', 'evidence', 'ping']) this.storeErrors.inc({ operation }, 0);
  }
}
