/**
 * A record's text cut into the statements Postgres ran, each with its exact bytes when the text
 * alone is not exact (capture/encoding.ts). Shared by the event builder and the tracker (which
 * reads SQL-level PREPARE statements out of a Query).
 */
import { splitStatements } from '../sql/lexer.js';
import { codecFor, decodeText, shadowOf, type TextCodec } from './encoding.js';
import type { RawText } from './records.js';

export interface StatementText {
  /** The statement as recorded: exact, or a best-effort rendering when `raw` is set. */
  text: string;
  /** What the tokenizer scans: `text`, or the byte-for-byte shadow of `raw`. */
  scan: string;
  /** The statement's exact bytes, when `text` is not exact. */
  raw: Buffer | null;
  encoding: string | null;
  /** The statement's bytes whenever the record kept bytes (offsets into `scan` are byte offsets then). */
  bytes: Buffer | null;
}

/** The statements of a Query's text (or the one statement of a Parse), scanned under `flags`. */
export function statementTexts(
  text: string,
  raw: RawText | null | undefined,
  flags: number,
  split: boolean,
): StatementText[] {
  if (!raw) {
    if (!split) return [{ text, scan: text, raw: null, encoding: null, bytes: null }];
    return splitStatements(text, flags).map((s) => ({
      text: s.text,
      scan: s.text,
      raw: null,
      encoding: null,
      bytes: null,
    }));
  }
  const codec = codecFor(raw.encoding);
  const shadow = shadowOf(raw.bytes, codec, raw.bytewise);
  const slices = split ? splitStatements(shadow, flags) : [{ text: shadow, offset: 0 }];
  return slices.map((s) => rawStatement(raw.bytes.subarray(s.offset, s.offset + s.text.length), s.text, codec));
}

/** One statement's bytes (offsets into the shadow are byte offsets): exact text when it converts exactly. */
export function rawStatement(bytes: Buffer, scan: string, codec: TextCodec): StatementText {
  const decoded = decodeText(bytes, codec, false);
  return { text: decoded.text, scan, raw: decoded.raw, encoding: decoded.raw ? codec.name : null, bytes };
}
