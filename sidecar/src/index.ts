export type { SessionInfo } from './audit/event-builder.js';
export type { AuditSink } from './audit/sink.js';
export type { IdentitySource } from './identity/identity-source.js';
export { KubernetesIdentity, type KubernetesIdentityOptions } from './identity/kubernetes-identity.js';
export { askWhoami, parseWhoami, type WhoamiAnswer } from './identity/whoami.js';
export { SidecarMetrics } from './metrics.js';
export { type RunningSidecar, type SidecarOptions, startSidecar } from './sidecar.js';
