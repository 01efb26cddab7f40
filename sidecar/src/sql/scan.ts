/**
 * Scanning primitives of the tokenizer (tokenizer.ts): character classes and "where does this
 * token end" functions, each following the matching rule of Postgres's scanner
 * (src/backend/parser/scan.l) closely enough to find token boundaries. None of them allocates
 * except `dollarEnd`.
 *
 * Functions that can run off the end of the input return -1 for "unterminated"; callers decide
 * what that means (usually: the rest of the input belongs to the current token).
 */

/** Postgres's `space` class: [ \t\n\r\f\v]. Not String#trim's set: NBSP is an identifier character to Postgres. */
export function isSpace(c: number): boolean {
  return c === 32 || (c >= 9 && c <= 13);
}

/** `ident_start`: letters, underscore, and any non-ASCII character (high-bit bytes in scan.l). */
export function isIdentStart(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95 || c >= 128;
}

/** `ident_cont`: also digits and `$` (so `a$b$` is one identifier, not a dollar quote). */
export function isIdentCont(c: number): boolean {
  return isIdentStart(c) || isDigit(c) || c === 36;
}

export function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/** ASCII-only lower-casing of one code, as Postgres folds unquoted identifiers. */
export function lowerAscii(c: number): number {
  return c >= 65 && c <= 90 ? c + 32 : c;
}

/** Whether s[start, end) equals `lower` (an all-lower-case ASCII word), ignoring ASCII case. */
export function wordIs(s: string, start: number, end: number, lower: string): boolean {
  if (end - start !== lower.length) return false;
  for (let k = 0; k < lower.length; k++) {
    if (lowerAscii(s.charCodeAt(start + k)) !== lower.charCodeAt(k)) return false;
  }
  return true;
}

/** End of the identifier or keyword starting at i (s[i] must satisfy isIdentStart). */
export function wordEnd(s: string, i: number): number {
  const n = s.length;
  let j = i + 1;
  while (j < n && isIdentCont(s.charCodeAt(j))) j++;
  return j;
}

/** End of a `--` comment starting at i; the line break is not part of it. */
export function lineCommentEnd(s: string, i: number): number {
  const n = s.length;
  for (let j = i + 2; j < n; j++) {
    const c = s.charCodeAt(j);
    if (c === 10 || c === 13) return j;
  }
  return n;
}

/** End of the block comment starting at i (`/*`); they nest. -1 when unterminated. */
export function blockCommentEnd(s: string, i: number): number {
  const n = s.length;
  let depth = 1;
  let j = i + 2;
  while (j < n) {
    const c = s.charCodeAt(j);
    if (c === 47 && s.charCodeAt(j + 1) === 42) {
      depth++;
      j += 2;
    } else if (c === 42 && s.charCodeAt(j + 1) === 47) {
      j += 2;
      if (--depth === 0) return j;
    } else {
      j++;
    }
  }
  return -1;
}

/** Whether a comment starts at i. */
export function isCommentStart(s: string, i: number): boolean {
  const c = s.charCodeAt(i);
  const d = s.charCodeAt(i + 1);
  return (c === 45 && d === 45) || (c === 47 && d === 42);
}

/** Index of the next token after whitespace and comments from i (s.length at the end or in an unterminated comment). */
export function skipTrivia(s: string, i: number): number {
  const n = s.length;
  while (i < n) {
    const c = s.charCodeAt(i);
    if (isSpace(c)) {
      i++;
    } else if (c === 45 && s.charCodeAt(i + 1) === 45) {
      i = lineCommentEnd(s, i);
    } else if (c === 47 && s.charCodeAt(i + 1) === 42) {
      const end = blockCommentEnd(s, i);
      return end < 0 ? n : skipTrivia(s, end);
    } else {
      return i;
    }
  }
  return n;
}

/** How a quoted string ends: `''` doubles a quote; with QUOTE_ESCAPE `\\` also escapes the next character. */
export const QUOTE_STANDARD = 0;
/** E'…' strings, and '…' when standard_conforming_strings is off. */
export const QUOTE_ESCAPE = 1;
/** B'…' and X'…': no escapes at all, the first quote ends the part (`''` is two constants). */
export const QUOTE_PLAIN = 2;

/**
 * End of the string constant whose opening quote is at i, or -1 when unterminated. Follows
 * Postgres's continuation rule: `'a'` + whitespace (and `--` comments) holding a newline + `'b'`
 * is one constant, scanned on under the same rule.
 */
export function stringEnd(s: string, i: number, mode: number): number {
  const n = s.length;
  let j = i + 1;
  for (;;) {
    if (j >= n) return -1;
    const c = s.charCodeAt(j);
    if (c === 92 && mode === QUOTE_ESCAPE) {
      j += 2;
    } else if (c === 39) {
      if (mode !== QUOTE_PLAIN && s.charCodeAt(j + 1) === 39) {
        j += 2;
        continue;
      }
      const next = continuation(s, j + 1);
      if (next < 0) return j + 1;
      j = next + 1;
    } else {
      j++;
    }
  }
}

