export * from './audit-event.js';
export * from './canonical-json.js';
export * from './chain.js';
export * from './collector-config.js';
export * from './collector-oidc-config.js';
export * from './config-paths.js';
export {
  APPROVE_VERB,
  type Approval,
  type ApprovalPhase,
  type ApprovalSpec,
  type ApprovalStatus,
} from './crds/approval.js';
// The policy shapes, also at the top level for the sidecar and the collector.
export {
  ACCESS_LEVELS,
  type Access,
  type ClassesAndTables,
  classesAllowedBy,
  effectiveGuardrails,
  type GuardedClass,
  Guardrails,
  guardrailConflicts,
  REQUIRE_WHERE_COMMANDS,
  STATEMENT_CLASSES,
  TABLE_PATTERN_REGEX,
  tablePatternRegExp,
} from './crds/guardrails.js';
export * as crds from './crds/index.js';
export * from './effective-policy.js';
export * from './gateway-config.js';
export * from './listen.js';
export * from './load-config.js';
export * from './policy.js';
export * from './sidecar-config.js';
export * from './signed-head.js';
export * from './uuid.js';
export * from './validate.js';
export * from './verify-trail.js';
export * from './version.js';
