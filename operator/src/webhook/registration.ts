/**
 * The MutatingWebhookConfiguration `byline-pod-injector`: created when missing, replaced when it
 * differs from what it should be (a new caBundle after a rotation, another URL or Service). Pods on
 * CREATE, and their ephemeralcontainers subresource on UPDATE (judged, never patched), in namespaces
 * labelled byline.dev/injection=enabled or =required; the pod annotation is checked in code, not by
 * an objectSelector, so every pod of a labelled namespace reaches the webhook (a pod that does not ask
 * may still name a route's Secret) and a refusal can say why. failurePolicy Fail: a pod that should
 * carry the sidecar never starts without it.
 */
import { isConflict, isNotFound, type KubeClient } from '../kube/client.js';

export const WEBHOOK_CONFIGURATION_NAME = 'byline-pod-injector';
export const WEBHOOK_NAME = 'pods.byline.dev';
export const MUTATE_PATH = '/mutate-pods';
/** Namespaces whose pods the API server sends: byline.dev/injection is enabled or required. */
export const DEFAULT_NAMESPACE_SELECTOR = {
  matchExpressions: [{ key: 'byline.dev/injection', operator: 'In', values: ['enabled', 'required'] }],
};

export type WebhookTarget = { url: string } | { service: { namespace: string; name: string; port?: number } };

export interface MutatingWebhookConfiguration {
  apiVersion: 'admissionregistration.k8s.io/v1';
  kind: 'MutatingWebhookConfiguration';
  metadata: { name: string; resourceVersion?: string; labels?: Record<string, string> };
  webhooks: Array<Record<string, unknown>>;
}

export interface WebhookSettings {
  name?: string;
  /** matchLabels instead of DEFAULT_NAMESPACE_SELECTOR (several operators in one cluster, as in tests). */
  namespaceLabels?: Record<string, string>;
  /** Fail (default): a pod is refused when the webhook cannot be reached; Ignore: it is created uninjected. */
  failurePolicy?: 'Fail' | 'Ignore';
  timeoutSeconds?: number;
}

export function desiredWebhookConfiguration(
  target: WebhookTarget,
  caBundlePem: string,
  settings: WebhookSettings = {},
): MutatingWebhookConfiguration {
  return mutatingConfiguration(settings.name ?? WEBHOOK_CONFIGURATION_NAME, [
    {
      name: WEBHOOK_NAME,
      clientConfig: webhookClientConfig(target, MUTATE_PATH, caBundlePem),
      rules: [
        { apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods'], scope: 'Namespaced' },
        // `kubectl debug` adds containers to a running pod; they must not reach the sidecar either.
        {
          apiGroups: [''],
          apiVersions: ['v1'],
          operations: ['UPDATE'],
          resources: ['pods/ephemeralcontainers'],
          scope: 'Namespaced',
        },
      ],
      namespaceSelector: settings.namespaceLabels
        ? { matchLabels: settings.namespaceLabels }
        : DEFAULT_NAMESPACE_SELECTOR,
      objectSelector: {},
      sideEffects: 'None',
      admissionReviewVersions: ['v1'],
      failurePolicy: settings.failurePolicy ?? 'Fail',
      matchPolicy: 'Equivalent',
      timeoutSeconds: settings.timeoutSeconds ?? 10,
      reinvocationPolicy: 'IfNeeded',
    },
  ]);
}

/** Where the API server calls a webhook: a URL (outside a cluster) or a Service, with the CA to trust. */
export function webhookClientConfig(target: WebhookTarget, path: string, caBundlePem: string): Record<string, unknown> {
  const where =
    'url' in target
      ? { url: `${target.url.replace(/\/+$/, '')}${path}` }
      : {
          service: {
            namespace: target.service.namespace,
            name: target.service.name,
            path,
            port: target.service.port ?? 443,
          },
        };
  return { ...where, caBundle: Buffer.from(caBundlePem).toString('base64') };
}

/** A MutatingWebhookConfiguration the operator owns, holding `webhooks`. */
export function mutatingConfiguration(
  name: string,
  webhooks: Array<Record<string, unknown>>,
): MutatingWebhookConfiguration {
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name, labels: { 'app.kubernetes.io/managed-by': 'byline-operator' } },
    webhooks,
  };
}

/** The fields we own, for comparing with what the API server holds (it adds defaults of its own). */
function essence(webhooks: Array<Record<string, unknown>>): string {
  return JSON.stringify(
    webhooks.map((w) => {
      const { name, clientConfig, rules, namespaceSelector, sideEffects, admissionReviewVersions } = w;
      const { failurePolicy, timeoutSeconds, reinvocationPolicy } = w;
      return [
        name,
        clientConfig,
        rules,
        namespaceSelector,
        sideEffects,
        admissionReviewVersions,
        failurePolicy,
        timeoutSeconds,
        reinvocationPolicy,
      ];
    }),
  );
}

/** Creates or updates the configuration; returns whether it wrote. */
export async function ensureWebhookConfiguration(
  client: KubeClient,
  desired: MutatingWebhookConfiguration,
): Promise<boolean> {
  const base = '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations';
  for (let attempt = 0; attempt < 5; attempt++) {
    let existing: MutatingWebhookConfiguration | undefined;
    try {
      existing = await client.get<MutatingWebhookConfiguration>(`${base}/${desired.metadata.name}`);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    try {
      if (!existing) {
        await client.create(base, desired);
        return true;
      }
      if (essence(existing.webhooks ?? []) === essence(desired.webhooks)) return false;
      await client.replace(`${base}/${desired.metadata.name}`, {
        ...desired,
        metadata: { ...existing.metadata, labels: { ...existing.metadata.labels, ...desired.metadata.labels } },
      });
      return true;
    } catch (err) {
      if (isConflict(err)) continue;
      throw err;
    }
  }
  throw new Error(`MutatingWebhookConfiguration ${desired.metadata.name} kept changing under us`);
}

/**
 * CA-only mode, for configurations a Helm release owns (rendered by the chart, deleted by
 * `helm uninstall`): sets every webhook's caBundle to ours and touches nothing else. It never
 * creates a configuration, so a stopped or uninstalled operator leaves nothing behind that would
 * keep refusing pods. Returns whether it wrote; a missing configuration is an error naming it.
 */
export async function syncWebhookCaBundle(client: KubeClient, name: string, caBundlePem: string): Promise<boolean> {
  const path = `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${name}`;
  const caBundle = Buffer.from(caBundlePem).toString('base64');
  for (let attempt = 0; attempt < 5; attempt++) {
    let existing: MutatingWebhookConfiguration;
    try {
      existing = await client.get<MutatingWebhookConfiguration>(path);
    } catch (err) {
      if (isNotFound(err)) {
        throw new Error(
          `MutatingWebhookConfiguration ${name} does not exist: with --webhook-ca-only it is installed by the Helm chart, not created by the operator`,
        );
      }
      throw err;
    }
    const webhooks = existing.webhooks ?? [];
    const stale = webhooks.filter((w) => (w.clientConfig as { caBundle?: string } | undefined)?.caBundle !== caBundle);
    if (stale.length === 0) return false;
    try {
      await client.replace(path, {
        ...existing,
        webhooks: webhooks.map((w) => ({ ...w, clientConfig: { ...(w.clientConfig as object), caBundle } })),
      });
      return true;
    } catch (err) {
      if (isConflict(err)) continue;
      throw err;
    }
  }
  throw new Error(`MutatingWebhookConfiguration ${name} kept changing under us`);
}
