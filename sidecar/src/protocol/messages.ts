/**
 * Decoders for the few messages attribution needs, and encoders for the messages the sidecar
 * itself sends. Decoders take `(buf, start, end)` views of a whole message (header included) and
 * throw ProtocolError on malformed content; nothing here touches a socket.
 */

/** Message type bytes, as char codes, for the messages the sidecar looks at. */
export const F = {
  query: 0x51, // Q
  parse: 0x50, // P
  bind: 0x42, // B
  execute: 0x45, // E
  describe: 0x44, // D
  close: 0x43, // C
  sync: 0x53, // S
  flush: 0x48, // H
  functionCall: 0x46, // F
  copyData: 0x64, // d
  copyDone: 0x63, // c
  copyFail: 0x66, // f
  terminate: 0x58, // X
  password: 0x70, // p (also SASLInitialResponse, SASLResponse, GSSResponse)
} as const;

export const B = {
  authentication: 0x52, // R
  backendKeyData: 0x4b, // K
  parameterStatus: 0x53, // S
  readyForQuery: 0x5a, // Z
  errorResponse: 0x45, // E
  noticeResponse: 0x4e, // N
  notification: 0x41, // A
  commandComplete: 0x43, // C
  emptyQuery: 0x49, // I
  dataRow: 0x44, // D
  rowDescription: 0x54, // T
  noData: 0x6e, // n
  parameterDescription: 0x74, // t
  parseComplete: 0x31, // 1
  bindComplete: 0x32, // 2
  closeComplete: 0x33, // 3
  portalSuspended: 0x73, // s
  copyInResponse: 0x47, // G
  copyOutResponse: 0x48, // H
  copyBothResponse: 0x57, // W
  copyData: 0x64, // d
  copyDone: 0x63, // c
  functionCallResponse: 0x56, // V
  negotiateProtocolVersion: 0x76, // v
} as const;

/** Request codes of untyped startup-phase messages. */
export const REQUEST = {
  ssl: 80877103,
  gssenc: 80877104,
  cancel: 80877102,
} as const;

export const PROTOCOL_3_0 = 196608;
export const PROTOCOL_3_2 = 196610;

export class ProtocolError extends Error {
  constructor(
    message: string,
    readonly sqlstate = '08P01',
  ) {
    super(message);
    this.name = 'ProtocolError';
  }
}

function cstringEnd(buf: Buffer, pos: number, end: number, what: string): number {
  const nul = buf.indexOf(0, pos);
  if (nul < 0 || nul >= end) throw new ProtocolError(`${what}: missing string terminator`);
  return nul;
}

/** Reads a NUL-terminated string; returns the value and the position after it. */
export function readCString(buf: Buffer, pos: number, end: number, what: string, encoding: BufferEncoding = 'utf8') {
  const nul = cstringEnd(buf, pos, end, what);
  return { value: buf.toString(encoding, pos, nul), next: nul + 1 };
}

function need(pos: number, n: number, end: number, what: string): void {
  if (pos + n > end) throw new ProtocolError(`${what}: message too short`);
}

// ---------------------------------------------------------------- startup phase (untyped)

export function requestCode(buf: Buffer, start: number, end: number): number {
  need(start, 8, end, 'startup packet');
  return buf.readInt32BE(start + 4);
}

export interface StartupMessage {
  protocol: number;
  /** Names and values decoded as UTF-8, for decisions only: what goes upstream is `pairs`. */
  params: Map<string, string>;
  /** The parameters as the client sent them, byte for byte and in order (copied out of the packet). */
  pairs: { name: Buffer; value: Buffer }[];
}

export function decodeStartup(buf: Buffer, start: number, end: number): StartupMessage {
  const protocol = requestCode(buf, start, end);
  const params = new Map<string, string>();
  const pairs: StartupMessage['pairs'] = [];
  let pos = start + 8;
  while (pos < end && buf[pos] !== 0) {
    const key = readCString(buf, pos, end, 'startup parameter name');
    const value = readCString(buf, key.next, end, `startup parameter "${key.value}"`);
    params.set(key.value, value.value);
    pairs.push({
      name: Buffer.from(buf.subarray(pos, key.next - 1)),
      value: Buffer.from(buf.subarray(key.next, value.next - 1)),
    });
    pos = value.next;
  }
  if (pos !== end - 1) throw new ProtocolError('startup packet: missing final terminator');
  return { protocol, params, pairs };
}

