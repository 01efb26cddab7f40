/**
 * The one SQL tokenizer: splitting, normalizing and classifying all read their tokens from here,
 * so they can never disagree with each other about where a string, comment or statement ends.
 *
 * It follows Postgres's server scanner (src/backend/parser/scan.l) closely enough to find every
 * token boundary Postgres finds, under the session settings that change them:
 * - `standard_conforming_strings = off` makes '…' (and N'…') take backslash escapes like E'…';
 *   B'…' and X'…' never do, U&'…' is an error there anyway.
 * - Client encodings: Postgres converts a query to the server encoding before scanning it, so the
 *   tokenizer scans the decoded text (capture/encoding.ts decodes it with the session's client
 *   encoding, never byte for byte). Every non-ASCII character counts as an identifier character,
 *   as high-bit bytes do in scan.l, so no byte of a multibyte character can act as `\` or `'`.
 *
 * Tokens are (kind, start, end) views into the text; whitespace is skipped, comments are tokens.
 * `next` allocates nothing: one Tokenizer per caller module, reset for each text.
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
  lowerAscii,
  numberEnd,
  paramEnd,
  QUOTE_ESCAPE,
  QUOTE_PLAIN,
  QUOTE_STANDARD,
  quotedIdentEnd,
  stringEnd,
  wordEnd,
  wordIs,
} from './scan.js';

/** Token kinds. */
export const EOF = 0;
/** An unquoted identifier or keyword. */
export const WORD = 1;
/** One operator or punctuation character (`;`, `(`, `+`, …). */
export const OP = 2;
/** A string constant of any kind ('…', E'…', U&'…', B'…', X'…', N'…'), prefix and quotes included. */
export const STRING = 3;
/** A dollar-quoted string constant ($$…$$, $tag$…$tag$). */
export const DOLLAR_STRING = 4;
/** A quoted identifier ("…" or U&"…"). */
export const QUOTED_IDENT = 5;
export const NUMBER = 6;
/** A positional parameter, `$1`. */
export const PARAM = 7;
/** A `--` or (nested) block comment. */
export const COMMENT = 8;

export type TokenKindCode = 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8;
export const TOKEN_KIND_NAMES = [
  'eof',
  'word',
  'op',
  'string',
  'dollarString',
  'quotedIdent',
  'number',
  'param',
  'comment',
] as const;

/** Scan flags (a bit set, so the per-statement path passes a number, not an object). */
export const SCAN_DEFAULT = 0;
/** standard_conforming_strings is off: '…' takes backslash escapes. */
export const SCS_OFF = 1;

/** Session settings that change how text is tokenized, as Postgres reports them. */
export interface ScanSettings {
  standardConformingStrings: boolean;
}

export function scanFlags(settings: ScanSettings): number {
  return settings.standardConformingStrings ? SCAN_DEFAULT : SCS_OFF;
}

export class Tokenizer {
  /** The current token is text[start, end), of this kind. */
  kind: number = EOF;
  start = 0;
  end = 0;
  /** The current token runs to the end of the text without its closing quote or comment end. */
  unterminated = false;
  private text = '';
  private quoteMode = QUOTE_STANDARD;

  /** Starts over on `text`, scanned under `flags` (SCS_OFF…). */
  reset(text: string, flags: number = SCAN_DEFAULT): this {
    this.text = text;
    this.quoteMode = flags & SCS_OFF ? QUOTE_ESCAPE : QUOTE_STANDARD;
    this.kind = EOF;
    this.start = this.end = 0;
    this.unterminated = false;
    return this;
  }

  /** Drops the text, so an idle tokenizer does not keep it alive. */
  release(): void {
    this.text = '';
    this.kind = EOF;
    this.start = this.end = 0;
  }

  /** Moves back so that the next `next()` reads the token starting at `at` (a token start seen before). */
  seek(at: number): void {
    this.end = at;
  }

