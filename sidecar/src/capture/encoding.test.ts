import iconv from 'iconv-lite';
import { describe, expect, it } from 'vitest';
import { codecFor, decodeText, exactText, scansRawBytes, shadowOf } from './encoding.js';
import { statementTexts } from './statement-text.js';

const sjis = (s: string) => iconv.encode(s, 'shift_jis');

describe('client encodings', () => {
  it('knows Postgres’s names and aliases', () => {
    expect(codecFor('UTF8').node).toBe('utf8');
    expect(codecFor('unicode').name).toBe('UTF8');
    expect(codecFor('LATIN1').node).toBe('latin1');
    expect(codecFor('SJIS').iconv).toBe('shift_jis');
    expect(codecFor('Shift_JIS').name).toBe('SJIS');
    expect(codecFor('WIN1251').iconv).toBe('windows-1251');
    expect(codecFor('JOHAB')).toMatchObject({ node: null, iconv: null });
  });

  it('decodes SJIS exactly, second bytes 0x5C included', () => {
    const bytes = sjis("E'ソ表'");
    expect(bytes.includes(0x5c)).toBe(true);
    expect(exactText(bytes, codecFor('SJIS'))).toBe("E'ソ表'");
    expect(decodeText(bytes, codecFor('SJIS'), false)).toEqual({ text: "E'ソ表'", raw: null });
  });

  it('keeps the bytes when it cannot convert exactly', () => {
    const bytes = sjis("'ソ'");
    const decoded = decodeText(bytes, codecFor('SHIFT_JIS_2004'), false);
    expect(decoded.text).toBe("'\ufffd'");
    expect(decoded.raw?.equals(bytes)).toBe(true);
    // Invalid SJIS (a lone lead byte) does not round-trip either.
    expect(exactText(Buffer.from([0x27, 0x83, 0x27]), codecFor('SJIS'))).toBeNull();
  });

  it('shadows multibyte characters as non-ASCII, byte for byte', () => {
    const bytes = sjis("E'ソ'; x");
    expect(shadowOf(bytes, codecFor('SJIS'), false)).toBe("E'\ufffd\ufffd'; x");
    // A SQL_ASCII server scans the raw bytes: the 0x5C is a backslash to it.
    expect(shadowOf(bytes, codecFor('SJIS'), true)).toBe("E'\ufffd\\'; x");
    expect(scansRawBytes(codecFor('SJIS'), 'SQL_ASCII')).toBe(true);
    expect(scansRawBytes(codecFor('SJIS'), 'UTF8')).toBe(false);
    expect(scansRawBytes(codecFor('EUC_JP'), 'SQL_ASCII')).toBe(false);
  });

  it('JOHAB and GB18030 character lengths follow pg_encoding_mblen', () => {
    // JOHAB: a high lead byte and an ASCII second byte (0x5C) are one character.
    expect(shadowOf(Buffer.from([0x88, 0x5c, 0x27]), codecFor('JOHAB'), false)).toBe("\ufffd\ufffd'");
    // GB18030: four bytes when the second is a digit.
    expect(shadowOf(Buffer.from([0x81, 0x30, 0x81, 0x30, 0x27]), codecFor('GB18030'), false)).toBe(
      "\ufffd\ufffd\ufffd\ufffd'",
    );
  });

  it('splits raw texts on the shadow and cuts each statement’s exact bytes', () => {
    const bytes = sjis("select E'ソ'; select 'x'");
    const raw = { bytes, encoding: 'SHIFT_JIS_2004', bytewise: false };
    const parts = statementTexts('ignored', raw, 0, true);
    expect(parts.map((p) => [p.text, p.raw?.toString('hex') ?? null, p.encoding])).toEqual([
      ["select E'\ufffd'", sjis("select E'ソ'").toString('hex'), 'SHIFT_JIS_2004'],
      ["select 'x'", null, null],
    ]);
  });
});
