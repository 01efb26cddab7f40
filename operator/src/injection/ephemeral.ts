/**
 * Ephemeral containers (`kubectl debug`, the pods/ephemeralcontainers subresource) are added to a
 * running pod, after injection was judged. Each one added is held to the rule every other container
 * follows: none of the sidecar's volumes, none of the route Secrets, and no sharing of the sidecar's
 * process namespace (targetContainerName), which would expose its files and environment.
 */
import type { V1Pod } from '@kubernetes/client-node';
import { SIDECAR_NAME } from './constants.js';
import { findContainerExposure, type Guarded, isApiTokenMount, protectedVolumes, routeSecretsOf } from './exposure.js';
import type { DatabaseRoute, InjectionResult } from './types.js';

export interface EphemeralInput {
  /** The pod with its new list of ephemeral containers. */
  pod: V1Pod;
  /** The pod before the update; its ephemeral containers were judged already. */
  oldPod?: V1Pod;
  /** The DatabaseRoutes of the pod's namespace. */
  routes: DatabaseRoute[];
}

export function judgeEphemeralContainers(input: EphemeralInput): InjectionResult {
  const spec = input.pod.spec ?? { containers: [] };
  const before = new Set((input.oldPod?.spec?.ephemeralContainers ?? []).map((c) => c.name));
  const added = (spec.ephemeralContainers ?? []).filter((c) => !before.has(c.name));
  // The sidecar's volumes are whatever it mounts: judged by content, not by the names we chose.
  const sidecar = (spec.initContainers ?? []).find((c) => c.name === SIDECAR_NAME);
  const routeSecrets = routeSecretsOf(input.routes);
  const mounts = (sidecar?.volumeMounts ?? []).filter(
    (m) => !isApiTokenMount(m, spec, { routeSecrets, sidecarVolumes: new Set() }),
  );
  const guarded: Guarded = { routeSecrets, sidecarVolumes: new Set(mounts.map((m) => m.name)) };
  const protectedNames = protectedVolumes(spec, guarded);
  for (const c of added) {
    const exposure = findContainerExposure('ephemeralContainers', c, guarded, protectedNames);
    if (exposure) return { outcome: 'refused', reason: exposure.reason, message: exposure.message, patch: [] };
  }
  return {
    outcome: 'skipped',
    reason: 'EphemeralContainersAllowed',
    message: `ephemeral container${added.length === 1 ? '' : 's'} ${added.map((c) => `"${c.name}"`).join(', ')} reach nothing of the sidecar's`,
    patch: [],
  };
}
