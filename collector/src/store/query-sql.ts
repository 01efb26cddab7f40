/**
 * The event query both stores run, with the dialect's placeholders: filters, keyset paging on
 * (time, stream, seq, id), and one row more than the page to know whether another page follows.
 *
 * A `table` filter drives the query from the side table, whose key carries the same sort columns,
 * so that query walks an index in order too.
 *
 * `statementClass` and `status` are indexed too: SQLite keeps them as columns the insert fills,
 * PostgreSQL reads the stored event through the very expression its index is built on. `text` (a substring) is looked up in the text
 * index — SQLite's FTS5 trigram table, PostgreSQL's pg_trgm GIN index through LIKE — and then
 * checked exactly; a text shorter than a trigram is checked on the events the other filters walk.
 */
import type { CursorKey, EventFilter } from './types.js';

export interface BuiltQuery {
  sql: string;
  values: unknown[];
}

export type Dialect = 'sqlite' | 'postgres';

/** A string field of the stored event (a JSON text column), by its path. */
function eventField(dialect: Dialect, path: readonly string[]): string {
  return dialect === 'sqlite'
    ? `json_extract(e.event, '$.${path.join('.')}')`
    : `((e.event)::jsonb #>> '{${path.join(',')}}')`;
}

/** statement.class and result.status: SQLite's columns, or PostgreSQL's indexed expressions. */
function classField(dialect: Dialect): string {
  return dialect === 'sqlite' ? 'e.statement_class' : eventField(dialect, ['statement', 'class']);
}

function statusField(dialect: Dialect): string {
  return dialect === 'sqlite' ? 'e.result_status' : eventField(dialect, ['result', 'status']);
}

export interface QueryOptions {
  /**
   * SQLite: find `text` through the trigram table (default). Off for a text most events hold: its
   * matches would all be read and sorted for every page, where walking the events in order finds a
   * page of them at once (the store decides, counting matches up to a bound).
   */
  textIndex?: boolean;
}

export function buildEventQuery(
  filter: EventFilter,
  limit: number,
  after: CursorKey | undefined,
  dialect: Dialect,
  options: QueryOptions = {},
): BuiltQuery {
  const placeholder = dialect === 'sqlite' ? () => '?' : (n: number) => `$${n}`;
  const values: unknown[] = [];
  const p = (v: unknown) => {
    values.push(v);
    return placeholder(values.length);
  };
  const where: string[] = [];
  let from = 'byline_events e';
  // `k` holds the sort key: the event itself, or its row in the side table.
  let k = { time: 'e.time_us', stream: 'e.stream', seq: 'e.chain_seq', id: 'e.id' };
  if (filter.table !== undefined) {
    from = 'byline_event_tables t JOIN byline_events e ON e.id = t.event_id';
    k = { time: 't.time_us', stream: 't.stream', seq: 't.chain_seq', id: 't.event_id' };
    where.push(`t.name = ${p(filter.table)}`);
  }
  const equal: [keyof EventFilter, string][] = [
    // With a table, the side table's copy of the identity: its index serves both filters in order.
    ['identity', filter.table !== undefined ? 't.identity_name' : 'e.identity_name'],
    ['route', 'e.route'],
    ['database', 'e.database_name'],
    ['session', 'e.session_id'],
    ['approval', 'e.approval_name'],
    ['stream', k.stream],
    ['type', 'e.event_type'],
  ];
  for (const [field, column] of equal) {
    const v = filter[field];
    if (v !== undefined) where.push(`${column} = ${p(v)}`);
  }
  where.push(...statementConditions(filter, dialect, p, options.textIndex ?? true));
  // A cursor implies time >= its time: folded into one lower bound, the index seeks straight to the
  // page instead of walking from `since` again on every page.
  const since =
    after && (filter.sinceUs === undefined || after.timeUs > filter.sinceUs) ? after.timeUs : filter.sinceUs;
  if (since !== undefined) where.push(`${k.time} >= ${p(since)}`);
  if (filter.untilUs !== undefined) where.push(`${k.time} < ${p(filter.untilUs)}`);
  if (after) {
    where.push(
      `(${k.time}, ${k.stream}, ${k.seq}, ${k.id}) > (${p(after.timeUs)}, ${p(after.stream)}, ${p(after.seq)}, ${p(after.id)})`,
    );
  }
  const sql =
    `SELECT e.event, e.received_at, ${k.time} AS time_us, ${k.stream} AS stream, ${k.seq} AS chain_seq, e.id` +
    ` FROM ${from}` +
    (where.length ? ` WHERE ${where.join(' AND ')}` : '') +
    ` ORDER BY ${k.time}, ${k.stream}, ${k.seq}, ${k.id}` +
    ` LIMIT ${p(limit + 1)}`;
  return { sql, values };
}

/**
 * The class, status and text conditions, on the columns and expressions the schema indexes. `lookUpText`: find
 * text matches through the text index first (SQLite: the trigram table); without it the text is
 * only checked on the events the rest of the query walks (the follow API walks insertion order).
 */
export function statementConditions(
  filter: EventFilter,
  dialect: Dialect,
  p: (v: unknown) => string,
  lookUpText: boolean,
): string[] {
  const where: string[] = [];
  if (filter.statementClass !== undefined) where.push(`${classField(dialect)} = ${p(filter.statementClass)}`);
  if (filter.status !== undefined) where.push(`${statusField(dialect)} = ${p(filter.status)}`);
  if (filter.text !== undefined) where.push(...textConditions(dialect, filter.text, p, lookUpText));
  return where;
}

/** Fewer characters than this make no trigram: no index can narrow such a text. */
const TRIGRAM = 3;

/** Whether a trigram index can narrow a search for `text`. */
export function textIndexable(text: string): boolean {
  return [...text].length >= TRIGRAM;
}

/**
 * The FTS5 query for `text`: each of its distinct trigrams, all required. The text index keeps no
 * positions (detail=none: a third of the size, and cheaper to write), so it cannot ask for them
 * in a row; the exact check after it does. Each trigram is quoted, so FTS5 syntax in it is literal.
 */
export function textPhrase(text: string): string {
  const chars = [...text];
  const trigrams = new Set<string>();
  for (let i = 0; i + TRIGRAM <= chars.length; i++) trigrams.add(chars.slice(i, i + TRIGRAM).join(''));
  return [...trigrams].map((t) => `"${t.replaceAll('"', '""')}"`).join(' AND ');
}

/** Conditions for "statement.text contains `text`" (case-sensitive, no wildcards). */
function textConditions(dialect: Dialect, text: string, p: (v: unknown) => string, lookUp: boolean): string[] {
  const field = eventField(dialect, ['statement', 'text']);
  if (dialect === 'postgres') {
    // LIKE is what a pg_trgm index serves; with % _ and \ escaped it is an exact substring test.
    return [`${field} LIKE ${p(`%${text.replace(/[\\%_]/g, '\\$&')}%`)}`];
  }
  const exact = () => `instr(${field}, ${p(text)}) > 0`;
  if (!lookUp || !textIndexable(text)) return [exact()];
  // The rows holding the text's trigrams in a row, then checked exactly anyway, so the answer
  // never depends on the tokenizer. (Placeholders bind in the order they appear: the phrase first.)
  const phrase = textPhrase(text);
  const indexed = `e.ord IN (SELECT rowid FROM byline_event_text WHERE byline_event_text MATCH ${p(phrase)})`;
  return [indexed, exact()];
}
