/** What a TokenReview's user says about a service account: pure parsing, no API calls. */

/** The key under which a pod-bound token's review names its pod. */
export const POD_NAME_EXTRA = 'authentication.kubernetes.io/pod-name';

const LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

export interface ServiceAccountRef {
  namespace: string;
  serviceAccount: string;
}

/**
 * `system:serviceaccount:<namespace>:<name>` → its parts; anything else (a human, a node, a
 * malformed name) → null. Names are checked, so nothing odd reaches a list request.
 */
export function parseServiceAccountUser(username: string | undefined): ServiceAccountRef | null {
  if (username === undefined) return null;
  const parts = username.split(':');
  if (parts.length !== 4 || parts[0] !== 'system' || parts[1] !== 'serviceaccount') return null;
  const [namespace, serviceAccount] = [parts[2]!, parts[3]!];
  if (namespace.length > 63 || !LABEL.test(namespace)) return null;
  if (serviceAccount.length > 253 || !NAME.test(serviceAccount)) return null;
  return { namespace, serviceAccount };
}

/** The pod a token is bound to, from the review's `user.extra`; null when it names none (or several). */
export function podNameOf(extra: Record<string, string[] | undefined> | undefined): string | null {
  const values = extra?.[POD_NAME_EXTRA];
  if (values?.length !== 1) return null;
  const pod = values[0]!;
  return pod.length > 0 && pod.length <= 253 && NAME.test(pod) ? pod : null;
}
