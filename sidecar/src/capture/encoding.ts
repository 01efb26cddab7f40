/**
 * Statement text in the session's client encoding, as Postgres reports it (ParameterStatus
 * `client_encoding`, `server_encoding`).
 *
 * Postgres converts a query to the server encoding before its scanner sees it, so the SQL
 * tokenizer must scan the text as characters, never as bytes: in SJIS, BIG5, GBK, UHC, GB18030
 * and JOHAB the second byte of a character may be 0x5C (`\`) or 0x27 (`'`). UTF-8 and LATIN1 are
 * decoded by Node itself (the fast path); every other encoding with iconv-lite, and the result is
 * checked by encoding it back. When that round trip is not byte-exact (a character iconv-lite maps
 * differently, an encoding it lacks), the record keeps the exact bytes: the event builder then
 * splits a byte-for-byte "shadow" of them (each byte one character, every byte of a multibyte
 * character non-ASCII) and records each statement's bytes as base64 beside a best-effort text.
 *
 * With server_encoding SQL_ASCII, Postgres converts nothing and scans the client's bytes as they
 * are: then a 0x5C second byte *is* a backslash, and the shadow is byte for byte.
 */
import iconv from 'iconv-lite';

export interface TextCodec {
  /** Postgres's name of the client encoding, upper case (`SJIS`, `UTF8`…). */
  name: string;
  /** Decoded by Buffer itself, exactly. */
  node: 'utf8' | 'latin1' | null;
  /** iconv-lite's name for it, when iconv-lite has it. */
  iconv: string | null;
  /** Bytes of the character whose first byte is at i (Postgres's pg_encoding_mblen), for the shadow. */
  charLength: (bytes: Buffer, i: number) => number;
}

const single = () => 1;
/** EUC_*, MULE_INTERNAL, the single-byte encodings: every byte of a multibyte character has the high bit. */
const highBitOnly = single;
/** Lead byte with the high bit, then one byte that may be ASCII (BIG5, GBK, UHC). */
const twoIfHigh = (b: Buffer, i: number) => (b[i]! >= 0x80 ? 2 : 1);
/** pg_sjis_mblen: 0xA1–0xDF are one-byte katakana. */
const sjis = (b: Buffer, i: number) => {
  const c = b[i]!;
  return c >= 0xa1 && c <= 0xdf ? 1 : c >= 0x80 ? 2 : 1;
};
/** pg_gb18030_mblen: four bytes when the second is a digit. */
const gb18030 = (b: Buffer, i: number) => {
  if (b[i]! < 0x80) return 1;
  const d = b[i + 1] ?? 0;
  return d >= 0x30 && d <= 0x39 ? 4 : 2;
};
/** pg_johab_mblen (pg_euc_mblen): SS2 two bytes, SS3 three, other high bytes two. */
const johab = (b: Buffer, i: number) => {
  const c = b[i]!;
  return c === 0x8e ? 2 : c === 0x8f ? 3 : c >= 0x80 ? 2 : 1;
};

const TABLE: Record<string, [iconvName: string | null, charLength: TextCodec['charLength']]> = {
  EUC_JP: ['euc-jp', highBitOnly],
  EUC_CN: ['gb2312', highBitOnly],
  EUC_KR: ['euc-kr', highBitOnly],
  EUC_TW: [null, highBitOnly],
  EUC_JIS_2004: [null, highBitOnly],
  MULE_INTERNAL: [null, highBitOnly],
  SJIS: ['shift_jis', sjis],
  SHIFT_JIS_2004: [null, sjis],
  BIG5: ['big5', twoIfHigh],
  GBK: ['gbk', twoIfHigh],
  UHC: ['cp949', twoIfHigh],
  GB18030: ['gb18030', gb18030],
  JOHAB: [null, johab],
  LATIN2: ['iso-8859-2', single],
  LATIN3: ['iso-8859-3', single],
  LATIN4: ['iso-8859-4', single],
  LATIN5: ['iso-8859-9', single],
  LATIN6: ['iso-8859-10', single],
  LATIN7: ['iso-8859-13', single],
  LATIN8: ['iso-8859-14', single],
  LATIN9: ['iso-8859-15', single],
  LATIN10: ['iso-8859-16', single],
  ISO_8859_5: ['iso-8859-5', single],
  ISO_8859_6: ['iso-8859-6', single],
  ISO_8859_7: ['iso-8859-7', single],
  ISO_8859_8: ['iso-8859-8', single],
  WIN866: ['cp866', single],
  WIN874: ['windows-874', single],
  WIN1250: ['windows-1250', single],
  WIN1251: ['windows-1251', single],
  WIN1252: ['windows-1252', single],
  WIN1253: ['windows-1253', single],
  WIN1254: ['windows-1254', single],
  WIN1255: ['windows-1255', single],
  WIN1256: ['windows-1256', single],
  WIN1257: ['windows-1257', single],
  WIN1258: ['windows-1258', single],
  KOI8R: ['koi8-r', single],
  KOI8U: ['koi8-u', single],
};