/**
 * The startup packet for Postgres: the client's parameters byte for byte (a client may send
 * bytes in its own encoding, which a UTF-8 round trip would corrupt), except the values named in
 * `replace`, which take their place or are appended.
 */
export function encodeStartup(
  protocol: number,
  pairs: readonly { name: Buffer; value: Buffer }[],
  replace: ReadonlyMap<string, string> = new Map(),
): Buffer {
  const parts: Buffer[] = [];
  const replaced = new Set<string>();
  for (const { name, value } of pairs) {
    const key = name.toString('latin1');
    const substitute = replace.get(key);
    if (substitute !== undefined) {
      // A repeated parameter is sent once: Postgres would take the last, the sidecar decided on this one.
      if (replaced.has(key)) continue;
      replaced.add(key);
      parts.push(name, NUL, Buffer.from(substitute, 'utf8'), NUL);
    } else {
      parts.push(name, NUL, value, NUL);
    }
  }
  for (const [key, value] of replace) {
    if (!replaced.has(key)) parts.push(Buffer.from(key, 'latin1'), NUL, Buffer.from(value, 'utf8'), NUL);
  }
  parts.push(NUL);
  const body = Buffer.concat(parts);
  const out = Buffer.allocUnsafe(8 + body.length);
  out.writeInt32BE(out.length, 0);
  out.writeInt32BE(protocol, 4);
  body.copy(out, 8);
  return out;
}

const NUL = Buffer.from([0]);

export interface CancelKey {
  pid: number;
  key: Buffer;
}

export function decodeCancelRequest(buf: Buffer, start: number, end: number): CancelKey {
  need(start, 12, end, 'CancelRequest');
  // Protocol 3.2 allows keys up to 256 bytes; 3.0 uses exactly 4.
  const keyLength = end - start - 12;
  if (keyLength < 4 || keyLength > 256) throw new ProtocolError('CancelRequest: invalid key length');
  return { pid: buf.readInt32BE(start + 8), key: Buffer.from(buf.subarray(start + 12, end)) };
}

export function encodeCancelRequest(cancel: CancelKey): Buffer {
  const out = Buffer.allocUnsafe(12 + cancel.key.length);
  out.writeInt32BE(out.length, 0);
  out.writeInt32BE(REQUEST.cancel, 4);
  out.writeInt32BE(cancel.pid, 8);
  cancel.key.copy(out, 12);
  return out;
}

export const SSL_REQUEST = (() => {
  const b = Buffer.alloc(8);
  b.writeInt32BE(8, 0);
  b.writeInt32BE(REQUEST.ssl, 4);
  return b;
})();
export const SSL_YES = Buffer.from('S');
export const SSL_NO = Buffer.from('N');

// ---------------------------------------------------------------- frontend, typed

export function decodeQuery(buf: Buffer, start: number, end: number, encoding: BufferEncoding): string {
  return readCString(buf, start + 5, end, 'Query', encoding).value;
}

export interface ParseMessage {
  name: string;
  text: string;
}

export function decodeParse(buf: Buffer, start: number, end: number, encoding: BufferEncoding): ParseMessage {
  const name = readCString(buf, start + 5, end, 'Parse statement name');
  const text = readCString(buf, name.next, end, 'Parse query', encoding);
  need(text.next, 2, end, 'Parse');
  const types = buf.readInt16BE(text.next);
  if (types < 0 || text.next + 2 + types * 4 !== end) throw new ProtocolError('Parse: parameter types do not fit');
  return { name: name.value, text: text.value };
}

/** What a Bind carries that attribution keeps; values are copied out of the message. */
export interface BindMessage {
  portal: string;
  statement: string;
  /** Parameter values (null for SQL NULL); only filled when `captureValues` was asked for. */
  values: (Buffer | null)[] | null;
  /** Per-parameter byte length, -1 for NULL. */
  lengths: number[];
  /** Per-parameter format code (0 text, 1 binary). */
  formats: number[];
}

