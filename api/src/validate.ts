/**
 * Validation with messages that name the offending field and what was expected, e.g.
 * `routes[0].upstream.port: expected integer, got "5432x"`.
 */
import { Kind, type TSchema } from '@sinclair/typebox';
import { type TypeCheck, TypeCompiler } from '@sinclair/typebox/compiler';
import type { ValueError } from '@sinclair/typebox/errors';

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

/** A union of objects told apart by a literal field (`mode: inject`): the variant the value picked. */
function chosenVariant(schema: TSchema, value: unknown): TSchema | undefined {
  if (schema[Kind] !== 'Union' || typeof value !== 'object' || value === null) return undefined;
  for (const variant of schema.anyOf as TSchema[]) {
    const props = variant.properties as Record<string, TSchema> | undefined;
    if (!props) continue;
    const literals = Object.entries(props).filter(([, p]) => p[Kind] === 'Literal');
    if (literals.length > 0 && literals.every(([k, p]) => (value as Record<string, unknown>)[k] === p.const)) {
      return variant;
    }
  }
  return undefined;
}

function describe(error: ValueError): string {
  const schema = error.schema;
  if (schema[Kind] === 'Union') {
    const options = (schema.anyOf as TSchema[])
      .map((s) => (s[Kind] === 'Literal' ? JSON.stringify(s.const) : s[Kind] === 'Null' ? 'null' : undefined))
      .filter((s): s is string => s !== undefined);
    if (options.length === (schema.anyOf as TSchema[]).length) return `expected one of ${options.join(', ')}`;
  }
  if (error.message === 'Unexpected property') return 'unknown field';
  if (error.message === 'Expected required property') return 'required field is missing';
  return error.message.charAt(0).toLowerCase() + error.message.slice(1);
}

function collect(schema: TSchema, value: unknown, prefix: string, out: string[]): void {
  const seen = new Set<string>();
  for (const error of checker(schema).Errors(value)) {
    const path = prefix + error.path;
    if ([...seen].some((p) => path.startsWith(`${p}/`))) continue; // a parent already explains it
    const variant = chosenVariant(error.schema, error.value);
    if (variant) {
      collect(variant, error.value, path, out);
    } else {
      const missing = error.message === 'Expected required property';
      out.push(`${fieldName(path)}: ${describe(error)}${missing ? '' : `, got ${show(error.value)}`}`);
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
): import('@sinclair/typebox').Static<S> {
  if (checker(schema).Check(value)) return value as import('@sinclair/typebox').Static<S>;
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
