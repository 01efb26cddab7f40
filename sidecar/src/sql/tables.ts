/**
 * Table extraction with the real Postgres parser (libpg-query, WASM), off the forward path. Parsing
 * costs tens of microseconds, so results are cached by the statement's normalized shape: the same
 * statement with other literals skips the parser.
 */
import type { ParseResult } from 'libpg-query';
import type { StatementSlice } from './lexer.js';
import { Lru } from './lru.js';
import { normalize } from './normalize.js';
import { loadedParser, loadParser } from './parser.js';
import { relationsOf } from './relations.js';
import { isSpace, skipTrivia } from './scan.js';
import { SCAN_DEFAULT, SCS_OFF, STRING, Tokenizer } from './tokenizer.js';

function parser() {
  const parse = loadedParser();
  if (parse === undefined)
    throw new Error(
      'libpg-query is not loaded: create the extractor with TableExtractor.create(), or loadParser() first',
    );
  return parse;
}

/** The parse tree, or null when the text does not parse. Empty text parses to no statements. */
function tryParse(sql: string): ParseResult | null {
  const parse = parser();
  if (sql.length === 0) return { stmts: [] };
  try {
    return parse(sql);
  } catch {
    return null;
  }
}

/** The walk recurses over the tree; a tree too deep for the stack is treated like one that does not parse. */
function relations(tree: ParseResult): string[] | null {
  try {
    return relationsOf(tree);
  } catch {
    return null;
  }
}

export interface TableExtractorOptions {
  /** Distinct statement shapes to remember (default 10 000). */
  cacheSize?: number;
}

export class TableExtractor {
  /** Cache hits and misses since construction. */
  readonly stats = { hits: 0, misses: 0 };
  readonly #cache: Lru<string, readonly string[] | null>;

  /** Needs the parser loaded (sql/parser.ts) by the time `tables` is first called; `create()` waits for it. */
  constructor(options: TableExtractorOptions = {}) {
    this.#cache = new Lru(options.cacheSize ?? 10_000);
  }

  static async create(options?: TableExtractorOptions): Promise<TableExtractor> {
    await loadParser();
    return new TableExtractor(options);
  }

  /**
   * Relations one statement reads or writes: `schema.name` when written qualified, else `name`;
   * CTE names excluded; deduplicated in order of appearance. Null when the text does not parse.
   */
  tables(sql: string, flags: number = SCAN_DEFAULT): string[] | null {
    const key = normalize(sql, flags);
    let tables = this.#cache.get(key);
    if (tables === undefined) {
      this.stats.misses++;
      const tree = tryParse(flags & SCS_OFF ? withEscapeStrings(sql) : sql);
      tables = tree === null ? null : relations(tree);
      this.#cache.set(key, tables);
    } else {
      this.stats.hits++;
    }
    // A copy, so a caller's edits cannot reach the cache.
    return tables === null ? null : [...tables];
  }
}

const tokens = new Tokenizer();

/**
 * The same statement for a parser that knows only standard_conforming_strings = on (libpg-query):
 * every '…' and N'…' string, which takes backslash escapes while the setting is off, becomes E'…',
 * which takes them always. Without this, `'a\' from t --', 1 from u` would read t instead of u.
 */
export function withEscapeStrings(sql: string): string {
  if (!sql.includes('\\')) return sql;
  const t = tokens.reset(sql, SCS_OFF);
  let out = '';
  let from = 0;
  for (let k = t.next(); k !== 0; k = t.next()) {
    if (k !== STRING) continue;
    const c = sql.charCodeAt(t.start);
    if (c === 39) {
      out += `${sql.slice(from, t.start)}E`;
      from = t.start;
    } else if (c === 78 || c === 110) {
      out += `${sql.slice(from, t.start)}E`;
      from = t.start + 1;
    }
  }
  t.release();
  return out + sql.slice(from);
}

/**
 * Splits a Query's text with the parser's statement boundaries (RawStmt stmt_location/stmt_len),
 * into the same slices as `splitStatements`; null on a syntax error. Needs the parser loaded.
 */
export function splitWithParser(sql: string): StatementSlice[] | null {
  const tree = tryParse(sql);
  if (tree === null) return null;
  const toChar = byteToChar(sql);
  const out: StatementSlice[] = [];
  let previousEnd = 0;
  for (const raw of tree.stmts ?? []) {
    const location = raw.stmt_location ?? 0;
    // stmt_len 0 means "to the end of the text" (the last statement, without a `;`).
    const end = raw.stmt_len ? toChar(location + raw.stmt_len) : sql.length;
    const first = toChar(location);
    // stmt_location points at the first token; comments before it belong to the statement too, so
    // the slice starts after the last `;` in the gap (which holds only whitespace, comments and `;`).
    let start = previousEnd;
    for (let i = skipTrivia(sql, previousEnd); i < first && sql.charCodeAt(i) === 59; i = skipTrivia(sql, i + 1)) {
      start = i + 1;
    }
    while (start < first && isSpace(sql.charCodeAt(start))) start++;
    let stop = end;
    while (stop > start && isSpace(sql.charCodeAt(stop - 1))) stop--;
    out.push({ text: sql.slice(start, stop), offset: start });
    previousEnd = end;
  }
  return out;
}

/**
 * Maps the parser's UTF-8 byte offsets to string indices. Counts bytes as emscripten's
 * stringToUTF8 encodes them: any surrogate takes the next code unit with it as one 4-byte character.
 */
function byteToChar(sql: string): (byte: number) => number {
  if (Buffer.byteLength(sql, 'utf8') === sql.length) return (byte) => byte;
  const offsets: number[] = [];
  for (let i = 0; i < sql.length; i++) {
    const c = sql.charCodeAt(i);
    const bytes = c < 0x80 ? 1 : c < 0x800 ? 2 : c >= 0xd800 && c <= 0xdfff ? 4 : 3;
    for (let b = 0; b < bytes; b++) offsets.push(i);
    if (bytes === 4) i++;
  }
  return (byte) => (byte < offsets.length ? (offsets[byte] ?? sql.length) : sql.length);
}
