/**
 * What no container but the sidecar may reach: a DatabaseRoute's credential Secret, a
 * service-account token for the byline.dev audience, the sidecar's volumes, any spool claim (of this
 * pod or another). Judged by what a volume or a reference holds (the Secret it names, the audience it
 * asks for, the claim it mounts), not only by its name, so renaming or re-declaring gains nothing.
 */
import type { V1Container, V1EphemeralContainer, V1PodSpec, V1Volume, V1VolumeMount } from '@kubernetes/client-node';
import { RESERVED_VOLUME_PREFIX, SIDECAR_NAME, SPOOL_CLAIM_PREFIX, TOKEN_AUDIENCE } from './constants.js';
import type { DatabaseRoute } from './types.js';

export type ExposureReason =
  | 'RouteSecretExposed'
  | 'BylineTokenExposed'
  | 'SpoolExposed'
  | 'SidecarVolumeMounted'
  | 'ReservedVolumeName'
  | 'SidecarTargeted';

export interface Exposure {
  reason: ExposureReason;
  message: string;
}

export interface Guarded {
  /** Secret name → the DatabaseRoute whose credentials it holds (every route of the namespace). */
  routeSecrets: Map<string, string>;
  /** Volumes the sidecar owns in this pod (the webhook's verified output); empty before injection. */
  sidecarVolumes: Set<string>;
}

export type ContainerKind = 'initContainers' | 'containers' | 'ephemeralContainers';
export type AnyContainer = V1Container | V1EphemeralContainer;

const KIND_LABEL: Record<ContainerKind, string> = {
  initContainers: 'init container',
  containers: 'container',
  ephemeralContainers: 'ephemeral container',
};

/** The credential Secrets of the namespace's routes; a route without a usable name guards nothing. */
export function routeSecretsOf(routes: DatabaseRoute[]): Map<string, string> {
  const secrets = new Map<string, string>();
  for (const r of routes) {
    const name = (r.spec as { credentials?: { secretRef?: { name?: unknown } } } | undefined)?.credentials?.secretRef
      ?.name;
    if (typeof name === 'string' && name !== '' && !secrets.has(name)) secrets.set(name, r.metadata?.name ?? '');
  }
  return secrets;
}

/** Every container of every kind, in spec order. */
export function containersOf(spec: V1PodSpec): { kind: ContainerKind; container: AnyContainer }[] {
  const all: { kind: ContainerKind; container: AnyContainer }[] = [];
  for (const kind of ['initContainers', 'containers', 'ephemeralContainers'] as const) {
    for (const container of spec[kind] ?? []) all.push({ kind, container });
  }
  return all;
}

/** What a volume holds that only the sidecar may hold, or undefined. */
function sensitiveContent(volume: V1Volume, guarded: Guarded): { reason: ExposureReason; what: string } | undefined {
  const secret = volume.secret?.secretName;
  if (secret !== undefined && guarded.routeSecrets.has(secret)) {
    return {
      reason: 'RouteSecretExposed',
      what: `the Secret "${secret}" of DatabaseRoute "${guarded.routeSecrets.get(secret)}"`,
    };
  }
  for (const source of volume.projected?.sources ?? []) {
    const name = source.secret?.name;
    if (name !== undefined && guarded.routeSecrets.has(name)) {
      return {
        reason: 'RouteSecretExposed',
        what: `the Secret "${name}" of DatabaseRoute "${guarded.routeSecrets.get(name)}"`,
      };
    }
    if (source.serviceAccountToken?.audience === TOKEN_AUDIENCE) {
      return { reason: 'BylineTokenExposed', what: `a service-account token for the audience "${TOKEN_AUDIENCE}"` };
    }
  }
  const claim = volume.persistentVolumeClaim?.claimName;
  if (claim?.startsWith(SPOOL_CLAIM_PREFIX)) {
    return { reason: 'SpoolExposed', what: `the spool claim "${claim}" (claims named ${SPOOL_CLAIM_PREFIX}*)` };
  }
  return undefined;
}

/** Where the ServiceAccount admission plugin mounts the pod's API token in every container. */
export const API_TOKEN_PATH = '/var/run/secrets/kubernetes.io/serviceaccount';

/**
 * The mount the ServiceAccount admission plugin adds to every container, byline-proxy included (it
 * runs again after a webhook changes the pod): the pod's own API token, read-only, from a projected
 * volume that holds nothing the sidecar guards. Read-only and shared with the app anyway, it can
 * carry nothing out of the sidecar, so it is neither a forgery nor one of the sidecar's volumes.
 */
