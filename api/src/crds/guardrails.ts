/**
 * The authorization policy's shapes, one source for the CRDs (AgentIdentity, DatabaseRoute, Approval)
 * and the sidecar's config file: access levels, guardrails, and the scope an Approval unlocks.
 *
 * Classes are the AuditEvent statement classes (read/write/ddl/role/tcl/misc); DCL (GRANT, REVOKE,
 * CREATE ROLE) is `role`. Table patterns are `table` or `schema.table`, each part unquoted identifier
 * characters with `*` (any run of characters within that part) and `?` (one character) as wildcards.
 */
import { type Static, Type as T } from '@sinclair/typebox';
import { cel } from './common.js';

/** What a route lets its pods do: read < readWrite < admin. */
export const ACCESS_LEVELS = ['read', 'readWrite', 'admin'] as const;
export type Access = (typeof ACCESS_LEVELS)[number];
const ACCESS_DESCRIPTION =
  'read: statements that change neither data nor schema; readWrite: plus DML; admin: everything (DDL, roles).';
export const Access = T.Union(
  ACCESS_LEVELS.map((a) => T.Literal(a)),
  { description: ACCESS_DESCRIPTION },
);
/** The access field with a default (the CRD's readWrite, the sidecar config's own). */
export const AccessWithDefault = (fallback: Access) =>
  T.Union(
    ACCESS_LEVELS.map((a) => T.Literal(a)),
    { default: fallback, description: `${ACCESS_DESCRIPTION} Default ${fallback}.` },
  );

/** The statement classes of AuditEvent v1 (`statement.class`); DCL is `role`. */
export const STATEMENT_CLASSES = ['read', 'write', 'ddl', 'role', 'tcl', 'misc'] as const;
export type GuardedClass = (typeof STATEMENT_CLASSES)[number];

/** One part of a table pattern: identifier characters, `*` and `?`. */
const PART = '[A-Za-z_*?][A-Za-z0-9_$*?]*';
/** `table` or `schema.table`, e.g. `public.payroll*`, `audit.*`, `*_secret`. */
export const TABLE_PATTERN_REGEX = `^(${PART}[.])?${PART}$`;

const ClassList = (what: string) =>
  T.Array(
    T.Union(
      STATEMENT_CLASSES.map((c) => T.Literal(c)),
      { description: 'A statement class: read, write, ddl, role (GRANT, REVOKE, roles), tcl or misc.' },
    ),
    { maxItems: STATEMENT_CLASSES.length, 'x-kubernetes-list-type': 'set', description: what },
  );

export const TablePattern = T.String({
  minLength: 1,
  maxLength: 127,
  pattern: TABLE_PATTERN_REGEX,
  description:
    'a table pattern: "table" or "schema.table", identifier characters with * and ? as wildcards (like "public.payroll*")',
  'x-kubernetes-validations': [
    cel(
      `self.matches('${TABLE_PATTERN_REGEX}')`,
      'a table pattern is "table" or "schema.table": letters, digits, _ and $, with * and ? as wildcards (like "public.payroll*"); no quotes, spaces or other dots',
    ),
  ],
});

const TableList = (what: string) =>
  T.Array(TablePattern, { maxItems: 64, 'x-kubernetes-list-type': 'set', description: what });

/** Statement classes and tables: what `deny` refuses, what `requireApproval` gates, what an Approval unlocks. */
export const ClassesAndTables = (what: string) =>
  T.Object(
    {
      classes: T.Optional(ClassList(`Statement classes ${what}.`)),
      tables: T.Optional(TableList(`Tables ${what} (matched against every table a statement touches).`)),
    },
    { additionalProperties: false },
  );

export const REQUIRE_WHERE_COMMANDS = ['update', 'delete'] as const;

