/**
 * Only the webhook's own output counts as injected. A pod that already carries a byline-proxy
 * container or the byline.dev/injected annotation (a reinvocation after another webhook, or a copy
 * of an injected pod) passes only if what it carries is exactly what the webhook would inject now;
 * anything else is a pod trying to skip injection or to run its own "sidecar" with the credentials.
 */
import type { V1Container, V1PodSpec, V1Volume } from '@kubernetes/client-node';
import { INJECTED_ANNOTATION, SIDECAR_NAME } from './constants.js';
import { containersOf, type Guarded, isApiTokenMount } from './exposure.js';

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Fields the API server fills in when it decodes a pod (between webhook calls too), with the values
 * it fills in. Any other field the injector did not write fails verification: a `command`, a
 * `lifecycle` hook or an extra mount would turn the sidecar's credentials against it.
 */
const DEFAULTED: Record<string, (v: unknown) => boolean> = {
  terminationMessagePath: (v) => v === '/dev/termination-log',
  imagePullPolicy: (v) => v === 'IfNotPresent' || v === 'Always' || v === 'Never',
  timeoutSeconds: (v) => v === 1,
  successThreshold: (v) => v === 1,
  scheme: (v) => v === 'HTTP',
  defaultMode: (v) => v === 420,
};

/** The first path where `actual` is not `expected` plus API-server defaults, or undefined. */
export function difference(expected: unknown, actual: unknown, path: string): string | undefined {
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual) || actual.length !== expected.length) return path;
    for (let i = 0; i < expected.length; i++) {
      const d = difference(expected[i], actual[i], `${path}[${i}]`);
      if (d) return d;
    }
    return undefined;
  }
  if (isRecord(expected)) {
    if (!isRecord(actual)) return path;
    for (const key of Object.keys(expected)) {
      const d = difference(expected[key], actual[key], `${path}.${key}`);
      if (d) return d;
    }
    for (const key of Object.keys(actual)) {
      if (key in expected) continue;
      if (!DEFAULTED[key]?.(actual[key])) return `${path}.${key}`;
    }
    return undefined;
  }
  return Object.is(expected, actual) ? undefined : path;
}

export interface Rendered {
  sidecar: V1Container;
  volumes: V1Volume[];
  annotation: string;
}

/** Why the pod's injection is not the webhook's output, or undefined when it is. */
export function forgeryOf(
  spec: V1PodSpec,
  annotations: Record<string, string>,
  rendered: Rendered,
  guarded: Guarded,
): string | undefined {
  if (annotations[INJECTED_ANNOTATION] !== rendered.annotation) {
    return `its annotation ${INJECTED_ANNOTATION} is not the one this webhook would write (${rendered.annotation})`;
  }
  const named = containersOf(spec).filter((c) => c.container.name === SIDECAR_NAME);
  const [only] = named;
  if (named.length !== 1 || only?.kind !== 'initContainers') {
    return `it must have exactly one ${SIDECAR_NAME}, among its init containers`;
  }
  // Built-in admission plugins run again after the webhook: ServiceAccount adds its token mount,
  // LimitRanger fills in resources. The cluster's doing, not the pod author's, and neither can carry
  // anything out of the sidecar (resources are not compared at all: they bound it, they expose nothing).
  const { volumeMounts, resources: _resources, ...container } = only.container;
  const { resources: _rendered, ...expected } = rendered.sidecar;
  const own = volumeMounts?.filter((m) => !isApiTokenMount(m, spec, guarded));
  const d = difference(expected, { ...container, ...(own ? { volumeMounts: own } : {}) }, SIDECAR_NAME);
  if (d) return `its ${SIDECAR_NAME} container differs from the one this webhook injects at ${d}`;
  for (const volume of rendered.volumes) {
    const found = (spec.volumes ?? []).filter((v) => v.name === volume.name);
    if (found.length !== 1) return `it must have exactly one volume "${volume.name}"`;
    const dv = difference(volume, found[0], `volume ${volume.name}`);
    if (dv) return `its ${dv} differs from the one this webhook injects`;
  }
  return undefined;
}
