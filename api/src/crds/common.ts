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
  /** Groups for `kubectl get <category>`; ours are all in `byline`. */
  categories?: string[];
}

/** An additional printer column: what `kubectl get` shows (the API server renders it, see the Table API). */
export interface PrinterColumn {
  name: string;
  type: 'string' | 'integer' | 'number' | 'boolean' | 'date';
  jsonPath: string;
  description?: string;
  /** 0 shows in `kubectl get`; higher only with `-o wide`. */
  priority?: number;
}

/** The Ready condition's status and reason, then Age: the last columns of every Byline resource. */
export const READY_COLUMNS: PrinterColumn[] = [
  { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
  { name: 'Reason', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].reason' },
  { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
];

/** Everything the CRD generator (generate.ts) needs about one resource, kept next to its type. */
export interface CrdSource {
  resource: ResourceKind;
  /** What the resource is for, as the CRD's schema description (`kubectl explain`). */
  description: string;
  spec: TSchema;
  status: TSchema;
  printerColumns: PrinterColumn[];
  /** CEL rules on the whole object, for checks that need `self.metadata.name`. */
  validations?: CelRule[];
  /** The file defining it, relative to the repository root, for the generated files' header. */
  sourceFile: string;
}

/** A Kubernetes name (RFC 1123 subdomain label as used for most objects). */
export const K8sName = (description: string) =>
  T.String({ minLength: 1, maxLength: 253, pattern: '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$', description });

/**
 * A DNS label (RFC 1123), for names that end up where dots are not allowed: a DatabaseRoute's name
 * is the route's name in the sidecar config and in every event's `target.route`.
 */
export const DnsLabel = (description: string) =>
  T.String({ minLength: 1, maxLength: 63, pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$', description });

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
export interface CelRule {
  rule: string;
  message: string;
  /** The field the API server names in its answer (relative to where the rule sits), when it is one field. */
  fieldPath?: string;
}

export function cel(rule: string, message: string, fieldPath?: string): CelRule {
  return fieldPath === undefined ? { rule, message } : { rule, message, fieldPath };
}

export type { Static, TSchema };