export function decodeBind(buf: Buffer, start: number, end: number, captureValues: boolean): BindMessage {
  const portal = readCString(buf, start + 5, end, 'Bind portal name');
  const statement = readCString(buf, portal.next, end, 'Bind statement name');
  let pos = statement.next;
  need(pos, 2, end, 'Bind');
  const formatCount = buf.readInt16BE(pos);
  pos += 2;
  if (formatCount < 0) throw new ProtocolError('Bind: negative format count');
  need(pos, formatCount * 2, end, 'Bind formats');
  const declared: number[] = [];
  for (let i = 0; i < formatCount; i++) declared.push(buf.readInt16BE(pos + i * 2));
  pos += formatCount * 2;
  need(pos, 2, end, 'Bind');
  const count = buf.readInt16BE(pos);
  pos += 2;
  if (count < 0) throw new ProtocolError('Bind: negative parameter count');
  if (formatCount > 1 && formatCount !== count) throw new ProtocolError('Bind: format count does not match parameters');
  const lengths: number[] = new Array(count);
  const formats: number[] = new Array(count);
  const values: (Buffer | null)[] | null = captureValues ? new Array(count) : null;
  for (let i = 0; i < count; i++) {
    need(pos, 4, end, 'Bind parameter');
    const length = buf.readInt32BE(pos);
    pos += 4;
    if (length < -1) throw new ProtocolError('Bind: invalid parameter length');
    if (length > 0) need(pos, length, end, 'Bind parameter value');
    lengths[i] = length;
    formats[i] = formatCount === 0 ? 0 : formatCount === 1 ? declared[0]! : declared[i]!;
    if (values) values[i] = length < 0 ? null : Buffer.from(buf.subarray(pos, pos + length));
    if (length > 0) pos += length;
  }
  need(pos, 2, end, 'Bind');
  const resultFormats = buf.readInt16BE(pos);
  if (resultFormats < 0 || pos + 2 + resultFormats * 2 !== end)
    throw new ProtocolError('Bind: result formats do not fit');
  return { portal: portal.value, statement: statement.value, values, lengths, formats };
}

export function decodeExecute(buf: Buffer, start: number, end: number): { portal: string; maxRows: number } {
  const portal = readCString(buf, start + 5, end, 'Execute portal name');
  if (portal.next + 4 !== end) throw new ProtocolError('Execute: wrong length');
  return { portal: portal.value, maxRows: buf.readInt32BE(portal.next) };
}

/** Describe and Close: 'S' (statement) or 'P' (portal) and a name. */
export function decodeTarget(buf: Buffer, start: number, end: number, what: string): { kind: 'S' | 'P'; name: string } {
  need(start, 6, end, what);
  const kind = buf[start + 5];
  if (kind !== 0x53 && kind !== 0x50) throw new ProtocolError(`${what}: expected 'S' or 'P'`);
  const name = readCString(buf, start + 6, end, `${what} name`);
  if (name.next !== end) throw new ProtocolError(`${what}: wrong length`);
  return { kind: kind === 0x53 ? 'S' : 'P', name: name.value };
}

export interface FunctionCallMessage {
  oid: number;
  lengths: number[];
  formats: number[];
  values: (Buffer | null)[] | null;
}

export function decodeFunctionCall(
  buf: Buffer,
  start: number,
  end: number,
  captureValues: boolean,
): FunctionCallMessage {
  let pos = start + 5;
  need(pos, 6, end, 'FunctionCall');
  const oid = buf.readUInt32BE(pos);
  pos += 4;
  const formatCount = buf.readInt16BE(pos);
  pos += 2;
  if (formatCount < 0) throw new ProtocolError('FunctionCall: negative format count');
  need(pos, formatCount * 2 + 2, end, 'FunctionCall');
  const declared: number[] = [];
  for (let i = 0; i < formatCount; i++) declared.push(buf.readInt16BE(pos + i * 2));
  pos += formatCount * 2;
  const count = buf.readInt16BE(pos);
  pos += 2;
  if (count < 0) throw new ProtocolError('FunctionCall: negative argument count');
  const lengths: number[] = [];
  const formats: number[] = [];
  const values: (Buffer | null)[] | null = captureValues ? [] : null;
  for (let i = 0; i < count; i++) {
    need(pos, 4, end, 'FunctionCall argument');
    const length = buf.readInt32BE(pos);
    pos += 4;
    if (length < -1) throw new ProtocolError('FunctionCall: invalid argument length');
    if (length > 0) need(pos, length, end, 'FunctionCall argument value');
    lengths.push(length);
    formats.push(formatCount === 0 ? 0 : formatCount === 1 ? declared[0]! : (declared[i] ?? 0));
    values?.push(length < 0 ? null : Buffer.from(buf.subarray(pos, pos + length)));
    if (length > 0) pos += length;
  }
  if (pos + 2 !== end) throw new ProtocolError('FunctionCall: wrong length');
  return { oid, lengths, formats, values };
}

// ---------------------------------------------------------------- backend

export function decodeCommandComplete(buf: Buffer, start: number, end: number): string {
  return readCString(buf, start + 5, end, 'CommandComplete').value;
}

