/**
 * Pod injection as a pure function: the pod, its namespace and that namespace's AgentIdentities and
 * DatabaseRoutes in; a decision with a machine-readable reason and an RFC 6902 patch out. The
 * admission webhook answers with it; nothing here reads the cluster.
 *
 * In a labelled namespace, in this order: a pod that is not to be injected (it does not ask, and the
 * namespace does not require it) may carry nothing of the sidecar's and reach none of its secrets;
 * one that is must be injectable (network, process namespace, identity, routes); one that already
 * carries an injection must carry exactly ours (./verify.ts); then nothing else in it may reach the
 * sidecar's secrets (./exposure.ts), and it is patched.
 */
import { DEFAULT_DRAIN_SECONDS, problemsOf, type SidecarConfig, SidecarConfigSchema } from '@byline/api';
import type { V1Container, V1EnvVar, V1PodSpec } from '@kubernetes/client-node';
import {
  ACCEPT_ANY_USER_ANNOTATION,
  ALLOW_SHARED_PROCESS_NAMESPACE_ANNOTATION,
  DEFAULT_SERVICE_ACCOUNT,
  INJECT_ANNOTATION,
  INJECTED_ANNOTATION,
  INJECTED_ANNOTATION_VERSION,
  INJECTION_LABEL,
  INJECTION_LABEL_VALUE,
  INJECTION_REQUIRED_VALUE,
  METRICS_PORT,
  SIDECAR_NAME,
  SPOOL_CLAIM_PREFIX,
  SPOOL_VOLUME_ANNOTATION,
} from './constants.js';
import { containersOf, findExposure, type Guarded, routeSecretsOf } from './exposure.js';
import { type JsonPatchOperation, pointer } from './json-patch.js';
import { renderAppEnv, renderConfig, renderSidecarContainer, renderVolumes } from './render.js';
import { type ResolvedRoute, resolveRoute } from './routes.js';
import { sidecarSettings } from './sidecar-settings.js';
import type {
  AgentIdentity,
  DatabaseRoute,
  InjectionInput,
  InjectionOptions,
  InjectionReason,
  InjectionResult,
} from './types.js';
import { forgeryOf } from './verify.js';

export { renderSidecarConfig } from './render.js';
export type { AgentIdentity, DatabaseRoute, InjectionInput, InjectionOptions, InjectionReason, InjectionResult };

// A PersistentVolumeClaim name (RFC 1123 subdomain).
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

const quote = (names: string[]) => names.map((n) => `"${n}"`).join(', ');

function skipped(reason: InjectionReason, message: string): InjectionResult {
  return { outcome: 'skipped', reason, message, patch: [] };
}

function refused(reason: InjectionReason, message: string, identity?: string): InjectionResult {
  return { outcome: 'refused', reason, message, patch: [], ...(identity ? { identity } : {}) };
}

/** The annotation value recording an injection. */
export function injectedAnnotation(identity: string, routes: string[]): string {
  return JSON.stringify({ identity, routes, version: INJECTED_ANNOTATION_VERSION });
}

/** The pod's service account, as the ServiceAccount admission plugin would default it. */
export function serviceAccountOf(spec: V1PodSpec | undefined): string {
  return spec?.serviceAccountName || spec?.serviceAccount || DEFAULT_SERVICE_ACCOUNT;
}

/** The AgentIdentities of the namespace claiming a service account. */
export function identitiesClaiming(identities: AgentIdentity[], namespace: string, serviceAccount: string) {
  return identities.filter(
    (i) =>
      (i.metadata?.namespace === undefined || i.metadata.namespace === namespace) &&
      (i.spec?.serviceAccounts ?? []).includes(serviceAccount),
  );
}

