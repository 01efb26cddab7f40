/**
 * The relations a parse tree names, from libpg-query's JSON AST: every RangeVar (FROM items, DML
 * and utility targets, REFERENCES, LIKE, GRANT ... ON, SELECT INTO ...) plus the name lists of DROP
 * and COMMENT ON for relation kinds, which carry no RangeVar. Unqualified names that resolve to a
 * CTE in scope are left out; results are deduplicated in order of appearance.
 */
import type { ParseResult } from 'libpg-query';

interface Found {
  name: string;
  location: number;
}

/** Where names go, and where the current statement starts (for names that carry no location). */
interface Sink {
  found: Found[];
  statementAt: number;
}

type Obj = Record<string, unknown>;

/** Object kinds whose DROP / COMMENT ON names a relation. */
const RELATION_KINDS = new Set([
  'OBJECT_TABLE',
  'OBJECT_VIEW',
  'OBJECT_MATVIEW',
  'OBJECT_FOREIGN_TABLE',
  'OBJECT_SEQUENCE',
]);

/** Statements whose `relation` is a target: CTE names never hide a table there (see setTargetTable). */
const DML = new Set(['InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt']);

export function relationsOf(tree: ParseResult): string[] {
  const sink: Sink = { found: [], statementAt: 0 };
  for (const raw of tree.stmts ?? []) {
    sink.statementAt = raw.stmt_location ?? 0;
    visit(raw.stmt, [], sink);
  }
  // Tree order is not text order (a WITH clause is listed after the FROM it serves); sort is stable.
  sink.found.sort((a, b) => a.location - b.location);
  return [...new Set(sink.found.map((f) => f.name))];
}

function isObj(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null;
}

function visit(node: unknown, ctes: readonly string[], out: Sink): void {
  if (Array.isArray(node)) {
    for (const item of node) visit(item, ctes, out);
    return;
  }
  if (!isObj(node)) return;
  if (typeof node.relname === 'string') {
    rangeVar(node, ctes, out, false);
    return;
  }
  let scope = ctes;
  const withClause = node.withClause;
  if (isObj(withClause)) scope = visitWith(withClause, ctes, out);
  for (const key in node) {
    if (key === 'withClause') continue;
    const value = node[key];
    if (DML.has(key) && isObj(value)) visitDml(value, scope, out);
    else if (key === 'DropStmt' && isObj(value)) dropped(value, out);
    else if (key === 'CommentStmt' && isObj(value)) commented(value, out);
    else visit(value, scope, out);
  }
}

/** Visits the CTE bodies, each seeing the names before it (all of them when RECURSIVE); returns the scope after. */
function visitWith(withClause: Obj, outer: readonly string[], out: Sink): readonly string[] {
  const ctes = Array.isArray(withClause.ctes) ? withClause.ctes : [];
  const names: string[] = [];
  for (const cte of ctes) {
    const name = isObj(cte) && isObj(cte.CommonTableExpr) ? cte.CommonTableExpr.ctename : undefined;
    if (typeof name === 'string') names.push(name);
  }
  const recursive = withClause.recursive === true;
  ctes.forEach((cte, index) => {
    const body = isObj(cte) && isObj(cte.CommonTableExpr) ? cte.CommonTableExpr.ctequery : undefined;
    visit(body, [...outer, ...(recursive ? names : names.slice(0, index))], out);
  });
  return [...outer, ...names];
}

function visitDml(stmt: Obj, ctes: readonly string[], out: Sink): void {
  let scope = ctes;
  if (isObj(stmt.withClause)) scope = visitWith(stmt.withClause, ctes, out);
  for (const key in stmt) {
    if (key === 'withClause') continue;
    const value = stmt[key];
    if (key === 'relation' && isObj(value)) rangeVar(value, scope, out, true);
    else visit(value, scope, out);
  }
}

function rangeVar(rv: Obj, ctes: readonly string[], out: Sink, target: boolean): void {
  const { catalogname, schemaname, relname } = rv;
  if (typeof relname !== 'string') return;
  const qualified = typeof schemaname === 'string';
  if (!qualified && !target && ctes.includes(relname)) return;
  const parts = [catalogname, schemaname, relname].filter((p): p is string => typeof p === 'string');
  out.found.push({ name: parts.join('.'), location: typeof rv.location === 'number' ? rv.location : out.statementAt });
}

/** DROP TABLE a, s.b: each object is a List of String name parts. */
function dropped(stmt: Obj, out: Sink): void {
  if (!RELATION_KINDS.has(String(stmt.removeType)) || !Array.isArray(stmt.objects)) return;
  for (const object of stmt.objects) pushNameList(object, out);
}

function commented(stmt: Obj, out: Sink): void {
  if (RELATION_KINDS.has(String(stmt.objtype))) pushNameList(stmt.object, out);
}

function pushNameList(node: unknown, out: Sink): void {
  const items = isObj(node) && isObj(node.List) ? node.List.items : undefined;
  if (!Array.isArray(items)) return;
  const parts: string[] = [];
  for (const item of items) {
    const sval = isObj(item) && isObj(item.String) ? item.String.sval : undefined;
    if (typeof sval !== 'string') return;
    parts.push(sval);
  }
  // These nodes carry no location; they are their statement's only names, so its start will do.
  if (parts.length > 0) out.found.push({ name: parts.join('.'), location: out.statementAt });
}
