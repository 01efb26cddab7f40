/**
 * A statement's shape, as the cache key for table extraction: literals become `?`, comments and
 * whitespace runs one space, unquoted words lower case. Statements differing only in literal values
 * share a key; different identifiers never do, so a cached answer is always the right one.
 */

import { numberEnd } from './scan.js';
import {
  COMMENT,
  DOLLAR_STRING,
  EOF,
  NUMBER,
  PARAM,
  QUOTED_IDENT,
  SCAN_DEFAULT,
  STRING,
  Tokenizer,
  WORD,
} from './tokenizer.js';

const tokens = new Tokenizer();

/**
 * One linear pass, under the session's scan `flags`. Unterminated quotes or comments keep the rest
 * verbatim: that text does not parse.
 */
export function normalize(sql: string, flags: number = SCAN_DEFAULT): string {
  const t = tokens.reset(sql, flags);
  let out = '';
  let space = false; // whitespace or a comment since the last token
  let prevEnd = 0;
  for (let k = t.next(); k !== EOF; k = t.next()) {
    const i = t.start;
    const e = t.end;
    if (i > prevEnd) space = true;
    prevEnd = e;
    if (t.unterminated) {
      if (space && out.length > 0) out += ' ';
      out += sql.slice(i);
      break;
    }
    // A comment separates tokens: dropping it without a space would glue `a/**/b` into `ab`.
    if (k === COMMENT) {
      space = true;
      continue;
    }
    if (space && out.length > 0) out += ' ';
    space = false;
    if (k === WORD) out += lowerWord(sql, i, e);
    else if (k === STRING) out += bitOrNational(sql.charCodeAt(i)) ? `${sql[i]!.toLowerCase()}?` : '?';
    else if (k === DOLLAR_STRING) out += '?';
    // Junk glued to a number is a syntax error: keep it so it cannot share a valid statement's key.
    else if (k === NUMBER) out += numberEnd(sql, i) === e ? '?' : sql.slice(i, e);
    else out += k === QUOTED_IDENT || k === PARAM ? sql.slice(i, e) : sql[i];
  }
  t.release();
  return out;
}

/** B'…', X'…' and N'…' keep their prefix: they are other types than a plain string. */
function bitOrNational(c: number): boolean {
  const lower = c | 0x20;
  return lower === 98 || lower === 120 || lower === 110;
}

/** An unquoted word folded as Postgres folds identifiers: ASCII letters only, so `É` and `é` stay distinct. */
function lowerWord(sql: string, start: number, end: number): string {
  const word = sql.slice(start, end);
  for (let k = start; k < end; k++) {
    const c = sql.charCodeAt(k);
    if (c >= 65 && c <= 90) return asciiOnly(word) ? word.toLowerCase() : foldAscii(word);
  }
  return word;
}

function asciiOnly(word: string): boolean {
  for (let k = 0; k < word.length; k++) if (word.charCodeAt(k) >= 128) return false;
  return true;
}

function foldAscii(word: string): string {
  let out = '';
  for (let k = 0; k < word.length; k++) {
    const c = word.charCodeAt(k);
    out += c >= 65 && c <= 90 ? String.fromCharCode(c + 32) : word[k];
  }
  return out;
}