export function mutatePod(input: InjectionInput): InjectionResult {
  const { pod, namespace, options } = input;
  const annotations = pod.metadata?.annotations ?? {};
  const spec: V1PodSpec = pod.spec ?? { containers: [] };
  const ns = namespace.name;
  const policy = namespace.labels[INJECTION_LABEL];
  const asked = annotations[INJECT_ANNOTATION] === 'true';

  if (policy !== INJECTION_LABEL_VALUE && policy !== INJECTION_REQUIRED_VALUE) {
    if (!asked) {
      return skipped('NotRequested', `the pod does not ask for injection (annotation ${INJECT_ANNOTATION}: "true")`);
    }
    return skipped(
      'NamespaceNotEnabled',
      `namespace "${ns}" is not labelled ${INJECTION_LABEL}=${INJECTION_LABEL_VALUE} (or ${INJECTION_REQUIRED_VALUE}), so the pod is not injected`,
    );
  }

  const serviceAccount = serviceAccountOf(spec);
  const claiming = identitiesClaiming(input.identities, ns, serviceAccount);
  // Under `required`, a claimed service account is injected whether or not the pod asks.
  const required = policy === INJECTION_REQUIRED_VALUE && claiming.length > 0;
  const spoolClaim = annotations[SPOOL_VOLUME_ANNOTATION];
  const guarded: Guarded = {
    routeSecrets: routeSecretsOf(input.routes),
    sidecarVolumes: new Set(),
  };
  const marker = markerOf(spec, annotations);

  if (!asked && !required) {
    // Not injected, so nothing of the sidecar's may be here, and no container may hold what it guards.
    if (marker) {
      return refused(
        'ForgedInjection',
        `the pod carries ${marker} but is not being injected: only byline's webhook adds them`,
      );
    }
    const exposure = findExposure(spec, guarded);
    if (exposure) return refused(exposure.reason, exposure.message);
    return skipped('NotRequested', `the pod does not ask for injection (annotation ${INJECT_ANNOTATION}: "true")`);
  }
  if (required && annotations[INJECT_ANNOTATION] !== undefined && !asked) {
    return refused(
      'InjectionRequired',
      `namespace "${ns}" is labelled ${INJECTION_LABEL}=${INJECTION_REQUIRED_VALUE} and service account ` +
        `"${serviceAccount}" is claimed by an AgentIdentity, so its pods are always injected; ` +
        `remove the annotation ${INJECT_ANNOTATION}: ${JSON.stringify(annotations[INJECT_ANNOTATION])}`,
    );
  }
  if (spec.hostNetwork === true) {
    return refused(
      'HostNetwork',
      'a pod with hostNetwork: true cannot be injected: every process on the node could reach the sidecar on ' +
        '127.0.0.1 and act with its database credentials',
    );
  }
  if (spec.shareProcessNamespace === true && annotations[ALLOW_SHARED_PROCESS_NAMESPACE_ANNOTATION] !== 'true') {
    return refused(
      'SharedProcessNamespace',
      "a pod with shareProcessNamespace: true cannot be injected: its containers could read the sidecar's " +
        `credentials and token; to accept that, annotate it ${ALLOW_SHARED_PROCESS_NAMESPACE_ANNOTATION}: "true"`,
    );
  }

  const [identity] = claiming;
  if (!identity) {
    return refused(
      'NoIdentity',
      `no AgentIdentity in namespace "${ns}" claims service account "${serviceAccount}"; ` +
        `list it in the spec.serviceAccounts of the AgentIdentity this pod acts as`,
    );
  }
  if (claiming.length > 1) {
    const names = claiming.map((i) => i.metadata.name).sort();
    return refused(
      'IdentityConflict',
      `service account "${serviceAccount}" is claimed by ${names.length} AgentIdentities in namespace "${ns}": ` +
        `${quote(names)}; exactly one may claim it`,
    );
  }
  const identityName = identity.metadata.name;
  const refuse = (reason: InjectionReason, message: string) => refused(reason, message, identityName);

  const wanted = (identity.spec.routes ?? []).map((r) => r.name);
  const byName = new Map(input.routes.map((r) => [r.metadata?.name, r]));
  const missing = wanted.filter((name) => !byName.has(name));
  if (missing.length > 0) {
    return refuse(
      'RouteNotFound',
      `AgentIdentity "${identityName}" uses DatabaseRoute${missing.length > 1 ? 's' : ''} ${quote(missing)}, ` +
        `which ${missing.length > 1 ? 'do' : 'does'} not exist in namespace "${ns}"`,
    );
  }
  if (wanted.length === 0) {
    return refuse('RouteNotFound', `AgentIdentity "${identityName}" has no routes`);
  }
  const routes: ResolvedRoute[] = [];
  for (const name of wanted) {
    const r = resolveRoute(byName.get(name)!);
    if ('problems' in r)
      return refuse('InvalidRoute', `DatabaseRoute "${name}" cannot be used: ${r.problems.join('; ')}`);
    routes.push(r);
  }
  const envClash = findEnvClash(routes);
  if (envClash) return refuse('InvalidRoute', envClash);
  if (spoolClaim !== undefined && !(spoolClaim.length <= 253 && DNS_SUBDOMAIN.test(spoolClaim))) {
    return refuse(
      'InvalidSpoolVolume',
      `annotation ${SPOOL_VOLUME_ANNOTATION}: ${JSON.stringify(spoolClaim)} is not a PersistentVolumeClaim name`,
    );
  }
  if (spoolClaim !== undefined && !spoolClaim.startsWith(SPOOL_CLAIM_PREFIX)) {
    return refuse(
      'InvalidSpoolVolume',
      `annotation ${SPOOL_VOLUME_ANNOTATION}: the claim "${spoolClaim}" must be named ${SPOOL_CLAIM_PREFIX}…, ` +
        'so that the webhook can refuse it to every other pod',
    );
  }

  const settings = sidecarSettings(annotations, options.sidecar);
  if ('problem' in settings) return refuse('InvalidSidecarSettings', settings.problem);
  const acceptAnyUser = annotations[ACCEPT_ANY_USER_ANNOTATION];
  if (acceptAnyUser !== undefined && acceptAnyUser !== 'true' && acceptAnyUser !== 'false') {
    return refuse(
      'InvalidSidecarSettings',
      `annotation ${ACCEPT_ANY_USER_ANNOTATION}: ${JSON.stringify(acceptAnyUser)} is neither "true" nor "false"`,
    );
  }
  const config = renderConfig(identity, routes, options, settings.maxSpoolBytes, acceptAnyUser === 'true');
  const problems = problemsOf(SidecarConfigSchema, config);
  if (problems.length > 0) {
    return refuse(
      'InvalidRoute',
      `the sidecar config rendered for AgentIdentity "${identityName}" is invalid: ${problems.join('; ')}`,
    );
  }
  const routeNames = routes.map((r) => r.name);
  const sidecar = renderSidecarContainer(config, routes, options, settings.resources);
  const volumes = renderVolumes(routes, spoolClaim, spoolClaim ? undefined : settings.spoolSizeLimit);
  const annotation = injectedAnnotation(identityName, routeNames);

  if (marker) {
    // A reinvocation (another webhook changed the pod after us) or a copy of an injected pod: fine
    // only when it is exactly what we would inject now, and nothing else reaches the sidecar's things.
    const forgery = forgeryOf(spec, annotations, { sidecar, volumes, annotation }, guarded);
    if (forgery) {
      return refuse('ForgedInjection', `the pod carries ${marker}, but ${forgery}: only byline's webhook adds them`);
    }
    const own = (spec.initContainers ?? []).find((c) => c.name === SIDECAR_NAME);
    const exposure = findExposure(spec, { ...guarded, sidecarVolumes: new Set(volumes.map((v) => v.name)) }, own);
    if (exposure) return refuse(exposure.reason, exposure.message);
    return {
      outcome: 'skipped',
      reason: 'AlreadyInjected',
      message: `the pod already carries exactly what this webhook injects for AgentIdentity "${identityName}"`,
      patch: [],
      identity: identityName,
    };
  }
  const exposure = findExposure(spec, guarded);
  if (exposure) return refuse(exposure.reason, exposure.message);
  const hostPath = (spec.volumes ?? []).find((v) => v.hostPath);
  if (hostPath) {
    return refuse(
      'HostPathVolume',
      `volume "${hostPath.name}" is a hostPath: through the node's filesystem a container could read the ` +
        "sidecar's Secret volumes, so a pod with one cannot be injected",
    );
  }
  const portClash = findPortClash(routes, spec);
  if (portClash) return refuse('ListenPortConflict', portClash);

  const patch = [
    // The identity was chosen for this service account, and a projected token needs one named: pin
    // it where the pod relies on the default (the ServiceAccount admission plugin may not have run).
    ...(spec.serviceAccountName
      ? []
      : [{ op: 'add' as const, path: pointer('spec', 'serviceAccountName'), value: serviceAccount }]),
    ...envPatch(spec, renderAppEnv(identityName, routes)),
    ...sidecarPatch(spec, sidecar, volumes),
    ...gracePeriodPatch(spec, config),
    ...pullSecretsPatch(spec, options.imagePullSecrets ?? []),
    ...annotationPatch(pod.metadata?.annotations, annotation),
  ];
  return {
    outcome: 'injected',
    reason: 'Injected',
    message: `injected ${SIDECAR_NAME} for AgentIdentity "${identityName}" with route${routeNames.length > 1 ? 's' : ''} ${routeNames.join(', ')}`,
    patch,
    identity: identityName,
  };
}