/**
 * If whitespace and `--` comments holding a line break, then a quote, follow at i: the index of
 * that quote; else -1 (scan.l's `quotecontinue`; block comments do not count, `--` ones do).
 */
function continuation(s: string, i: number): number {
  const n = s.length;
  let newline = false;
  let j = i;
  while (j < n) {
    const c = s.charCodeAt(j);
    if (c === 10 || c === 13) {
      newline = true;
      j++;
    } else if (isSpace(c)) {
      j++;
    } else if (c === 45 && s.charCodeAt(j + 1) === 45) {
      j = lineCommentEnd(s, j);
    } else {
      return newline && c === 39 ? j : -1;
    }
  }
  return -1;
}

/** End of the quoted identifier whose opening `"` is at i (`""` escapes a quote), or -1 when unterminated. */
export function quotedIdentEnd(s: string, i: number): number {
  const n = s.length;
  let j = i + 1;
  while (j < n) {
    if (s.charCodeAt(j) === 34) {
      if (s.charCodeAt(j + 1) !== 34) return j + 1;
      j += 2;
    } else {
      j++;
    }
  }
  return -1;
}

/**
 * If a dollar-quote delimiter (`$$` or `$tag$`, tag an identifier without `$`) starts at i, the
 * index just after it; else -1 (`$1` is a parameter, a lone `$` an operator character).
 */
export function dollarTagEnd(s: string, i: number): number {
  let j = i + 1;
  let c = s.charCodeAt(j);
  if (c === 36) return j + 1;
  if (!isIdentStart(c)) return -1;
  const n = s.length;
  for (j++; j < n; j++) {
    c = s.charCodeAt(j);
    if (c === 36) return j + 1;
    if (!isIdentStart(c) && !isDigit(c)) return -1;
  }
  return -1;
}

/**
 * End of the dollar-quoted string opened by the delimiter s[i, tagEnd), or -1 when unterminated.
 * The first later occurrence of the delimiter closes it: that is exactly where scan.l stops.
 */
export function dollarEnd(s: string, i: number, tagEnd: number): number {
  const delimiter = s.slice(i, tagEnd);
  const close = s.indexOf(delimiter, tagEnd);
  return close < 0 ? -1 : close + delimiter.length;
}

/** End of a `$n` parameter at i (s[i + 1] must be a digit). */
export function paramEnd(s: string, i: number): number {
  const n = s.length;
  let j = i + 1;
  while (j < n && isDigit(s.charCodeAt(j))) j++;
  return j;
}

/**
 * End of the numeric literal at i (a digit, or `.` before a digit): decimal with `_` separators,
 * fraction and exponent, or 0x/0o/0b integers. Trailing identifier characters ("junk", an error
 * to Postgres) are not included; see `junkEnd`.
 */
export function numberEnd(s: string, i: number): number {
  const c = s.charCodeAt(i);
  if (c === 48) {
    const radix = lowerAscii(s.charCodeAt(i + 1));
    const max = radix === 120 ? 16 : radix === 111 ? 8 : radix === 98 ? 2 : 0;
    if (max > 0) {
      const end = digitsEnd(s, i + 2, max, true);
      if (end > i + 2) return end;
    }
  }
  let j = c === 46 ? i : digitsEnd(s, i, 10, false);
  // `1..2` is the integer 1 followed by `..`, as in scan.l's decimalfail rule.
  if (s.charCodeAt(j) === 46 && s.charCodeAt(j + 1) !== 46) j = digitsEnd(s, j + 1, 10, false);
  if (lowerAscii(s.charCodeAt(j)) === 101) {
    let k = j + 1;
    const sign = s.charCodeAt(k);
    if (sign === 43 || sign === 45) k++;
    if (isDigit(s.charCodeAt(k))) j = digitsEnd(s, k, 10, false);
  }
  return j;
}

/** Digits of the given radix with single `_` separators between them. */
function digitsEnd(s: string, i: number, radix: number, leadingUnderscore: boolean): number {
  let j = i;
  for (;;) {
    let c = s.charCodeAt(j);
    let k = j;
    if (c === 95 && (leadingUnderscore || j > i)) c = s.charCodeAt(++k);
    if (!isRadixDigit(c, radix)) return j;
    j = k + 1;
  }
}

function isRadixDigit(c: number, radix: number): boolean {
  if (radix === 16) return isDigit(c) || (lowerAscii(c) >= 97 && lowerAscii(c) <= 102);
  return c >= 48 && c < 48 + radix;
}

/** End of the identifier characters glued to a number ending at i (i itself when there are none). */
export function junkEnd(s: string, i: number): number {
  return isIdentStart(s.charCodeAt(i)) ? wordEnd(s, i) : i;
}
