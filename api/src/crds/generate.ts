/**
 * TypeBox schema → CustomResourceDefinition (apiextensions.k8s.io/v1). Pure: no I/O; `npm run crds`
 * (write.ts) writes the result.
 *
 * The API server wants a *structural* OpenAPI v3 schema: a type on every node, objects that list
 * their properties (never `additionalProperties` beside them), no `anyOf` or `const`. So a union of
 * literals becomes `type` + `enum`, Optional decides `required`, and TypeBox's own markers (`$id`,
 * the Kind symbols) and `additionalProperties: false` are dropped: the API server prunes unknown
 * fields, or refuses them under `fieldValidation=Strict`. A keyword not known here is an error, so a
 * constraint added to a type can never silently go missing from the CRD.
 */
import { OptionalKind, type TSchema } from '@sinclair/typebox';
import type { CrdSource, PrinterColumn } from './common.js';

/** One node of a structural schema (apiextensions.k8s.io/v1 JSONSchemaProps), keys in output order. */
export type StructuralSchema = { [key: string]: unknown };

export interface CustomResourceDefinition {
  apiVersion: 'apiextensions.k8s.io/v1';
  kind: 'CustomResourceDefinition';
  metadata: { name: string; labels: Record<string, string> };
  spec: {
    group: string;
    names: {
      kind: string;
      listKind: string;
      plural: string;
      singular: string;
      shortNames: string[];
      categories?: string[];
    };
    scope: 'Namespaced';
    versions: {
      name: string;
      served: true;
      storage: true;
      subresources: { status: Record<string, never> };
      additionalPrinterColumns: PrinterColumn[];
      schema: { openAPIV3Schema: StructuralSchema };
    }[];
  };
}

/** Kept as they are, in this order (after `description`, `type` and `enum`). */
const KEPT = [
  'format',
  'default',
  'pattern',
  'minLength',
  'maxLength',
  'minimum',
  'maximum',
  'multipleOf',
  'minItems',
  'maxItems',
  'minProperties',
  'maxProperties',
] as const;

/** Read and translated below, or dropped on purpose. */
const HANDLED = new Set<string>([
  ...KEPT,
  'description',
  'type',
  'anyOf',
  'const',
  'properties',
  'required',
  'items',
  'additionalProperties',
  '$id',
]);

const SCALARS = new Set(['string', 'integer', 'number', 'boolean']);

function fail(path: string, why: string): never {
  throw new Error(`cannot translate ${path || 'the schema'} into a structural schema: ${why}`);
}

/** A union whose members are all literals of one type, e.g. T.Union([T.Literal('a'), T.Literal('b')]). */
function literalUnion(schema: TSchema, path: string): { type: string; enum: unknown[] } {
  const members = schema.anyOf as TSchema[];
  const type = members[0]?.type;
  if (typeof type !== 'string' || !SCALARS.has(type))
    fail(path, 'only unions of literals of one type (string or number) are supported');
  for (const m of members) {
    if (!('const' in m) || m.type !== type)
      fail(path, 'only unions of literals of one type (string or number) are supported');
  }
  return { type, enum: members.map((m) => m.const) };
}

/** Translates one TypeBox schema node (and everything below it). `path` names it in errors, e.g. `spec.upstream`. */
export function toStructural(schema: TSchema, path = ''): StructuralSchema {
  for (const key of Object.keys(schema)) {
    if (!HANDLED.has(key) && !key.startsWith('x-kubernetes-')) fail(path, `the keyword "${key}" is not supported`);
  }
  const out: StructuralSchema = {};
  if (typeof schema.description === 'string') out.description = schema.description;

  if (Array.isArray(schema.anyOf)) {
    Object.assign(out, literalUnion(schema, path));
  } else if ('const' in schema) {
    if (typeof schema.type !== 'string' || !SCALARS.has(schema.type))
      fail(path, 'a literal must be a string or number');
    Object.assign(out, { type: schema.type, enum: [schema.const] });
  } else if (
    typeof schema.type === 'string' &&
    (SCALARS.has(schema.type) || schema.type === 'object' || schema.type === 'array')
  ) {
    out.type = schema.type;
  } else {
    fail(
      path,
      `every node needs one type of string, integer, number, boolean, object or array (got ${JSON.stringify(schema.type)})`,
    );
  }

  for (const key of KEPT) if (schema[key] !== undefined) out[key] = schema[key];

  if (out.type === 'object') Object.assign(out, objectParts(schema, path));
  if (out.type === 'array') {
    if (schema.items === undefined || Array.isArray(schema.items)) fail(path, 'an array needs one items schema');
    out.items = toStructural(schema.items as TSchema, `${path}[]`);
  }

  for (const [key, value] of Object.entries(schema)) if (key.startsWith('x-kubernetes-')) out[key] = value;
  return out;
}

function objectParts(schema: TSchema, path: string): StructuralSchema {
  const parts: StructuralSchema = {};
  const props = (schema.properties ?? {}) as Record<string, TSchema>;
  const extra = schema.additionalProperties;
  if (extra !== undefined && extra !== false) {
    // A map (T.Record-like): structural schemas allow additionalProperties only without properties.
    if (Object.keys(props).length > 0 || typeof extra !== 'object') {
      fail(path, 'additionalProperties is supported only as the schema of a map without properties');
    }
    parts.additionalProperties = toStructural(extra as TSchema, `${path}.*`);
  }
  if (Object.keys(props).length > 0) {
    parts.properties = Object.fromEntries(
      Object.entries(props).map(([name, prop]) => [name, toStructural(prop, path ? `${path}.${name}` : name)]),
    );
  }
  // The API server applies defaults before it validates, so a defaulted field is never missing;
  // leaving it out of `required` lets `kubectl explain` show it as optional, which it is to a user.
  const required = ((schema.required ?? []) as string[]).filter((name) => {
    const prop = props[name];
    return prop !== undefined && prop[OptionalKind] !== 'Optional' && prop.default === undefined;
  });
  if (required.length > 0) parts.required = required;
  return parts;
}

/** The whole CustomResourceDefinition for one resource: one served and stored version, status subresource. */
export function crdFor(source: CrdSource): CustomResourceDefinition {
  const { resource: r } = source;
  const root: StructuralSchema = {
    description: source.description,
    type: 'object',
    properties: {
      apiVersion: { description: `${r.group}/${r.version}`, type: 'string' },
      kind: { description: r.kind, type: 'string' },
      metadata: { type: 'object' },
      spec: toStructural(source.spec, 'spec'),
      status: toStructural(source.status, 'status'),
    },
    required: ['spec'],
  };
  if (source.validations && source.validations.length > 0) root['x-kubernetes-validations'] = source.validations;
  const names = {
    kind: r.kind,
    listKind: r.listKind,
    plural: r.plural,
    singular: r.singular,
    shortNames: r.shortNames,
    ...(r.categories ? { categories: r.categories } : {}),
  };
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${r.plural}.${r.group}`, labels: { 'app.kubernetes.io/part-of': 'byline' } },
    spec: {
      group: r.group,
      names,
      scope: 'Namespaced',
      versions: [
        {
          name: r.version,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: source.printerColumns,
          schema: { openAPIV3Schema: root },
        },
      ],
    },
  };
}