/** Rows from a CommandComplete tag: `SELECT 5`, `INSERT 0 5`, `UPDATE 5`, `COPY 5`… */
export function rowsFromTag(tag: string): number | null {
  const space = tag.lastIndexOf(' ');
  if (space < 0) return null;
  const n = Number(tag.slice(space + 1));
  return Number.isInteger(n) && n >= 0 ? n : null;
}

export interface ErrorFields {
  severity: string;
  code: string;
  message: string;
}

export function decodeErrorFields(buf: Buffer, start: number, end: number): ErrorFields {
  const fields: ErrorFields = { severity: '', code: '', message: '' };
  let pos = start + 5;
  while (pos < end && buf[pos] !== 0) {
    const field = buf[pos]!;
    const value = readCString(buf, pos + 1, end, 'ErrorResponse field');
    if (field === 0x56 /* V */ || (field === 0x53 /* S */ && !fields.severity)) fields.severity = value.value;
    else if (field === 0x43 /* C */) fields.code = value.value;
    else if (field === 0x4d /* M */) fields.message = value.value;
    pos = value.next;
  }
  return fields;
}

export function decodeParameterStatus(buf: Buffer, start: number, end: number): { name: string; value: string } {
  const name = readCString(buf, start + 5, end, 'ParameterStatus name');
  const value = readCString(buf, name.next, end, 'ParameterStatus value');
  return { name: name.value, value: value.value };
}

export function decodeBackendKeyData(buf: Buffer, start: number, end: number): CancelKey {
  need(start, 13, end, 'BackendKeyData');
  return { pid: buf.readInt32BE(start + 5), key: Buffer.from(buf.subarray(start + 9, end)) };
}

export function encodeBackendKeyData(cancel: CancelKey): Buffer {
  const out = Buffer.allocUnsafe(9 + cancel.key.length);
  out[0] = B.backendKeyData;
  out.writeInt32BE(out.length - 1, 1);
  out.writeInt32BE(cancel.pid, 5);
  cancel.key.copy(out, 9);
  return out;
}

export function authenticationCode(buf: Buffer, start: number, end: number): number {
  need(start, 9, end, 'Authentication');
  return buf.readInt32BE(start + 5);
}

/** The SASL mechanisms offered by AuthenticationSASL. */
export function decodeSaslMechanisms(buf: Buffer, start: number, end: number): string[] {
  const out: string[] = [];
  let pos = start + 9;
  while (pos < end && buf[pos] !== 0) {
    const m = readCString(buf, pos, end, 'AuthenticationSASL mechanism');
    out.push(m.value);
    pos = m.next;
  }
  return out;
}

// ---------------------------------------------------------------- encoders

function typed(type: number, body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(5 + body.length);
  out[0] = type;
  out.writeInt32BE(4 + body.length, 1);
  body.copy(out, 5);
  return out;
}

function authentication(code: number, data?: Buffer): Buffer {
  const body = Buffer.allocUnsafe(4 + (data?.length ?? 0));
  body.writeInt32BE(code, 0);
  data?.copy(body, 4);
  return typed(B.authentication, body);
}

export const AUTHENTICATION_OK = authentication(0);
export const AUTHENTICATION_CLEARTEXT = authentication(3);

export function encodePassword(password: string | Buffer): Buffer {
  return typed(F.password, Buffer.concat([Buffer.from(password), Buffer.from([0])]));
}

export function encodeSaslInitialResponse(mechanism: string, data: Buffer): Buffer {
  const len = Buffer.allocUnsafe(4);
  len.writeInt32BE(data.length, 0);
  return typed(F.password, Buffer.concat([Buffer.from(`${mechanism}\0`), len, data]));
}

export function encodeSaslResponse(data: Buffer): Buffer {
  return typed(F.password, data);
}

export type Severity = 'ERROR' | 'FATAL';

/** An ErrorResponse the sidecar sends on its own account; the message says it is from Byline. */
export function encodeError(severity: Severity, code: string, message: string, detail?: string): Buffer {
  const fields = [`S${severity}`, `V${severity}`, `C${code}`, `M${message}`];
  if (detail) fields.push(`D${detail}`);
  return typed(B.errorResponse, Buffer.from(`${fields.join('\0')}\0\0`, 'utf8'));
}

export const TERMINATE = typed(F.terminate, Buffer.alloc(0));

export function encodeReadyForQuery(status: 'I' | 'T' | 'E'): Buffer {
  return typed(B.readyForQuery, Buffer.from(status));
}
