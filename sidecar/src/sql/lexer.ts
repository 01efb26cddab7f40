/**
 * Statement splitting, on the one tokenizer (tokenizer.ts) that classification and normalization
 * use too; those and sqlcommenter tags are re-exported so callers import one place.
 */
import { isSpace, wordIs } from './scan.js';
import { COMMENT, EOF, OP, SCAN_DEFAULT, Tokenizer, WORD } from './tokenizer.js';

export { classify, type StatementClassification } from './classify.js';
export { normalize } from './normalize.js';
export { sqlCommenterTags } from './sqlcommenter.js';

/** One statement of a simple-protocol Query: its own slice of the original text, and where it starts. */
export interface StatementSlice {
  text: string;
  offset: number;
}

// Where a statement stands on `CREATE [OR REPLACE] FUNCTION|PROCEDURE`, the only statements whose
// body (BEGIN ATOMIC ... END) may hold semicolons that do not end the statement.
const HEADER_START = 0;
const HEADER_CREATE = 1;
const HEADER_OR = 2;
const HEADER_REPLACE = 3;
const HEADER_ROUTINE = 4;
const HEADER_OTHER = 5;

const tokens = new Tokenizer();

/**
 * Splits a Query message's text where Postgres's parser would: at every `;` outside quotes,
 * comments, parentheses (a multi-action `CREATE RULE … DO (a; b)` is one statement) and BEGIN
 * ATOMIC bodies, scanning under the session's settings (`flags`, see tokenizer.ts). Slices start
 * at the statement's first non-space character (leading comments included), end before its `;`
 * with trailing whitespace removed, and slices of only whitespace and comments are dropped, since
 * Postgres runs nothing for them. Never throws: an unterminated quote or comment takes the rest of
 * the text, and so does an unclosed parenthesis (Postgres then refuses the whole Query).
 */
export function splitStatements(sql: string, flags: number = SCAN_DEFAULT): StatementSlice[] {
  const out: StatementSlice[] = [];
  const t = tokens.reset(sql, flags);
  let start = -1; // first non-space character of the current statement
  let end = 0; // end of its last token or comment
  let hasToken = false; // comments alone are not a statement
  let header = HEADER_START;
  let parens = 0;
  let atomic = 0; // BEGIN ATOMIC / CASE nesting inside a routine body
  let beginSeen = false; // previous token was BEGIN at paren depth 0
  let labelNext = false; // previous token was AS or `.`: the next word is a name, not a keyword
  for (let k = t.next(); k !== EOF; k = t.next()) {
    const i = t.start;
    if (k === OP && parens <= 0 && atomic === 0 && sql.charCodeAt(i) === 59) {
      if (hasToken) out.push(slice(sql, start, end));
      start = -1;
      hasToken = false;
      header = HEADER_START;
      parens = 0;
      beginSeen = false;
      labelNext = false;
      continue;
    }
    if (start < 0) start = i;
    end = t.end;
    if (k === COMMENT) continue;
    hasToken = true;
    const wasBegin = beginSeen;
    const wasLabel = labelNext;
    beginSeen = false;
    labelNext = false;
    if (k === WORD) {
      const e = t.end;
      if (header !== HEADER_OTHER) {
        // Track only what decides where a routine body ends; other statements skip this.
        if (header < HEADER_ROUTINE) {
          header = nextHeader(header, sql, i, e);
        } else if (atomic === 0) {
          if (wasBegin && wordIs(sql, i, e, 'atomic')) atomic = 1;
          else beginSeen = parens === 0 && wordIs(sql, i, e, 'begin');
        } else if (!wasLabel) {
          // CASE ... END nests inside the body; `AS end` and `t.end` are names.
          if (wordIs(sql, i, e, 'case')) atomic++;
          else if (wordIs(sql, i, e, 'end')) atomic--;
        }
        labelNext = wordIs(sql, i, e, 'as');
      }
    } else if (k === OP) {
      const c = sql.charCodeAt(i);
      if (c === 40) parens++;
      else if (c === 41) parens--;
      labelNext = c === 46;
    }
  }
  t.release();
  if (hasToken) out.push(slice(sql, start, end));
  return out;
}

function nextHeader(header: number, sql: string, i: number, e: number): number {
  if (header === HEADER_START) return wordIs(sql, i, e, 'create') ? HEADER_CREATE : HEADER_OTHER;
  if (header === HEADER_CREATE && wordIs(sql, i, e, 'or')) return HEADER_OR;
  if (header === HEADER_OR) return wordIs(sql, i, e, 'replace') ? HEADER_REPLACE : HEADER_OTHER;
  return wordIs(sql, i, e, 'function') || wordIs(sql, i, e, 'procedure') ? HEADER_ROUTINE : HEADER_OTHER;
}

function slice(sql: string, start: number, end: number): StatementSlice {
  // Only an unterminated quote or comment can leave whitespace at the end.
  while (end > start && isSpace(sql.charCodeAt(end - 1))) end--;
  return { text: sql.slice(start, end), offset: start };
}
