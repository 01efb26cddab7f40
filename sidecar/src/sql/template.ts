/**
 * A statement's template for the policy's fast path: the text with every literal replaced by a
 * parameter (`$N`) and every comment by a space. Statements that differ only
 * in literal values (every simple-protocol statement with a literal is a new text) share one
 * template, so the parser runs once per template, not once per text.
 *
 * The template must parse to the same tree as the text apart from those constants, and must not
 * parse where the text would not. So this gives up (null) wherever a literal is not one the parser
 * is certain to accept in any place a parameter is accepted:
 * - prefixed strings (E'…', B'…', X'…', N'…', U&'…'): their escapes and digits can be invalid;
 * - numbers other than plain decimals (`1_000`, `0x1F`, trailing junk such as `1e` or `1abc`);
 * - unterminated strings, comments or quoted identifiers;
 * - a literal followed by `[`, `.` or `(`: `$1[1]` and `$1.f` parse, `'a'[1]` and `'a'.f` do not.
 * A literal the grammar does not take a parameter for (`date '…'`, `SET x = 1`, `COPY … FROM 'f'`)
 * only makes the template fail to parse: the caller then parses the text itself.
 */
import { COMMENT, DOLLAR_STRING, EOF, NUMBER, OP, SCAN_DEFAULT, STRING, Tokenizer } from './tokenizer.js';

export interface StatementTemplate {
  /** The text with literals as `$N` (numbered above any parameter a client could write). */
  readonly text: string;
  /** How many literals were replaced: 0 means the template reads exactly as the text does. */
  readonly literals: number;
}

/** Parameter numbers for literals start here, so they never meet a client's own `$1`. */
const FIRST_LITERAL_PARAM = 100_000;

const tokens = new Tokenizer();

/** The template of `sql` as Postgres scans it with standard_conforming_strings on, or null (see above). */
export function statementTemplate(sql: string): StatementTemplate | null {
  const t = tokens.reset(sql, SCAN_DEFAULT);
  let out = '';
  let from = 0; // start of the text not yet copied
  let literals = 0;
  let afterLiteral = false;
  try {
    for (let k = t.next(); k !== EOF; k = t.next()) {
      if (t.unterminated) return null;
      const start = t.start;
      // A comment is whitespace to Postgres: one space keeps `a/**/b` two tokens.
      if (k === COMMENT) {
        out += `${sql.slice(from, start)} `;
        from = t.end;
        continue;
      }
      if (afterLiteral && k === OP) {
        const c = sql.charCodeAt(start);
        if (c === 91 || c === 46 || c === 40) return null;
      }
      afterLiteral = false;
      if (k === STRING && sql.charCodeAt(start) !== 39) return null;
      if (k === NUMBER && !plainDecimal(sql, start, t.end)) return null;
      if (k === STRING || k === DOLLAR_STRING || k === NUMBER) {
        // Spaces around the parameter: `$N` must not run into a neighbouring `$` or identifier.
        out += `${sql.slice(from, start)} $${FIRST_LITERAL_PARAM + literals} `;
        from = t.end;
        literals++;
        afterLiteral = true;
      }
    }
  } finally {
    t.release();
  }
  out += sql.slice(from);
  return { text: out, literals };
}

/** Digits, an optional `.` and digits, an optional exponent: the numbers every grammar position reads alike. */
function plainDecimal(s: string, start: number, end: number): boolean {
  let i = start;
  while (i < end && isDigit(s.charCodeAt(i))) i++;
  let digits = i - start;
  if (i < end && s.charCodeAt(i) === 46) {
    const fraction = ++i;
    while (i < end && isDigit(s.charCodeAt(i))) i++;
    digits += i - fraction;
  }
  if (digits === 0) return false;
  if (i < end && (s.charCodeAt(i) | 0x20) === 101) {
    i++;
    if (i < end && (s.charCodeAt(i) === 43 || s.charCodeAt(i) === 45)) i++;
    const exponentStart = i;
    while (i < end && isDigit(s.charCodeAt(i))) i++;
    if (i === exponentStart) return false;
  }
  return i === end;
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}