/** What in the pod claims it was injected already, or undefined. */
function markerOf(spec: V1PodSpec, annotations: Record<string, string>): string | undefined {
  const found: string[] = [];
  if (annotations[INJECTED_ANNOTATION] !== undefined) found.push(`the annotation ${INJECTED_ANNOTATION}`);
  if (containersOf(spec).some((c) => c.container.name === SIDECAR_NAME))
    found.push(`a container named ${SIDECAR_NAME}`);
  return found.length > 0 ? found.join(' and ') : undefined;
}

/** Two routes setting the same variable would leave the app pointed at only one of them. */
function findEnvClash(routes: ResolvedRoute[]): string | undefined {
  const owner = new Map<string, string>();
  for (const r of routes) {
    for (const name of [r.env.host, r.env.port, r.env.url, r.env.user]) {
      if (!name) continue;
      const other = owner.get(name);
      if (other === r.name) return `DatabaseRoute "${r.name}" sets ${name} twice`;
      if (other) return `DatabaseRoutes "${other}" and "${r.name}" both set ${name}`;
      owner.set(name, r.name);
    }
  }
  return undefined;
}

/** Every container of a pod shares its network namespace, so a port is either the sidecar's or the app's. */
function findPortClash(routes: ResolvedRoute[], spec: V1PodSpec): string | undefined {
  const used = new Map<number, string>();
  for (const c of [...(spec.initContainers ?? []), ...spec.containers]) {
    for (const p of c.ports ?? []) if (!used.has(p.containerPort)) used.set(p.containerPort, c.name);
  }
  const container = used.get(METRICS_PORT);
  if (container) return `container "${container}" uses port ${METRICS_PORT}, which the sidecar's metrics listen on`;
  const listening = new Map<number, string>();
  for (const r of routes) {
    if (r.listenPort === METRICS_PORT) {
      return `DatabaseRoute "${r.name}" listens on port ${METRICS_PORT}, which the sidecar's metrics listen on`;
    }
    const other = listening.get(r.listenPort);
    if (other) return `DatabaseRoutes "${other}" and "${r.name}" both listen on port ${r.listenPort}`;
    listening.set(r.listenPort, r.name);
    const app = used.get(r.listenPort);
    if (app) return `DatabaseRoute "${r.name}" listens on port ${r.listenPort}, which container "${app}" already uses`;
  }
  return undefined;
}

