/**
 * The injected sidecar's resources and spool size: the operator's defaults (chart values), which a
 * pod may override with annotations. Pure; a malformed annotation is a refusal naming it, never a
 * sidecar silently sized otherwise. An override can only hurt the pod that sets it (a sidecar
 * starved of memory or spool fails closed: it refuses statements rather than lose them).
 */
import type { V1ResourceRequirements } from '@kubernetes/client-node';

export const SIDECAR_CPU_REQUEST_ANNOTATION = 'byline.dev/sidecar-cpu-request';
export const SIDECAR_CPU_LIMIT_ANNOTATION = 'byline.dev/sidecar-cpu-limit';
export const SIDECAR_MEMORY_REQUEST_ANNOTATION = 'byline.dev/sidecar-memory-request';
export const SIDECAR_MEMORY_LIMIT_ANNOTATION = 'byline.dev/sidecar-memory-limit';
/** The spool's bound (`audit.maxSpoolBytes`), as a quantity such as 512Mi. */
export const SPOOL_SIZE_ANNOTATION = 'byline.dev/spool-size';

export const DEFAULT_SIDECAR_RESOURCES: V1ResourceRequirements = { requests: { cpu: '50m', memory: '64Mi' } };
/** The sidecar's own default (api DEFAULT_MAX_SPOOL_BYTES), written explicitly into its config. */
export const DEFAULT_SPOOL_BYTES = 1024 * 1024 * 1024;
/** The sidecar refuses spools smaller than this (the config schema's minimum). */
export const MIN_SPOOL_BYTES = 65536;
/**
 * Room above maxSpoolBytes in the spool emptyDir's sizeLimit: the segment being written when the
 * bound is reached, the checkpoint and dead letters. The kubelet evicts a pod whose emptyDir
 * outgrows its sizeLimit, which would lose the spool, so the limit must never be the first bound.
 */
export const SPOOL_HEADROOM_BYTES = 64 * 1024 * 1024;

/**
 * NODE_OPTIONS of the injected sidecar: a new space capped at 4 MiB semi-spaces keeps the young
 * generation (32 MiB at the bench's peak by default) and peak RSS down at no measured cost in
 * throughput or latency (README "Footprint"). The operator's --sidecar-node-options replaces it.
 */
export const DEFAULT_SIDECAR_NODE_OPTIONS = '--max-semi-space-size=4';
/**
 * The injected sidecar's malloc arenas (glibc's MALLOC_ARENA_MAX): by default each thread that
 * allocates gets its own (V8's compiler and GC workers, libuv's), which held 10-19 MiB of freed
 * memory at the bench's peak; with two they held 3 MiB, and the sidecar's peak RSS fell by 10-30
 * MiB at no CPU cost per transaction we could measure (README "Node's heap").
 */
export const SIDECAR_MALLOC_ARENA_MAX = '2';
/**
 * What --sidecar-node-options may hold: V8 heap sizing only. Anything that loads code (--require,
 * --import) or opens a port (--inspect) would run in every agent pod next to its credentials.
 */
const NODE_OPTION = /^--(max-semi-space-size|max-old-space-size)=[1-9][0-9]{0,5}$/;

export interface SidecarDefaults {
  resources?: V1ResourceRequirements;
  maxSpoolBytes?: number;
  /** The sidecar container's NODE_OPTIONS (none when empty); DEFAULT_SIDECAR_NODE_OPTIONS unless set. */
  nodeOptions?: string;
}

export interface SidecarSettings {
  resources: V1ResourceRequirements;
  maxSpoolBytes: number;
  /** The spool emptyDir's sizeLimit (a quantity in Mi). */
  spoolSizeLimit: string;
}

const SUFFIX: Record<string, number> = {
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  Ki: 1024,
  Mi: 1024 ** 2,
  Gi: 1024 ** 3,
  Ti: 1024 ** 4,
};

