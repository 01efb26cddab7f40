/**
 * A DatabaseRoute for the sidecars of a kube test. The collector's /v1/policy fails closed on a
 * route that has none (every class denied), and a sidecar with identity.kubernetes enforces that
 * policy, so a test that sends statements through such a sidecar needs its route to exist.
 */
import { crds } from '@byline/api';
import type { CustomObjectsApi } from '@kubernetes/client-node';

export async function createDatabaseRoute(
  custom: CustomObjectsApi,
  namespace: string,
  name = 'orders-db',
  guardrails?: crds.DatabaseRoute['spec']['guardrails'],
): Promise<void> {
  const k = crds.DatabaseRouteKind;
  await custom.createNamespacedCustomObject({
    group: k.group,
    version: k.version,
    namespace,
    plural: k.plural,
    body: {
      apiVersion: crds.API_VERSION,
      kind: k.kind,
      metadata: { name, namespace },
      spec: {
        upstream: { host: 'db.example.com', port: 5432, database: 'postgres' },
        credentials: { secretRef: { name: `${name}-credentials` } },
        listenPort: 15432,
        ...(guardrails ? { guardrails } : {}),
      },
    },
  });
}
