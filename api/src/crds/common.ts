/**
 * Shared pieces of Byline's custom resources (group byline.dev, version v1alpha1). The schemas
 * here are the one source of truth: crds/*.yaml is generated from them (npm run crds) and a test
 * fails when the two drift.
 */
import { type Static, Type as T, type TSchema } from '@sinclair/typebox';

export const GROUP = 'byline.dev';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;

/** What a CRD needs to be generated and addressed, registered next to its type. */
export interface ResourceKind {
  group: typeof GROUP;
  version: typeof VERSION;
  kind: string;
  plural: string;
  singular: string;
  shortNames: string[];
  listKind: string;
}

/** A Kubernetes name (RFC 1123 subdomain label as used for most objects). */
export const K8sName = (description: string) =>
  T.String({ minLength: 1, maxLength: 253, pattern: '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$', description });

/** The standard condition shape (metav1.Condition). */
export const Condition = T.Object(
  {
    type: T.String({ description: 'Condition type, e.g. Ready.' }),
    status: T.Union([T.Literal('True'), T.Literal('False'), T.Literal('Unknown')]),
    reason: T.String({ description: 'Machine-readable reason in CamelCase, e.g. SecretNotFound.' }),
    message: T.String({ description: 'What a person needs to know.' }),
    lastTransitionTime: T.String({ format: 'date-time' }),
    observedGeneration: T.Optional(T.Integer({ minimum: 0 })),
  },
  { additionalProperties: false },
);
export type Condition = Static<typeof Condition>;

export const Status = T.Object(
  {
    observedGeneration: T.Optional(T.Integer({ minimum: 0 })),
    conditions: T.Optional(
      T.Array(Condition, { 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] }),
    ),
  },
  { additionalProperties: false },
);

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  generation?: number;
  resourceVersion?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  creationTimestamp?: string;
}

/** A typed custom object as the API server returns it. */
export interface CustomObject<Spec, St = Static<typeof Status>> {
  apiVersion: typeof API_VERSION;
  kind: string;
  metadata: ObjectMeta;
  spec: Spec;
  status?: St;
}

/** A CEL rule and the message the API server answers with when it fails. */
export function cel(rule: string, message: string): { rule: string; message: string } {
  return { rule, message };
}

export type { Static, TSchema };