/** A Kubernetes byte quantity (1073741824, 512Mi, 2G) as bytes, or undefined. */
export function parseByteQuantity(text: string): number | undefined {
  const m = /^([0-9]{1,15})(k|M|G|T|Ki|Mi|Gi|Ti)?$/.exec(text);
  if (!m) return undefined;
  const bytes = Number(m[1]) * (SUFFIX[m[2] ?? ''] ?? Number.NaN);
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

const CPU = /^([0-9]{1,6}m|[0-9]{1,4}(\.[0-9]{1,3})?)$/;
const MEMORY = /^[0-9]{1,15}(k|M|G|T|Ki|Mi|Gi|Ti)?$/;

export function sidecarSettings(
  annotations: Record<string, string>,
  defaults: SidecarDefaults = {},
): SidecarSettings | { problem: string } {
  const base = defaults.resources ?? DEFAULT_SIDECAR_RESOURCES;
  const requests: Record<string, string> = { ...(base.requests ?? {}) };
  const limits: Record<string, string> = { ...(base.limits ?? {}) };
  const overrides: [string, Record<string, string>, 'cpu' | 'memory', RegExp][] = [
    [SIDECAR_CPU_REQUEST_ANNOTATION, requests, 'cpu', CPU],
    [SIDECAR_CPU_LIMIT_ANNOTATION, limits, 'cpu', CPU],
    [SIDECAR_MEMORY_REQUEST_ANNOTATION, requests, 'memory', MEMORY],
    [SIDECAR_MEMORY_LIMIT_ANNOTATION, limits, 'memory', MEMORY],
  ];
  for (const [annotation, target, resource, pattern] of overrides) {
    const value = annotations[annotation];
    if (value === undefined) continue;
    if (!pattern.test(value)) {
      const example = resource === 'cpu' ? '100m or 0.5' : '128Mi';
      return {
        problem: `annotation ${annotation}: ${JSON.stringify(value)} is not a ${resource} quantity like ${example}`,
      };
    }
    target[resource] = value;
  }
  let maxSpoolBytes = defaults.maxSpoolBytes ?? DEFAULT_SPOOL_BYTES;
  const spool = annotations[SPOOL_SIZE_ANNOTATION];
  if (spool !== undefined) {
    const bytes = parseByteQuantity(spool);
    if (bytes === undefined || bytes < MIN_SPOOL_BYTES) {
      return {
        problem: `annotation ${SPOOL_SIZE_ANNOTATION}: ${JSON.stringify(spool)} is not a size of at least 64Ki like 512Mi`,
      };
    }
    maxSpoolBytes = bytes;
  }
  const resources: V1ResourceRequirements = {
    ...(Object.keys(requests).length ? { requests } : {}),
    ...(Object.keys(limits).length ? { limits } : {}),
  };
  const mi = Math.ceil((maxSpoolBytes + SPOOL_HEADROOM_BYTES) / 1024 ** 2);
  return { resources, maxSpoolBytes, spoolSizeLimit: `${mi}Mi` };
}

/** The operator's --sidecar-* flags, as given. */
export interface SidecarFlags {
  cpuRequest?: string | undefined;
  cpuLimit?: string | undefined;
  memoryRequest?: string | undefined;
  memoryLimit?: string | undefined;
  spoolSize?: string | undefined;
  nodeOptions?: string | undefined;
}

/** --sidecar-node-options checked against NODE_OPTION, or a problem naming the option refused. */
export function checkNodeOptions(text: string): { nodeOptions: string } | { problem: string } {
  const options = text.split(' ').filter(Boolean);
  for (const option of options) {
    if (!NODE_OPTION.test(option)) {
      return {
        problem: `--sidecar-node-options: ${JSON.stringify(option)} is not allowed (only --max-semi-space-size=MiB, --max-old-space-size=MiB)`,
      };
    }
  }
  return { nodeOptions: options.join(' ') };
}

/** The operator's defaults from its flags, checked as the annotations are; a problem names the flag. */
export function sidecarDefaultsFrom(flags: SidecarFlags): SidecarDefaults | { problem: string } {
  const annotations: Record<string, string> = {};
  const names: [keyof SidecarFlags, string, string][] = [
    ['cpuRequest', SIDECAR_CPU_REQUEST_ANNOTATION, '--sidecar-cpu-request'],
    ['cpuLimit', SIDECAR_CPU_LIMIT_ANNOTATION, '--sidecar-cpu-limit'],
    ['memoryRequest', SIDECAR_MEMORY_REQUEST_ANNOTATION, '--sidecar-memory-request'],
    ['memoryLimit', SIDECAR_MEMORY_LIMIT_ANNOTATION, '--sidecar-memory-limit'],
    ['spoolSize', SPOOL_SIZE_ANNOTATION, '--sidecar-spool-size'],
  ];
  for (const [key, annotation] of names) {
    const value = flags[key];
    if (value !== undefined) annotations[annotation] = value;
  }
  const settings = sidecarSettings(annotations);
  if ('problem' in settings) {
    let problem = settings.problem;
    for (const [, annotation, flag] of names) problem = problem.replace(`annotation ${annotation}`, flag);
    return { problem };
  }
  const node = checkNodeOptions(flags.nodeOptions ?? DEFAULT_SIDECAR_NODE_OPTIONS);
  if ('problem' in node) return node;
  return { resources: settings.resources, maxSpoolBytes: settings.maxSpoolBytes, nodeOptions: node.nodeOptions };
}
