/**
 * The DatabaseRoute state machine: its Ready condition, computed from the route and the Secrets it
 * names (as the caches hold them: key names only). The first rule that matches wins:
 *
 *   spec unusable by the injector (resolveRoute's problems)        → Ready=False InvalidSpec
 *   credentials Secret absent                                       → Ready=False SecretNotFound
 *   credentials Secret lacks usernameKey and/or passwordKey         → Ready=False SecretKeyMissing (names the keys;
 *                                                                     usernameKey is not read when credentials.username is set)
 *   upstream.caSecretRef set, that Secret absent                    → Ready=False CASecretNotFound
 *   CA Secret present but without its key                           → Ready=False CASecretKeyMissing
 *   otherwise                                                       → Ready=True  Valid
 *
 * Every state is re-entered from any other when the route or a Secret it names changes; a route
 * that is not Ready makes every AgentIdentity using it RouteNotReady (agent-identity.ts).
 */
import { resolveRoute } from '../injection/routes.js';
import type { DatabaseRoute } from '../injection/types.js';
import type { DesiredCondition } from './conditions.js';

/** A Secret as the cache keeps it: metadata and the names of its data keys, never the values. */
export interface SecretKeys {
  metadata: { name: string; namespace?: string; resourceVersion?: string; uid?: string };
  type?: string;
  data?: Record<string, string>;
}

export type RouteReason =
  | 'Valid'
  | 'InvalidSpec'
  | 'SecretNotFound'
  | 'SecretKeyMissing'
  | 'CASecretNotFound'
  | 'CASecretKeyMissing';

export interface RouteVerdict extends DesiredCondition {
  reason: RouteReason;
}

export type SecretLookup = (namespace: string, name: string) => SecretKeys | undefined;

const ready = (reason: RouteReason, message: string): RouteVerdict => ({
  type: 'Ready',
  status: reason === 'Valid' ? 'True' : 'False',
  reason,
  message,
});

const hasKey = (secret: SecretKeys, key: string) => Object.hasOwn(secret.data ?? {}, key);

export function evaluateRoute(route: DatabaseRoute, secret: SecretLookup): RouteVerdict {
  const namespace = route.metadata.namespace ?? '';
  const resolved = resolveRoute(route);
  if ('problems' in resolved) return ready('InvalidSpec', resolved.problems.join('; '));
  const { secretRef } = resolved;
  const credentials = secret(namespace, secretRef.name);
  if (!credentials) return ready('SecretNotFound', `Secret "${secretRef.name}" not found in namespace "${namespace}"`);
  // A route that names its role (credentials.username) reads only the password from the Secret.
  const keys =
    resolved.username !== undefined ? [secretRef.passwordKey] : [secretRef.usernameKey, secretRef.passwordKey];
  const missing = keys.filter((k) => !hasKey(credentials, k));
  if (missing.length > 0) {
    return ready(
      'SecretKeyMissing',
      `Secret "${secretRef.name}" has no key ${missing.map((k) => `"${k}"`).join(' or ')} (the database ${missing.length === 2 ? 'username and password' : missing[0] === secretRef.usernameKey ? 'username' : 'password'})`,
    );
  }
  const ca = resolved.upstream.caSecretRef;
  if (ca) {
    const caSecret = secret(namespace, ca.name);
    if (!caSecret) return ready('CASecretNotFound', `CA Secret "${ca.name}" not found in namespace "${namespace}"`);
    if (!hasKey(caSecret, ca.key)) return ready('CASecretKeyMissing', `CA Secret "${ca.name}" has no key "${ca.key}"`);
  }
  return ready('Valid', `Secret "${secretRef.name}" holds the credentials; the route is ready for injection`);
}

/** The Secrets a route names, to re-reconcile it when one of them changes. */
export function secretsOf(route: DatabaseRoute): string[] {
  const names = [route.spec?.credentials?.secretRef?.name, route.spec?.upstream?.caSecretRef?.name];
  return names.filter((n): n is string => typeof n === 'string');
}

/** Drops a Secret's values as it enters the cache: the operator needs to know which keys exist, nothing more. */
export function secretKeysOnly<T extends SecretKeys>(secret: T): T {
  const data = Object.fromEntries(Object.keys(secret.data ?? {}).map((k) => [k, '']));
  const { metadata } = secret;
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: metadata.name,
      namespace: metadata.namespace,
      uid: metadata.uid,
      resourceVersion: metadata.resourceVersion,
    },
    type: secret.type,
    data,
  } as unknown as T;
}
