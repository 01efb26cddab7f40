export type { SessionInfo } from './audit/event-builder.js';
export type { AuditSink } from './audit/sink.js';
export { identityFrom, type RunningSidecar, type SidecarOptions, splitListen, startSidecar } from './sidecar.js';