/** Point every existing container (regular and init) at the sidecar: replace same-named variables, add the rest. */
function envPatch(spec: V1PodSpec, vars: V1EnvVar[]): JsonPatchOperation[] {
  if (vars.length === 0) return [];
  const ops: JsonPatchOperation[] = [];
  const lists: [string, V1Container[] | undefined][] = [
    ['initContainers', spec.initContainers],
    ['containers', spec.containers],
  ];
  for (const [list, containers] of lists) {
    (containers ?? []).forEach((c, i) => {
      if (!c.env) {
        ops.push({ op: 'add', path: pointer('spec', list, i, 'env'), value: vars });
        return;
      }
      for (const v of vars) {
        // Every occurrence: with duplicates the last one wins, so one left behind would still win.
        let found = false;
        c.env.forEach((existing, j) => {
          if (existing.name !== v.name) return;
          found = true;
          ops.push({ op: 'replace', path: pointer('spec', list, i, 'env', j), value: v });
        });
        if (!found) ops.push({ op: 'add', path: pointer('spec', list, i, 'env', '-'), value: v });
      }
    });
  }
  return ops;
}

/** The sidecar goes first among init containers, so init containers after it can use the database. */
function sidecarPatch(
  spec: V1PodSpec,
  sidecar: V1Container,
  volumes: NonNullable<V1PodSpec['volumes']>,
): JsonPatchOperation[] {
  const ops: JsonPatchOperation[] = [];
  if (spec.initContainers) ops.push({ op: 'add', path: pointer('spec', 'initContainers', 0), value: sidecar });
  else ops.push({ op: 'add', path: pointer('spec', 'initContainers'), value: [sidecar] });
  if (spec.volumes) {
    for (const v of volumes) ops.push({ op: 'add', path: pointer('spec', 'volumes', '-'), value: v });
  } else {
    ops.push({ op: 'add', path: pointer('spec', 'volumes'), value: volumes });
  }
  return ops;
}

