/**
 * The RBAC the Kubernetes authenticator needs, and what a trail reader needs: the one place these
 * rules are written down (the README shows them as YAML; the kube test runs the collector with
 * exactly these and nothing more).
 */

import { crds } from '@byline/api';
import type { V1PolicyRule } from '@kubernetes/client-node';
import { GATEWAY_RESOURCE, TRAIL_RESOURCE } from './kubernetes-authenticator.js';

/**
 * The collector's ClusterRole: review tokens and access, read AgentIdentities, and watch the
 * objects `/v1/policy` is made of (AgentIdentities, DatabaseRoutes, Approvals).
 */
export const COLLECTOR_RBAC_RULES: V1PolicyRule[] = [
  { apiGroups: ['authentication.k8s.io'], resources: ['tokenreviews'], verbs: ['create'] },
  { apiGroups: ['authorization.k8s.io'], resources: ['subjectaccessreviews'], verbs: ['create'] },
  { apiGroups: [crds.GROUP], resources: [crds.AgentIdentityKind.plural], verbs: ['get', 'list', 'watch'] },
  { apiGroups: [crds.GROUP], resources: [crds.DatabaseRouteKind.plural, 'approvals'], verbs: ['list', 'watch'] },
];

/**
 * A trail reader's ClusterRole: a ClusterRoleBinding reads every namespace's events, a RoleBinding
 * in a namespace that namespace's (queries then name it: `?namespace=NS`).
 */
export const TRAIL_READER_RBAC_RULES: V1PolicyRule[] = [
  { apiGroups: [TRAIL_RESOURCE.group], resources: [TRAIL_RESOURCE.resource], verbs: [TRAIL_RESOURCE.verb] },
];

/**
 * A gateway's ClusterRole (bound to its service account by a ClusterRoleBinding): write events for
 * the OIDC identities it verified. Grant it only to gateways; the collector trusts their verification.
 */
export const GATEWAY_WRITER_RBAC_RULES: V1PolicyRule[] = [
  { apiGroups: [GATEWAY_RESOURCE.group], resources: [GATEWAY_RESOURCE.resource], verbs: [GATEWAY_RESOURCE.verb] },
];
