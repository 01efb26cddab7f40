/**
 * A token cursor over one SQL text (forward, with marks to rewind to), for reading keywords without allocating.
 * State lives in module variables: the lexers are synchronous and never re-entered, so one shared
 * cursor costs nothing per call. `open` it, read with `next`, and `close` to drop the text.
 */
import {
  blockCommentEnd,
  dollarEnd,
  dollarTagEnd,
  isDigit,
  isIdentStart,
  isSpace,
  junkEnd,
  lineCommentEnd,
  numberEnd,
  paramEnd,
  prefixedEnd,
  quotedIdentEnd,
  stringEnd,
  wordEnd,
  wordIs,
} from './scan.js';

export const EOF = 0;
/** An identifier or keyword (unquoted). */
export const WORD = 1;
/** A single punctuation or operator character. */
export const PUNCT = 2;
/** A string constant of any kind, with its quotes and prefix. */
export const STRING = 3;
/** Quoted identifiers, numbers, parameters. */
export const OTHER = 4;

let src = '';
/** Kind of the current token. */
export let kind = EOF;
/** The current token is src[start, end). */
export let start = 0;
export let end = 0;

export function open(sql: string): void {
  src = sql;
  kind = EOF;
  start = end = 0;
}

/** Releases the text so the cursor does not keep it alive. */
export function close(): void {
  src = '';
}

/** Advances to the next token, skipping whitespace and comments. Returns its kind. */
export function next(): number {
  const s = src;
  const n = s.length;
  let i = end;
  for (;;) {
    if (i >= n) return setToken(EOF, n, n);
    const c = s.charCodeAt(i);
    if (isSpace(c)) {
      i++;
      continue;
    }
    const d = s.charCodeAt(i + 1);
    if (c === 45 && d === 45) {
      i = lineCommentEnd(s, i);
      continue;
    }
    if (c === 47 && d === 42) {
      const e = blockCommentEnd(s, i);
      if (e < 0) return setToken(EOF, n, n);
      i = e;
      continue;
    }
    if (isIdentStart(c)) {
      const e = wordEnd(s, i);
      const prefixed = e === i + 1 ? prefixedEnd(s, i) : 0;
      if (prefixed === 0) return setToken(WORD, i, e);
      return setToken(s.charCodeAt(i + 1) === 38 && s.charCodeAt(i + 2) === 34 ? OTHER : STRING, i, orEnd(prefixed, n));
    }
    if (c === 39) return setToken(STRING, i, orEnd(stringEnd(s, i, false), n));
    if (c === 34) return setToken(OTHER, i, orEnd(quotedIdentEnd(s, i), n));
    if (c === 36) {
      const tagEnd = dollarTagEnd(s, i);
      if (tagEnd > 0) return setToken(STRING, i, orEnd(dollarEnd(s, i, tagEnd), n));
      if (isDigit(d)) return setToken(OTHER, i, paramEnd(s, i));
    }
    if (isDigit(c) || (c === 46 && isDigit(d))) return setToken(OTHER, i, junkEnd(s, numberEnd(s, i)));
    return setToken(PUNCT, i, i + 1);
  }
}

function orEnd(e: number, n: number): number {
  return e < 0 ? n : e;
}

function setToken(k: number, s: number, e: number): number {
  kind = k;
  start = s;
  end = e;
  return k;
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
  end = at;
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
