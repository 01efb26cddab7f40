/**
 * A keyword cursor over the tokenizer (comments skipped, marks to rewind to), for classify: no allocation.
 * State lives in module variables: the lexers are synchronous and never re-entered, so one shared
 * cursor costs nothing per call. `open` it, read with `next`, and `close` to drop the text.
 */

import { wordIs } from './scan.js';
import * as T from './tokenizer.js';

export const EOF = 0;
/** An identifier or keyword (unquoted). */
export const WORD = 1;
/** A single punctuation or operator character. */
export const PUNCT = 2;
/** A string constant of any kind, with its quotes and prefix. */
export const STRING = 3;
/** Quoted identifiers, numbers, parameters. */
export const OTHER = 4;

/** The tokenizer's kinds, folded into the few this cursor's readers tell apart. */
const FOLD: readonly number[] = [EOF, WORD, PUNCT, STRING, STRING, OTHER, OTHER, OTHER, EOF];

const tokens = new T.Tokenizer();
let src = '';
/** Kind of the current token. */
export let kind = EOF;
/** The current token is src[start, end). */
export let start = 0;
export let end = 0;

/** Starts reading `sql`, scanned under the session's `flags` (tokenizer.ts). */
export function open(sql: string, flags: number = T.SCAN_DEFAULT): void {
  src = sql;
  tokens.reset(sql, flags);
  kind = EOF;
  start = end = 0;
}

/** Releases the text so the cursor does not keep it alive. */
export function close(): void {
  src = '';
  tokens.release();
}

/** Advances to the next token, skipping whitespace and comments. Returns its kind. */
export function next(): number {
  const k = tokens.nextSignificant();
  kind = FOLD[k]!;
  start = tokens.start;
  end = tokens.end;
  return kind;
}

/** Whether the current token is the keyword `lower` (given in lower case). */
export function is(lower: string): boolean {
  return kind === WORD && wordIs(src, start, end, lower);
}

/** Whether the current token is the punctuation character with this code. */
export function isPunct(code: number): boolean {
  return kind === PUNCT && src.charCodeAt(start) === code;
}

/** The current token's first character code (NaN at EOF). */
export function firstChar(): number {
  return src.charCodeAt(start);
}

/** Current position, to come back to with `rewind`. */
export function mark(): number {
  return start;
}

/** Moves back to a `mark` and re-reads the token there. */
export function rewind(at: number): void {
  tokens.seek(at);
  next();
}

/** Whether the current token, read as a boolean option value, is false (false/off/0, quoted or not). */
export function isFalseValue(): boolean {
  let s = start;
  let e = end;
  if (kind === STRING && src.charCodeAt(s) === 39) {
    s++;
    e--;
  } else if (kind !== WORD && kind !== OTHER) {
    return false;
  }
  return wordIs(src, s, e, 'false') || wordIs(src, s, e, 'off') || wordIs(src, s, e, '0');
}

/** Skips tokens until the `)` closing the `(` that is the current token; leaves that `)` current. */
export function skipParens(): void {
  let depth = 0;
  for (;;) {
    if (kind === EOF) return;
    if (kind === PUNCT) {
      const c = src.charCodeAt(start);
      if (c === 40) depth++;
      else if (c === 41 && --depth === 0) return;
    }
    next();
  }
}
