/**
 * SQL-level PREPARE, DEALLOCATE and DISCARD ALL act on the same prepared statements as the
 * protocol's Parse and Close: `PREPARE q AS delete …` followed by Bind(statement "q") + Execute
 * runs the DELETE. The tracker applies them when Postgres confirms them (their CommandComplete),
 * so that a later Execute of that name records the body that ran, never a stale Parse's text.
 * Prepared statements are not transactional: a rollback does not undo them.
 */

import { EOF, OP, QUOTED_IDENT, Tokenizer, WORD } from '../sql/tokenizer.js';
import { codecFor, protocolNameKey, type TextCodec } from './encoding.js';
import type { RawText, StatementRecord } from './records.js';
import { rawStatement, statementTexts } from './statement-text.js';

export interface Prepared {
  text: string;
  name: string;
  /** Scan flags in force when it was parsed. */
  flags: number;
  raw: RawText | null;
  /** The policy's analysis of `text`, made once (at its first Execute) and kept with it. */
  analysis?: unknown;
}

const PREPARE = 1;
const DEALLOCATE = 2;
const DEALLOCATE_ALL = 3;
const DISCARD_ALL = 4;

/** What a CommandComplete tag does to prepared statements, or null (nothing). */
export function sqlPreparedEffect(tag: string): number | null {
  switch (tag) {
    case 'PREPARE':
      return PREPARE;
    case 'DEALLOCATE':
      return DEALLOCATE;
    case 'DEALLOCATE ALL':
      return DEALLOCATE_ALL;
    case 'DISCARD ALL':
      return DISCARD_ALL;
    default:
      return null;
  }
}

/**
 * Applies the statement at `index` of `record` (the one Postgres just completed with `tag`).
 * DISCARD ALL also closes every portal.
 */
export function applySqlPrepared(
  prepared: Map<string, Prepared>,
  portals: Map<string, unknown>,
  record: StatementRecord,
  index: number,
  tag: string,
  codec: TextCodec,
): void {
  const effect = sqlPreparedEffect(tag);
  if (effect === DEALLOCATE_ALL || effect === DISCARD_ALL) {
    prepared.clear();
    if (effect === DISCARD_ALL) portals.clear();
    return;
  }
  const flags = record.scanFlags ?? 0;
  const statement = statementTexts(record.text, record.raw, flags, record.kind === 'query')[index];
  if (!statement) return;
  // Names are keyed as the protocol's decoder reads Parse and Bind names: the client's bytes read
  // as UTF-8. Offsets into a scanned shadow are byte offsets: names come from the bytes then.
  const bytes = record.raw ? statement.bytes : null;
  const source: TokenSource = bytes
    ? (start, end) => bytes.subarray(start, end).toString('utf8')
    : (start, end) => protocolNameKey(statement.text.slice(start, end), codec);
  if (effect === DEALLOCATE) {
    const name = deallocateName(statement.scan, flags, source);
    if (name !== null) prepared.delete(name);
    return;
  }
  const head = prepareHead(statement.scan, flags, source);
  if (head === null) return;
  let text: string;
  let raw: RawText | null = null;
  if (bytes && record.raw) {
    const rawCodec = codecFor(record.raw.encoding);
    const body = rawStatement(bytes.subarray(head.bodyStart), '', rawCodec);
    text = body.text;
    if (body.raw) raw = { bytes: body.raw, encoding: rawCodec.name, bytewise: record.raw.bytewise };
  } else {
    text = statement.text.slice(head.bodyStart);
  }
  prepared.set(head.name, { text, name: head.name, flags, raw });
}

const tokens = new Tokenizer();

/** The text of scan[start, end): the scanned text itself, or what its bytes say. */
type TokenSource = (start: number, end: number) => string;
const sliceOf =
  (text: string): TokenSource =>
  (start, end) =>
    text.slice(start, end);

/** `PREPARE name [(types)] AS body`: the name and where the body starts, or null when it is not that. */
export function prepareHead(
  sql: string,
  flags: number,
  source: TokenSource = sliceOf(sql),
): { name: string; bodyStart: number } | null {
  const t = tokens.reset(sql, flags);
  try {
    if (t.nextSignificant() !== WORD || !t.is('prepare')) return null;
    t.nextSignificant();
    const name = identifier(t, source);
    if (name === null) return null;
    let k = t.nextSignificant();
    if (k === OP && t.isOp(40)) {
      for (let depth = 1; depth > 0; ) {
        k = t.nextSignificant();
        if (k === EOF) return null;
        if (t.isOp(40)) depth++;
        else if (t.isOp(41)) depth--;
      }
      t.nextSignificant();
    }
    if (!t.is('as')) return null;
    // The body starts at its first token or comment.
    if (t.next() === EOF) return null;
    return { name, bodyStart: t.start };
  } finally {
    t.release();
  }
}

/** `DEALLOCATE [PREPARE] name`: the name, or null (ALL, or not that statement). */
export function deallocateName(sql: string, flags: number, source: TokenSource = sliceOf(sql)): string | null {
  const t = tokens.reset(sql, flags);
  try {
    if (t.nextSignificant() !== WORD || !t.is('deallocate')) return null;
    t.nextSignificant();
    if (t.is('prepare')) t.nextSignificant();
    if (t.is('all')) return null;
    return identifier(t, source);
  } finally {
    t.release();
  }
}

/** The current token as an identifier: unquoted ones folded to lower case (ASCII), quoted ones unescaped. */
function identifier(t: Tokenizer, source: TokenSource): string | null {
  let name: string;
  if (t.kind === WORD) {
    name = source(t.start, t.end).replace(/[A-Z]+/g, (m) => m.toLowerCase());
  } else if (t.kind === QUOTED_IDENT && t.charAt(t.start) === 34 && !t.unterminated) {
    name = source(t.start + 1, t.end - 1).replaceAll('""', '"');
  } else {
    return null;
  }
  return truncateIdentifier(name);
}

/** Postgres truncates identifiers to NAMEDATALEN - 1 = 63 bytes, on a character boundary. */
function truncateIdentifier(name: string): string {
  if (name.length <= 15 || Buffer.byteLength(name) <= 63) return name;
  let out = '';
  let bytes = 0;
  for (const ch of name) {
    const n = Buffer.byteLength(ch);
    if (bytes + n > 63) break;
    out += ch;
    bytes += n;
  }
  return out;
}