export const Guardrails = T.Object(
  {
    deny: T.Optional(ClassesAndTables('refused outright')),
    requireWhere: T.Optional(
      T.Array(
        T.Union(
          REQUIRE_WHERE_COMMANDS.map((c) => T.Literal(c)),
          { description: 'update or delete.' },
        ),
        {
          maxItems: 2,
          'x-kubernetes-list-type': 'set',
          description: 'Commands refused without a WHERE clause (or with one that is always true).',
        },
      ),
    ),
    requireApproval: T.Optional(ClassesAndTables('that run only under an active Approval')),
  },
  {
    additionalProperties: false,
    description: 'Restrictions on top of the access level; each list only ever adds restrictions.',
  },
);

export type Guardrails = Static<typeof Guardrails>;
export type ClassesAndTables = Static<ReturnType<typeof ClassesAndTables>>;

const union = <V>(a: readonly V[] | undefined, b: readonly V[] | undefined): V[] | undefined =>
  a === undefined && b === undefined ? undefined : [...new Set([...(a ?? []), ...(b ?? [])])];

function mergeSets(a: ClassesAndTables | undefined, b: ClassesAndTables | undefined): ClassesAndTables | undefined {
  if (a === undefined && b === undefined) return undefined;
  const classes = union(a?.classes, b?.classes);
  const tables = union(a?.tables, b?.tables);
  return { ...(classes ? { classes } : {}), ...(tables ? { tables } : {}) };
}

/**
 * The guardrails in force: the DatabaseRoute's defaults and the AgentIdentity's own, combined. Every
 * list only adds restrictions, so the union can tighten the route's defaults and never loosen them.
 */
export function effectiveGuardrails(...layers: Array<Guardrails | undefined>): Guardrails {
  let out: Guardrails = {};
  for (const g of layers) {
    if (!g) continue;
    const deny = mergeSets(out.deny, g.deny);
    const requireWhere = union(out.requireWhere, g.requireWhere);
    const requireApproval = mergeSets(out.requireApproval, g.requireApproval);
    out = {
      ...(deny ? { deny } : {}),
      ...(requireWhere ? { requireWhere } : {}),
      ...(requireApproval ? { requireApproval } : {}),
    };
  }
  return out;
}

/** Classes an access level allows at all (what an Approval could ever unlock through that route). */
export function classesAllowedBy(access: Access): readonly GuardedClass[] {
  if (access === 'admin') return STATEMENT_CLASSES;
  if (access === 'readWrite') return ['read', 'write', 'tcl', 'misc'];
  return ['read', 'tcl', 'misc'];
}

/**
 * Guardrails that contradict themselves or the access level, as sentences for a status condition:
 * approval required for what is denied anyway (deny wins, so no approval can unlock it), or for a
 * class the route's access never allows (an approval unlocks guardrails, not more access).
 */
export function guardrailConflicts(g: Guardrails, access: Access, where: string): string[] {
  const out: string[] = [];
  const deniedClasses = new Set(g.deny?.classes ?? []);
  const deniedTables = new Set(g.deny?.tables ?? []);
  const allowed = new Set(classesAllowedBy(access));
  for (const c of g.requireApproval?.classes ?? []) {
    if (deniedClasses.has(c))
      out.push(`${where}: class "${c}" is both denied and approval-gated; deny wins, no approval can unlock it`);
    else if (!allowed.has(c))
      out.push(
        `${where}: class "${c}" is approval-gated but access ${access} never allows it; an approval cannot add access`,
      );
  }
  for (const t of g.requireApproval?.tables ?? []) {
    if (deniedTables.has(t))
      out.push(`${where}: table "${t}" is both denied and approval-gated; deny wins, no approval can unlock it`);
  }
  return out;
}

/** A table pattern as a RegExp over `schema.table` (a pattern without a schema matches any schema). */
export function tablePatternRegExp(pattern: string): RegExp {
  const part = (p: string) =>
    p
      .split('')
      .map((ch) => (ch === '*' ? '[^.]*' : ch === '?' ? '[^.]' : ch === '$' ? '\\$' : ch))
      .join('');
  const dot = pattern.indexOf('.');
  const body =
    dot < 0 ? `[^.]+\\.${part(pattern)}` : `${part(pattern.slice(0, dot))}\\.${part(pattern.slice(dot + 1))}`;
  return new RegExp(`^${body}$`, 'i');
}
