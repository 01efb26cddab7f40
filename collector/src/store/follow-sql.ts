/**
 * The follow query's filter clauses, with the dialect's placeholders. The same filters as the
 * event query; the table filter is an EXISTS on the side table, since the walk is in insertion
 * order, not in the side table's order.
 */
import { type Dialect, statementConditions } from './query-sql.js';
import type { EventFilter } from './types.js';

export function followFilterSql(filter: EventFilter, p: (v: unknown) => string, dialect: Dialect): string[] {
  const where: string[] = [];
  const equal: [keyof EventFilter, string][] = [
    ['identity', 'e.identity_name'],
    ['route', 'e.route'],
    ['database', 'e.database_name'],
    ['session', 'e.session_id'],
    ['approval', 'e.approval_name'],
    ['stream', 'e.stream'],
    ['type', 'e.event_type'],
  ];
  for (const [field, column] of equal) {
    const v = filter[field];
    if (v !== undefined) where.push(`${column} = ${p(v)}`);
  }
  if (filter.table !== undefined) {
    where.push(`EXISTS (SELECT 1 FROM byline_event_tables t WHERE t.event_id = e.id AND t.name = ${p(filter.table)})`);
  }
  // Class, status and text narrow the walk in insertion order: checked on each event walked.
  where.push(...statementConditions(filter, dialect, p, false));
  if (filter.sinceUs !== undefined) where.push(`e.time_us >= ${p(filter.sinceUs)}`);
  if (filter.untilUs !== undefined) where.push(`e.time_us < ${p(filter.untilUs)}`);
  return where;
}

/** A placeholder function over a values array, for `followFilterSql`. */
export function placeholders(values: unknown[], style: (n: number) => string): (v: unknown) => string {
  return (v) => {
    values.push(v);
    return style(values.length);
  };
}
