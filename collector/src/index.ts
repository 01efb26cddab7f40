export { type EffectivePolicy, effectivePolicy } from '@byline/api';
export {
  type Authenticator,
  ChainedAuthenticator,
  type Principal,
  type Purpose,
  type Refusal,
  type RefusalReason,
  type WriterIdentity,
} from './auth/authenticator.js';
export { authenticatorFor } from './auth/from-config.js';
export type { KubeReviewer, ReviewedUser, TokenReviewResult } from './auth/kube-reviewer.js';
export {
  GATEWAY_RESOURCE,
  KubernetesAuthenticator,
  type KubernetesAuthenticatorOptions,
  TRAIL_RESOURCE,
} from './auth/kubernetes-authenticator.js';
export { COLLECTOR_RBAC_RULES, GATEWAY_WRITER_RBAC_RULES, TRAIL_READER_RBAC_RULES } from './auth/kubernetes-rbac.js';
export { StaticAuthenticator } from './auth/static-authenticator.js';
export { measureIngest } from './bench.js';
export { type CollectorOptions, type RunningCollector, startCollector } from './collector.js';
export { type ParsedBatch, parseBatch, toIngest } from './ingest/parse-batch.js';
export { streamOwner } from './ingest/stream-owner.js';
export { startVerifyWorker, VerifyPool, type VerifyPoolOptions } from './ingest/verify-pool.js';
export { CollectorMetrics } from './metrics.js';
export { type RetentionRunner, startRetention } from './retention/retention-runner.js';
export { ndjson, type SampleOptions, SampleStream } from './sample-events.js';
export * from './store/follow-types.js';
export { openStore, redact } from './store/open-store.js';
export { PostgresStore } from './store/postgres-store.js';
export { buildEventQuery } from './store/query-sql.js';
export * from './store/retention.js';
export * from './store/retired-side-rows.js';
export { SqliteStore } from './store/sqlite-store.js';
export type * from './store/types.js';
export { StreamOwnerError } from './store/types.js';
