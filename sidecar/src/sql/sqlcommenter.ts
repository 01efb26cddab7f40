/**
 * sqlcommenter tags (https://google.github.io/sqlcommenter/spec/): a comment at the very end of the
 * statement, `/*key='value',key2='value2'*\/`, keys and values URL-encoded, values single-quoted
 * with `'` escaped as `\'`. Only that last comment is read, scanning from the end.
 */
import { isSpace } from './scan.js';
import { COMMENT, EOF, OP, SCAN_DEFAULT, Tokenizer } from './tokenizer.js';

const tokens = new Tokenizer();

/**
 * The tags of the statement's trailing sqlcommenter comment; {} when there is none or it is
 * malformed. Only a real comment counts: text that merely ends in `*\/` inside a string or a
 * dollar quote (scanned under the session's `flags`) carries no tags.
 */
export function sqlCommenterTags(sql: string, flags: number = SCAN_DEFAULT): Record<string, string> {
  let end = trimEnd(sql, sql.length);
  // Tolerate a terminating `;` after the comment, as some drivers place it there.
  if (sql.charCodeAt(end - 1) === 59) end = trimEnd(sql, end - 1);
  if (end < 4 || sql.charCodeAt(end - 1) !== 47 || sql.charCodeAt(end - 2) !== 42) return {};
  const open = sql.lastIndexOf('/*', end - 3);
  if (open < 0 || open + 2 > end - 2 || !isLastComment(sql, open, end, flags)) return {};
  return parseTags(sql, open + 2, end - 2) ?? {};
}

/** Whether sql[open, end) is a comment token of its own, and only a `;` may follow it. */
function isLastComment(sql: string, open: number, end: number, flags: number): boolean {
  const t = tokens.reset(sql, flags);
  let found = false;
  for (let k = t.next(); k !== EOF; k = t.next()) {
    if (found && !(k === OP && t.isOp(59))) {
      found = false;
      break;
    }
    if (k === COMMENT && t.start === open && t.end === end && !t.unterminated) found = true;
  }
  t.release();
  return found;
}

function trimEnd(s: string, end: number): number {
  while (end > 0 && isSpace(s.charCodeAt(end - 1))) end--;
  return end;
}

/** key='value' pairs separated by commas in s[start, end); null when anything is out of place. */
function parseTags(s: string, start: number, end: number): Record<string, string> | null {
  const entries: [string, string][] = [];
  let i = skipSpaces(s, start, end);
  while (i < end) {
    const eq = s.indexOf('=', i);
    if (eq < 0 || eq >= end) return null;
    const key = decode(unescapeMeta(s.slice(i, trimEnd(s, eq))));
    i = skipSpaces(s, eq + 1, end);
    if (s.charCodeAt(i) !== 39) return null;
    let j = i + 1;
    // The closing quote is the first one not escaped by `\`.
    while (j < end && s.charCodeAt(j) !== 39) j += s.charCodeAt(j) === 92 ? 2 : 1;
    if (j >= end) return null;
    const raw = unescapeMeta(s.slice(i + 1, j));
    const value = decode(raw);
    if (!key || value === null) return null;
    entries.push([key, value]);
    i = skipSpaces(s, j + 1, end);
    if (i < end) {
      if (s.charCodeAt(i) !== 44) return null;
      i = skipSpaces(s, i + 1, end);
      if (i >= end) return null;
    }
  }
  // fromEntries defines own properties, so a `__proto__` key stays an ordinary tag.
  return Object.fromEntries(entries);
}

/** Undoes the spec's meta-character escaping: `\` makes the next character literal. */
function unescapeMeta(text: string): string {
  return text.includes('\\') ? text.replace(/\\(.)/gs, '$1') : text;
}

function skipSpaces(s: string, i: number, end: number): number {
  while (i < end && isSpace(s.charCodeAt(i))) i++;
  return i;
}

function decode(text: string): string | null {
  try {
    return decodeURIComponent(text);
  } catch {
    return null;
  }
}
