/**
 * Table patterns (`public.payroll*`, `*.secrets`, `audit_?`) against the names the parser gives
 * (`name`, `schema.name`, `catalog.schema.name`). Case-insensitive, and an unqualified name on
 * either side matches any schema: the sidecar does not know the session's search_path, so a deny
 * rule on `public.payroll` must also catch `payroll`.
 */

interface Compiled {
  schema: RegExp | null;
  name: RegExp;
}

const compiled = new Map<string, Compiled>();

function part(glob: string): RegExp {
  const source = glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${source}$`, 'i');
}

function compile(pattern: string): Compiled {
  let c = compiled.get(pattern);
  if (c === undefined) {
    const dot = pattern.indexOf('.');
    c =
      dot < 0
        ? { schema: null, name: part(pattern) }
        : { schema: part(pattern.slice(0, dot)), name: part(pattern.slice(dot + 1)) };
    if (compiled.size > 10_000) compiled.clear();
    compiled.set(pattern, c);
  }
  return c;
}

/** Does `table` (as the parser names it) match `pattern`? */
export function tableMatches(pattern: string, table: string): boolean {
  const parts = table.split('.');
  const name = parts[parts.length - 1] ?? '';
  const schema = parts.length >= 2 ? parts[parts.length - 2] : undefined;
  const p = compile(pattern);
  if (!p.name.test(name)) return false;
  return p.schema === null || schema === undefined || p.schema.test(schema);
}

/** The first of `tables` that some pattern matches, or null. */
export function firstMatch(patterns: readonly string[] | undefined, tables: readonly string[]): string | null {
  if (patterns === undefined || patterns.length === 0) return null;
  for (const table of tables) for (const pattern of patterns) if (tableMatches(pattern, table)) return table;
  return null;
}
