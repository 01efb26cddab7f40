/**
 * A statement's shape, as the cache key for table extraction: literals become `?`, comments and
 * whitespace runs one space, unquoted words lower case. Statements differing only in literal values
 * share a key; different identifiers never do, so a cached answer is always the right one.
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
} from './scan.js';

/** One linear pass. Unterminated quotes or comments keep the rest verbatim: that text does not parse. */
export function normalize(sql: string): string {
  const n = sql.length;
  let out = '';
  let space = false; // whitespace or a comment since the last token
  let i = 0;
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (isSpace(c)) {
      space = true;
      i++;
      continue;
    }
    const d = sql.charCodeAt(i + 1);
    if (c === 45 && d === 45) {
      space = true;
      i = lineCommentEnd(sql, i);
      continue;
    }
    let e: number;
    let literal = false;
    if (c === 47 && d === 42) {
      e = blockCommentEnd(sql, i);
      if (e >= 0) {
        // A comment separates tokens: dropping it without a space would glue `a/**/b` into `ab`.
        space = true;
        i = e;
        continue;
      }
    } else if (c === 39) {
      e = stringEnd(sql, i, false);
      literal = true;
    } else if (c === 34) {
      e = quotedIdentEnd(sql, i);
    } else if (c === 36) {
      const tagEnd = dollarTagEnd(sql, i);
      if (tagEnd > 0) {
        e = dollarEnd(sql, i, tagEnd);
        literal = true;
      } else {
        e = isDigit(d) ? paramEnd(sql, i) : i + 1;
      }
    } else if (isIdentStart(c)) {
      e = wordEnd(sql, i);
      const prefixed = e === i + 1 ? prefixedEnd(sql, i) : 0;
      if (prefixed !== 0) {
        e = prefixed;
        literal = sql.charCodeAt(i + 2) !== 34; // U&"..." is an identifier
      } else {
        if (space && out.length > 0) out += ' ';
        space = false;
        out += lowerWord(sql, i, e);
        i = e;
        continue;
      }
    } else if (isDigit(c) || (c === 46 && isDigit(d))) {
      const numEnd = numberEnd(sql, i);
      e = junkEnd(sql, numEnd);
      // Junk glued to a number is a syntax error: keep it so it cannot share a valid statement's key.
      literal = e === numEnd;
    } else {
      e = i + 1;
    }
    if (space && out.length > 0) out += ' ';
    space = false;
    if (e < 0) return out + sql.slice(i);
    out += literal ? '?' : sql.slice(i, e);
    i = e;
  }
  return out;
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
