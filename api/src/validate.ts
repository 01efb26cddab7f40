/**
 * Validation with messages that name the offending field and what was expected, e.g.
 * `routes[0].upstream.port: expected integer, got "5432x"`.
 */
import { Kind, type TSchema } from '@sinclair/typebox';
import { type TypeCheck, TypeCompiler } from '@sinclair/typebox/compiler';
import { type ValueError, ValueErrorType } from '@sinclair/typebox/errors';

export class ValidationError extends Error {
  constructor(
    readonly what: string,
    readonly problems: string[],
  ) {
    super(`invalid ${what}:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ValidationError';
  }
}

const compiled = new WeakMap<TSchema, TypeCheck<TSchema>>();
function checker(schema: TSchema): TypeCheck<TSchema> {
  let c = compiled.get(schema);
  if (!c) {
    c = TypeCompiler.Compile(schema);
    compiled.set(schema, c);
  }
  return c;
}

/** `/routes/0/upstream/port` → `routes[0].upstream.port` */
export function fieldName(pointer: string): string {
  if (pointer === '') return '(top level)';
  return pointer
    .slice(1)
    .split('/')
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((acc, part) => (/^\d+$/.test(part) ? `${acc}[${part}]` : acc ? `${acc}.${part}` : part), '');
}

function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  const s = JSON.stringify(value);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

const literalList = (values: unknown[]) => values.map((v) => JSON.stringify(v)).join(', ');

/**
 * The variant a value picked: in a union of objects told apart by a literal field (`mode: inject`),
 * or in a nullable value (`X | null`) that is not null, so the message names the field inside.
 */
function chosenVariant(schema: TSchema, value: unknown): TSchema | undefined {
  if (schema[Kind] !== 'Union' || value === null) return undefined;
  const notNull = (schema.anyOf as TSchema[]).filter((v) => v[Kind] !== 'Null');
  if (notNull.length === 1 && notNull.length < (schema.anyOf as TSchema[]).length) {
    const only = notNull[0]!;
    const kind = only[Kind];
    // Only where the inner schema explains more than "expected X, got Y" would.
    if ((kind === 'Object' && typeof value === 'object') || (kind === 'Array' && Array.isArray(value))) return only;
    return undefined;
  }
  if (typeof value !== 'object') return undefined;
  for (const variant of schema.anyOf as TSchema[]) {
    const props = variant.properties as Record<string, TSchema> | undefined;
    if (!props) continue;
    const literals = Object.entries(props).filter(([, p]) => p[Kind] === 'Literal');
    if (literals.length > 0 && literals.every(([k, p]) => (value as Record<string, unknown>)[k] === p.const)) {
      return variant;
    }
  }
  // Objects told apart by which key they have (`identity: { static } | { kubernetes }`): the one
  // variant whose required keys are all there.
  const keys = Object.keys(value as object);
  const byKeys = (schema.anyOf as TSchema[]).filter((variant) => {
    const required = (variant.required as string[] | undefined) ?? [];
    return variant[Kind] === 'Object' && required.length > 0 && required.every((k) => keys.includes(k));
  });
  return byKeys.length === 1 ? byKeys[0] : undefined;
}

/** The field every variant of a union of objects sets to its own literal (`mode`), and the literals. */
function discriminator(schema: TSchema): { key: string; values: unknown[] } | undefined {
  if (schema[Kind] !== 'Union') return undefined;
  const variants = schema.anyOf as TSchema[];
  const first = variants[0]?.properties as Record<string, TSchema> | undefined;
  if (!first) return undefined;
  for (const [key, p] of Object.entries(first)) {
    if (p[Kind] !== 'Literal') continue;
    const values = variants.map((v) => (v.properties as Record<string, TSchema> | undefined)?.[key]);
    if (values.every((x) => x?.[Kind] === 'Literal')) return { key, values: values.map((x) => x!.const) };
  }
  return undefined;
}

/** Edit distance, for "did you mean" on unknown fields. */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row.push(Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1)));
    }
    prev = row;
  }
  return prev[b.length]!;
}

function unknownField(error: ValueError): string {
  const key = error.path
    .slice(error.path.lastIndexOf('/') + 1)
    .replace(/~1/g, '/')
    .replace(/~0/g, '~');
  const known = Object.keys((error.schema.properties as Record<string, TSchema> | undefined) ?? {});
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const k of known) {
    const d = k.toLowerCase() === key.toLowerCase() ? 0 : distance(key, k);
    if (d < bestDistance) [best, bestDistance] = [k, d];
  }
  if (best !== undefined && bestDistance <= Math.max(2, Math.floor(best.length / 3))) {
    return `unknown field (did you mean "${best}"?)`;
  }
  return known.length > 0 ? `unknown field (known fields: ${known.join(', ')})` : 'unknown field';
}

function describe(error: ValueError): string {
  const schema = error.schema;
  switch (error.type) {
    case ValueErrorType.ObjectAdditionalProperties:
      return unknownField(error);
    case ValueErrorType.ObjectRequiredProperty:
      return 'required field is missing';
    case ValueErrorType.StringPattern:
      // The pattern itself means little to a reader; the schema's description says what it wants.
      if (typeof schema.description === 'string') return `expected ${schema.description}`;
      break;
    case ValueErrorType.StringMinLength:
      if (schema.minLength === 1) return 'expected a non-empty string';
      break;
    case ValueErrorType.ArrayMinItems:
      return `expected at least ${schema.minItems} item${schema.minItems === 1 ? '' : 's'}`;
    case ValueErrorType.Union: {
      const variants = schema.anyOf as TSchema[];
      if (variants.every((s) => s[Kind] === 'Literal'))
        return `expected one of ${literalList(variants.map((s) => s.const))}`;
      const kinds = [
        ...new Set(
          variants.map((s) =>
            s[Kind] === 'Literal' ? JSON.stringify(s.const) : String(s.type ?? s[Kind]).toLowerCase(),
          ),
        ),
      ];
      return `expected one of: ${kinds.join(', ')}`;
    }
  }
  return error.message.charAt(0).toLowerCase() + error.message.slice(1);
}

function collect(schema: TSchema, value: unknown, prefix: string, out: string[]): void {
  const seen = new Set<string>();
  const missing = new Set<string>();
  for (const error of checker(schema).Errors(value)) {
    const path = prefix + error.path;
    if ([...seen].some((p) => path.startsWith(`${p}/`))) continue; // a parent already explains it
    if (missing.has(path)) continue; // "missing" says it all; "expected object, got nothing" adds nothing
    const variant = chosenVariant(error.schema, error.value);
    const tag = variant ? undefined : discriminator(error.schema);
    if (variant) {
      collect(variant, error.value, path, out);
    } else if (tag && typeof error.value === 'object' && error.value !== null && !Array.isArray(error.value)) {
      // No variant matched: the tag field is what is wrong (`mode: injct`, or no `mode` at all).
      const got = (error.value as Record<string, unknown>)[tag.key];
      const field = fieldName(`${path}/${tag.key}`);
      out.push(
        got === undefined
          ? `${field}: required field is missing (one of ${literalList(tag.values)})`
          : `${field}: expected one of ${literalList(tag.values)}, got ${show(got)}`,
      );
    } else if (tag) {
      out.push(
        `${fieldName(path)}: expected an object with ${tag.key}: ${literalList(tag.values)}, got ${show(error.value)}`,
      );
    } else {
      const silentValue =
        error.type === ValueErrorType.ObjectRequiredProperty ||
        error.type === ValueErrorType.ObjectAdditionalProperties;
      out.push(`${fieldName(path)}: ${describe(error)}${silentValue ? '' : `, got ${show(error.value)}`}`);
      if (error.type === ValueErrorType.ObjectRequiredProperty) missing.add(path);
    }
    seen.add(path);
    if (out.length >= 20) return;
  }
}

/** Returns `value` typed by `schema`, or throws a ValidationError listing every problem. */
export function validate<S extends TSchema>(
  schema: S,
  value: unknown,
  what: string,
  /** Rules a schema cannot say (one of two fields, unique names), run once the schema holds. */
  rules?: (value: import('@sinclair/typebox').Static<S>) => string[],
): import('@sinclair/typebox').Static<S> {
  if (checker(schema).Check(value)) {
    const problems = rules?.(value as import('@sinclair/typebox').Static<S>) ?? [];
    if (problems.length > 0) throw new ValidationError(what, problems);
    return value as import('@sinclair/typebox').Static<S>;
  }
  const problems: string[] = [];
  collect(schema, value, '', problems);
  if (problems.length === 0) problems.push('does not match the schema');
  throw new ValidationError(what, [...new Set(problems)]);
}

/** Cheap boolean check for hot paths (e.g. a batch of events): no messages built. */
export function isValid(schema: TSchema, value: unknown): boolean {
  return checker(schema).Check(value);
}

/** Problems for one value, for reporting per item in a batch. */
export function problemsOf(schema: TSchema, value: unknown): string[] {
  if (checker(schema).Check(value)) return [];
  const problems: string[] = [];
  collect(schema, value, '', problems);
  return problems.length ? problems : ['does not match the schema'];
}
