/** The injector's inputs and its answer. */
import type { crds } from '@byline/api';
import type { V1Pod } from '@kubernetes/client-node';
import type { ExposureReason } from './exposure.js';
import type { JsonPatchOperation } from './json-patch.js';
import type { SidecarDefaults } from './sidecar-settings.js';

export type AgentIdentity = crds.AgentIdentity;
export type DatabaseRoute = crds.DatabaseRoute;

export interface InjectionOptions {
  /** The sidecar image (the operator's default is DEFAULT_SIDECAR_IMAGE). */
  image: string;
  /** The collector's base URL, for both /v1/whoami and the event sink. */
  collectorUrl: string;
  /** The collector's CA bundle (PEM), written inline into every sidecar's config; none: the system's trust store. */
  collectorCaPem?: string;
  imagePullPolicy?: string;
  /** The sidecar's resources and spool bound unless a pod's annotations say otherwise. */
  sidecar?: SidecarDefaults;
  /** Secrets for pulling the sidecar image, added to injected pods' imagePullSecrets. */
  imagePullSecrets?: string[];
}

export interface InjectionInput {
  /** The pod as the API server sent it (before injection). */
  pod: V1Pod;
  /** The namespace the pod is created in (the admission request's, not the pod's metadata). */
  namespace: { name: string; labels: Record<string, string> };
  /** The AgentIdentities and DatabaseRoutes of that namespace. */
  identities: AgentIdentity[];
  routes: DatabaseRoute[];
  options: InjectionOptions;
}

/** Machine-readable reasons, for Events, metrics labels and admission messages. */
export type InjectionReason =
  | 'Injected'
  | 'NotRequested'
  | 'NamespaceNotEnabled'
  | 'AlreadyInjected'
  | 'NoIdentity'
  | 'IdentityConflict'
  | 'RouteNotFound'
  | 'InvalidRoute'
  | 'ListenPortConflict'
  | 'SharedProcessNamespace'
  | 'HostNetwork'
  | 'HostPathVolume'
  | 'ForgedInjection'
  | 'InjectionRequired'
  | 'InvalidSpoolVolume'
  | 'EphemeralContainersAllowed'
  | 'InvalidSidecarSettings'
  | ExposureReason;

export interface InjectionResult {
  outcome: 'injected' | 'skipped' | 'refused';
  reason: InjectionReason;
  /** What a person needs to know (no "byline: " prefix; the admission answer adds it). */
  message: string;
  /** RFC 6902 against the incoming pod; empty unless injected. */
  patch: JsonPatchOperation[];
  /** The AgentIdentity, once one was found. */
  identity?: string;
}