// Postgres also accepts aliases (pg_encname_tbl); ParameterStatus reports the canonical name, but
// be lenient with what a test or an older server may say.
const ALIASES: Record<string, string> = {
  UNICODE: 'UTF8',
  UTF_8: 'UTF8',
  ISO88591: 'LATIN1',
  ISO_8859_1: 'LATIN1',
  SHIFTJIS: 'SJIS',
  SHIFT_JIS: 'SJIS',
  MSKANJI: 'SJIS',
  WIN: 'WIN1251',
  ALT: 'WIN866',
  KOI8: 'KOI8R',
  TCVN: 'WIN1258',
  VSCII: 'WIN1258',
};

export const UTF8_CODEC: TextCodec = { name: 'UTF8', node: 'utf8', iconv: null, charLength: single };

/** The codec for a client encoding as Postgres names it; UTF-8 for anything unknown. */
export function codecFor(clientEncoding: string): TextCodec {
  const upper = clientEncoding.trim().toUpperCase().replace(/-/g, '_');
  const name = ALIASES[upper] ?? ALIASES[upper.replace(/_/g, '')] ?? upper;
  if (name === 'UTF8' || name === 'SQL_ASCII') return { ...UTF8_CODEC, name };
  if (name === 'LATIN1') return { name, node: 'latin1', iconv: null, charLength: single };
  const entry = TABLE[name];
  if (!entry) return { ...UTF8_CODEC, name };
  return { name, node: null, iconv: entry[0], charLength: entry[1] };
}

/**
 * Whether Postgres's scanner may see a byte below 0x80 inside a multibyte character of this
 * codec's text: when it converts nothing (server SQL_ASCII) and the encoding has such bytes.
 */
export function scansRawBytes(codec: TextCodec, serverEncoding: string): boolean {
  return serverEncoding.toUpperCase() === 'SQL_ASCII' && codec.node === null && codec.charLength !== single;
}

export interface DecodedText {
  text: string;
  /** The exact bytes, kept when `text` is not exactly what they say (or cannot be scanned as is). */
  raw: Buffer | null;
}

/** Decodes bytes[start, end) of an encoding Node does not know, keeping the bytes unless exact. */
export function decodeText(bytes: Buffer, codec: TextCodec, keepRaw: boolean): DecodedText {
  const exact = exactText(bytes, codec);
  if (exact !== null && !keepRaw) return { text: exact, raw: null };
  return { text: exact ?? lossyText(bytes, codec), raw: Buffer.from(bytes) };
}

/** The text of these bytes when it converts back to exactly them; else null. */
export function exactText(bytes: Buffer, codec: TextCodec): string | null {
  if (codec.node === 'latin1') return bytes.toString('latin1');
  if (codec.node === 'utf8' || codec.iconv === null) {
    if (codec.node !== 'utf8' && !isAscii(bytes)) return null;
    const text = bytes.toString('utf8');
    return Buffer.byteLength(text) === bytes.length && Buffer.from(text).equals(bytes) ? text : null;
  }
  const text = iconv.decode(bytes, codec.iconv);
  return iconv.encode(text, codec.iconv).equals(bytes) ? text : null;
}

/** A readable rendering: iconv-lite's decoding, or ASCII with U+FFFD for what cannot be decoded. */
export function lossyText(bytes: Buffer, codec: TextCodec): string {
  if (codec.iconv) return iconv.decode(bytes, codec.iconv);
  if (codec.node) return bytes.toString(codec.node);
  let out = '';
  for (let i = 0; i < bytes.length; ) {
    const len = codec.charLength(bytes, i);
    out += len === 1 && bytes[i]! < 0x80 ? String.fromCharCode(bytes[i]!) : '\ufffd';
    i += Math.max(1, len);
  }
  return out;
}

/**
 * One character per byte, ASCII bytes as themselves and every byte of a multibyte character (and
 * every high byte) as U+FFFD, so the tokenizer scans the bytes as Postgres does and offsets into
 * the shadow are byte offsets. `bytewise`: Postgres scans raw bytes (server SQL_ASCII).
 */
export function shadowOf(bytes: Buffer, codec: TextCodec, bytewise: boolean): string {
  const units = Buffer.alloc(bytes.length * 2);
  for (let i = 0; i < bytes.length; ) {
    const len = bytewise ? 1 : Math.max(1, Math.min(codec.charLength(bytes, i), bytes.length - i));
    const c = bytes[i]!;
    const ascii = len === 1 && c < 0x80;
    for (let k = 0; k < len; k++) {
      // U+FFFD little-endian: 0xFD 0xFF.
      units[2 * (i + k)] = ascii ? c : 0xfd;
      units[2 * (i + k) + 1] = ascii ? 0 : 0xff;
    }
    i += len;
  }
  return units.toString('utf16le');
}

/**
 * A name (of a prepared statement) as the protocol decoder reads Parse and Bind names: its bytes in
 * the client encoding, read as UTF-8. So `PREPARE "表"` in SJIS and Bind("表" in SJIS) agree.
 */
export function protocolNameKey(name: string, codec: TextCodec): string {
  if (codec.node === 'utf8' || isAsciiText(name)) return name;
  if (codec.node === 'latin1') return Buffer.from(name, 'latin1').toString('utf8');
  return codec.iconv ? iconv.encode(name, codec.iconv).toString('utf8') : name;
}

function isAsciiText(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) >= 0x80) return false;
  return true;
}

function isAscii(bytes: Buffer): boolean {
  for (let i = 0; i < bytes.length; i++) if (bytes[i]! >= 0x80) return false;
  return true;
}