export function isApiTokenMount(mount: V1VolumeMount, spec: V1PodSpec, guarded: Guarded): boolean {
  const { name, mountPath, readOnly, ...rest } = mount;
  if (mountPath !== API_TOKEN_PATH || readOnly !== true || Object.keys(rest).length > 0) return false;
  if (name.startsWith(RESERVED_VOLUME_PREFIX)) return false;
  const volume = (spec.volumes ?? []).find((v) => v.name === name);
  return volume?.projected !== undefined && sensitiveContent(volume, guarded) === undefined;
}

/** The names no other container may mount: the sidecar's own volumes and any volume with guarded content. */
export function protectedVolumes(spec: V1PodSpec, guarded: Guarded): Set<string> {
  const names = new Set(guarded.sidecarVolumes);
  for (const v of spec.volumes ?? []) if (sensitiveContent(v, guarded)) names.add(v.name);
  return names;
}

/** A volume the pod brings itself: a reserved name, or guarded content outside the sidecar's volumes. */
export function findVolumeExposure(spec: V1PodSpec, guarded: Guarded): Exposure | undefined {
  for (const v of spec.volumes ?? []) {
    if (guarded.sidecarVolumes.has(v.name)) continue;
    if (v.name.startsWith(RESERVED_VOLUME_PREFIX)) {
      return {
        reason: 'ReservedVolumeName',
        message: `volume "${v.name}": names starting with "${RESERVED_VOLUME_PREFIX}" are reserved for the volumes byline injects`,
      };
    }
    const content = sensitiveContent(v, guarded);
    if (content) {
      return {
        reason: content.reason,
        message: `volume "${v.name}" holds ${content.what}, which only the ${SIDECAR_NAME} container may hold`,
      };
    }
  }
  return undefined;
}

/** One container other than the sidecar: its mounts, its Secret references, its target. */
export function findContainerExposure(
  kind: ContainerKind,
  c: AnyContainer,
  guarded: Guarded,
  protectedNames: Set<string>,
): Exposure | undefined {
  const label = `${KIND_LABEL[kind]} "${c.name}"`;
  for (const m of [...(c.volumeMounts ?? []), ...(c.volumeDevices ?? [])]) {
    // A mount of a reserved name that the pod does not declare would bind to the volume injection adds.
    if (protectedNames.has(m.name) || m.name.startsWith(RESERVED_VOLUME_PREFIX)) {
      return {
        reason: 'SidecarVolumeMounted',
        message: `${label} mounts volume "${m.name}", which only the ${SIDECAR_NAME} container may mount`,
      };
    }
  }
  for (const e of c.env ?? []) {
    const secret = e.valueFrom?.secretKeyRef?.name;
    if (secret !== undefined && guarded.routeSecrets.has(secret)) {
      return {
        reason: 'RouteSecretExposed',
        message: `${label} reads ${e.name} from the Secret "${secret}" of DatabaseRoute "${guarded.routeSecrets.get(secret)}", which only the ${SIDECAR_NAME} container may read`,
      };
    }
  }
  for (const e of c.envFrom ?? []) {
    const secret = e.secretRef?.name;
    if (secret !== undefined && guarded.routeSecrets.has(secret)) {
      return {
        reason: 'RouteSecretExposed',
        message: `${label} takes its environment from the Secret "${secret}" of DatabaseRoute "${guarded.routeSecrets.get(secret)}", which only the ${SIDECAR_NAME} container may read`,
      };
    }
  }
  if ((c as V1EphemeralContainer).targetContainerName === SIDECAR_NAME) {
    return {
      reason: 'SidecarTargeted',
      message: `${label} targets the ${SIDECAR_NAME} container: sharing its process namespace would expose its files and environment`,
    };
  }
  return undefined;
}

/** The first way any container but `sidecar` could reach what the sidecar guards. */
export function findExposure(spec: V1PodSpec, guarded: Guarded, sidecar?: AnyContainer): Exposure | undefined {
  const volume = findVolumeExposure(spec, guarded);
  if (volume) return volume;
  const protectedNames = protectedVolumes(spec, guarded);
  for (const { kind, container } of containersOf(spec)) {
    if (container === sidecar) continue;
    const found = findContainerExposure(kind, container, guarded, protectedNames);
    if (found) return found;
  }
  return undefined;
}