/** Kubernetes' grace period for a pod that names none. */
const KUBERNETES_DEFAULT_GRACE_SECONDS = 30;
/**
 * Beyond the sidecar's drain: its own exit, and a little of the app's shutdown (a native sidecar is
 * signalled only after the app containers have stopped, within the same grace period).
 */
export const GRACE_MARGIN_SECONDS = 5;

/**
 * Room for the sidecar to ship its spool on shutdown: raise terminationGracePeriodSeconds to the
 * drain time plus a margin when the pod asks for less; a larger value is the pod's and stays.
 */
function gracePeriodPatch(spec: V1PodSpec, config: SidecarConfig): JsonPatchOperation[] {
  const needed = (config.audit.drainSeconds ?? DEFAULT_DRAIN_SECONDS) + GRACE_MARGIN_SECONDS;
  const asked = spec.terminationGracePeriodSeconds;
  if ((asked ?? KUBERNETES_DEFAULT_GRACE_SECONDS) >= needed) return [];
  const path = pointer('spec', 'terminationGracePeriodSeconds');
  return [asked === undefined ? { op: 'add', path, value: needed } : { op: 'replace', path, value: needed }];
}

function annotationPatch(annotations: Record<string, string> | undefined, value: string): JsonPatchOperation[] {
  if (!annotations)
    return [{ op: 'add', path: pointer('metadata', 'annotations'), value: { [INJECTED_ANNOTATION]: value } }];
  return [{ op: 'add', path: pointer('metadata', 'annotations', INJECTED_ANNOTATION), value }];
}

/** The sidecar image's pull secrets the pod does not list yet (the app's own are kept as they are). */
function pullSecretsPatch(spec: V1PodSpec, names: string[]): JsonPatchOperation[] {
  const have = new Set((spec.imagePullSecrets ?? []).map((s) => s.name));
  const missing = [...new Set(names)].filter((n) => !have.has(n));
  if (missing.length === 0) return [];
  if (!spec.imagePullSecrets) {
    return [{ op: 'add', path: pointer('spec', 'imagePullSecrets'), value: missing.map((name) => ({ name })) }];
  }
  return missing.map((name) => ({
    op: 'add' as const,
    path: pointer('spec', 'imagePullSecrets', '-'),
    value: { name },
  }));
}
