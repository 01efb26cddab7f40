/**
 * The MutatingWebhookConfiguration for Approvals, apart from the pod injector's: CREATE of approvals
 * (stamp spec.requestedBy, check identity and route) and UPDATE of approvals/status (gate decisions).
 * Always failurePolicy Fail, whatever the pods' setting: an Approval that skipped the webhook would
 * carry an unstamped requester or an unchecked decision.
 */
import {
  type MutatingWebhookConfiguration,
  mutatingConfiguration,
  type WebhookTarget,
  webhookClientConfig,
} from '../webhook/registration.js';

export const APPROVAL_WEBHOOK_CONFIGURATION_NAME = 'byline-approvals';
export const APPROVAL_WEBHOOK_NAME = 'approvals.byline.dev';
export const APPROVAL_PATH = '/mutate-approvals';

export function desiredApprovalWebhookConfiguration(
  target: WebhookTarget,
  caBundlePem: string,
  settings: { name?: string; namespaceLabels?: Record<string, string>; timeoutSeconds?: number } = {},
): MutatingWebhookConfiguration {
  return mutatingConfiguration(settings.name ?? APPROVAL_WEBHOOK_CONFIGURATION_NAME, [
    {
      name: APPROVAL_WEBHOOK_NAME,
      clientConfig: webhookClientConfig(target, APPROVAL_PATH, caBundlePem),
      rules: [
        {
          apiGroups: ['byline.dev'],
          apiVersions: ['v1alpha1'],
          operations: ['CREATE'],
          resources: ['approvals'],
          scope: 'Namespaced',
        },
        {
          apiGroups: ['byline.dev'],
          apiVersions: ['v1alpha1'],
          operations: ['UPDATE'],
          resources: ['approvals/status'],
          scope: 'Namespaced',
        },
      ],
      // Every namespace unless narrowed (tests sharing one API server narrow it to their own).
      namespaceSelector: settings.namespaceLabels ? { matchLabels: settings.namespaceLabels } : {},
      objectSelector: {},
      sideEffects: 'None',
      admissionReviewVersions: ['v1'],
      failurePolicy: 'Fail',
      matchPolicy: 'Equivalent',
      timeoutSeconds: settings.timeoutSeconds ?? 10,
      reinvocationPolicy: 'Never',
    },
  ]);
}