  /** Advances to the next token (comments included) and returns its kind. */
  next(): number {
    const s = this.text;
    const n = s.length;
    let i = this.end;
    while (i < n && isSpace(s.charCodeAt(i))) i++;
    this.unterminated = false;
    if (i >= n) return this.set(EOF, n, n);
    const c = s.charCodeAt(i);
    const d = s.charCodeAt(i + 1);
    if (c === 45 && d === 45) return this.set(COMMENT, i, lineCommentEnd(s, i));
    if (c === 47 && d === 42) return this.set(COMMENT, i, this.orEnd(blockCommentEnd(s, i)));
    if (c === 39) return this.set(STRING, i, this.orEnd(stringEnd(s, i, this.quoteMode)));
    if (c === 34) return this.set(QUOTED_IDENT, i, this.orEnd(quotedIdentEnd(s, i)));
    if (isIdentStart(c)) {
      const e = wordEnd(s, i);
      // A one-letter word glued to a quote is a string prefix (flex's longest match: `e'` beats `e`).
      if (e === i + 1 && (d === 39 || d === 38)) {
        const prefixed = this.prefixed(s, i, lowerAscii(c), d);
        if (prefixed !== EOF) return prefixed;
      }
      return this.set(WORD, i, e);
    }
    if (c === 36) {
      const tagEnd = dollarTagEnd(s, i);
      if (tagEnd > 0) return this.set(DOLLAR_STRING, i, this.orEnd(dollarEnd(s, i, tagEnd)));
      if (isDigit(d)) return this.set(PARAM, i, junkEnd(s, paramEnd(s, i)));
      return this.set(OP, i, i + 1);
    }
    if (isDigit(c) || (c === 46 && isDigit(d))) return this.set(NUMBER, i, junkEnd(s, numberEnd(s, i)));
    return this.set(OP, i, i + 1);
  }

  /** Advances to the next token that is not a comment. */
  nextSignificant(): number {
    let k = this.next();
    while (k === COMMENT) k = this.next();
    return k;
  }

  /** Whether the current token is the keyword `lower` (given in lower case). */
  is(lower: string): boolean {
    return this.kind === WORD && wordIs(this.text, this.start, this.end, lower);
  }

  /** Whether the current token is the operator character with this code. */
  isOp(code: number): boolean {
    return this.kind === OP && this.text.charCodeAt(this.start) === code;
  }

  /** Code of the character at `at` (NaN past the end). */
  charAt(at: number): number {
    return this.text.charCodeAt(at);
  }

  /** The current token's text (allocates). */
  tokenText(): string {
    return this.text.slice(this.start, this.end);
  }

  /** A prefixed constant at i (E'…', B'…', X'…', N'…', U&'…', U&"…"), or EOF when the word is not a prefix. */
  private prefixed(s: string, i: number, letter: number, d: number): number {
    if (d === 39) {
      if (letter === 101) return this.set(STRING, i, this.orEnd(stringEnd(s, i + 1, QUOTE_ESCAPE)));
      if (letter === 98 || letter === 120) return this.set(STRING, i, this.orEnd(stringEnd(s, i + 1, QUOTE_PLAIN)));
      // N'…' is a national character constant: an ordinary string after the N.
      if (letter === 110) return this.set(STRING, i, this.orEnd(stringEnd(s, i + 1, this.quoteMode)));
      return EOF;
    }
    if (letter !== 117) return EOF;
    const q = s.charCodeAt(i + 2);
    // U&'…' ends like a standard string whatever the setting (with it off, Postgres refuses it).
    if (q === 39) return this.set(STRING, i, this.orEnd(stringEnd(s, i + 2, QUOTE_STANDARD)));
    if (q === 34) return this.set(QUOTED_IDENT, i, this.orEnd(quotedIdentEnd(s, i + 2)));
    return EOF;
  }

  private orEnd(e: number): number {
    if (e >= 0) return e;
    this.unterminated = true;
    return this.text.length;
  }

  private set(kind: number, start: number, end: number): number {
    this.kind = kind;
    this.start = start;
    this.end = end;
    return kind;
  }
}

/** One token, for callers that want a list (policy, tests); the hot paths use Tokenizer directly. */
export interface Token {
  kind: (typeof TOKEN_KIND_NAMES)[number];
  offset: number;
  length: number;
}

/** Every token of `text` (comments included), scanned under `settings`. */
export function tokenize(text: string, settings: ScanSettings = { standardConformingStrings: true }): Token[] {
  const t = new Tokenizer().reset(text, scanFlags(settings));
  const out: Token[] = [];
  for (let k = t.next(); k !== EOF; k = t.next()) {
    out.push({ kind: TOKEN_KIND_NAMES[k]!, offset: t.start, length: t.end - t.start });
  }
  return out;
}
