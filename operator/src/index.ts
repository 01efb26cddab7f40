export { type ApprovalAdmissionDeps, admitApproval, type UserInfo } from './approval/admission.js';
export { APPROVAL_WEBHOOK_CONFIGURATION_NAME, desiredApprovalWebhookConfiguration } from './approval/index.js';
export * from './injection/admission.js';
export * from './injection/mutate.js';
export { parseByteQuantity, type SidecarDefaults } from './injection/sidecar-settings.js';
export type { Caches } from './kube/caches.js';
export { KubeClient, KubeError } from './kube/client.js';
export { type KubeCredentials, loadKubeConfig, loadKubeCredentials } from './kube/credentials.js';
export { type LeaderElectionOptions, LeaderElector } from './kube/leader-election.js';
export * from './kube/watch-cache.js';
export { OperatorMetrics } from './metrics.js';
export { type OperatorOptions, type RunningOperator, startOperator } from './operator.js';
export { evaluateIdentity } from './reconcile/agent-identity.js';
export { evaluateRoute } from './reconcile/database-route.js';
export {
  desiredWebhookConfiguration,
  syncWebhookCaBundle,
  WEBHOOK_CONFIGURATION_NAME,
} from './webhook/registration.js';
export { TLS_SECRET_NAME } from './webhook/tls-secret.js';
