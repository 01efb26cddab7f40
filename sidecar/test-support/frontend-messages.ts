/**
 * Encoders for every frontend (client → server) message of the Postgres protocol, built by hand
 * from the protocol documentation, for tests and benches: the sidecar's unit tests, the
 * differential tests and the fault-injection tests all send these bytes. Deliberately independent
 * of sidecar/src, so the sidecar's own codec is never used to check itself. Test support only:
 * production code does not import it (the build never reaches it, and a lint rule keeps src folders
 * from importing test code).
 */

export const PROTOCOL_3_0 = (3 << 16) | 0;
export const PROTOCOL_3_2 = (3 << 16) | 2;
const CANCEL_REQUEST_CODE = 80877102;

/** A parameter or argument value: a string is sent in text format, a Buffer in binary, null is SQL NULL. */
export type Value = string | Buffer | null;

// ------------------------------------------------------------------ encoders

function int16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeInt16BE(n);
  return b;
}

function int32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
}

function cstring(s: string): Buffer {
  return Buffer.from(`${s}\0`, 'utf8');
}

/** Any typed frontend message; also for building malformed ones. */
export function message(type: string, ...body: Buffer[]): Buffer {
  const payload = Buffer.concat(body);
  return Buffer.concat([Buffer.from(type, 'latin1'), int32(payload.length + 4), payload]);
}

/** A binary int4, for binary-format parameters. */
export function int4(n: number): Buffer {
  return int32(n);
}

export function startup(params: Record<string, string>, protocol = PROTOCOL_3_0): Buffer {
  const pairs = Object.entries(params).map(([k, v]) => Buffer.concat([cstring(k), cstring(v)]));
  const body = Buffer.concat([int32(protocol), ...pairs, Buffer.from([0])]);
  return Buffer.concat([int32(body.length + 4), body]);
}

export function cancelRequest(pid: number, key: Buffer): Buffer {
  return Buffer.concat([int32(12 + key.length), int32(CANCEL_REQUEST_CODE), int32(pid), key]);
}

export function query(sql: string): Buffer {
  return message('Q', cstring(sql));
}

export function parse(name: string, sql: string, paramTypes: number[] = []): Buffer {
  return message('P', cstring(name), cstring(sql), int16(paramTypes.length), ...paramTypes.map(int32));
}

/** Format codes: none when every value is text (all text), else one per value. */
function formatCodes(values: Value[]): Buffer[] {
  if (!values.some((v) => Buffer.isBuffer(v))) return [int16(0)];
  return [int16(values.length), ...values.map((v) => int16(Buffer.isBuffer(v) ? 1 : 0))];
}

function encodeValues(values: Value[]): Buffer[] {
  const out = [int16(values.length)];
  for (const v of values) {
    if (v === null) {
      out.push(int32(-1));
      continue;
    }
    const bytes = Buffer.isBuffer(v) ? v : Buffer.from(v, 'utf8');
    out.push(int32(bytes.length), bytes);
  }
  return out;
}

export function bind(portal: string, statement: string, values: Value[] = [], resultFormats: number[] = []): Buffer {
  return message(
    'B',
    cstring(portal),
    cstring(statement),
    ...formatCodes(values),
    ...encodeValues(values),
    int16(resultFormats.length),
    ...resultFormats.map(int16),
  );
}

export function describe(kind: 'S' | 'P', name: string): Buffer {
  return message('D', Buffer.from(kind, 'latin1'), cstring(name));
}

export function execute(portal: string, maxRows = 0): Buffer {
  return message('E', cstring(portal), int32(maxRows));
}

export function close(kind: 'S' | 'P', name: string): Buffer {
  return message('C', Buffer.from(kind, 'latin1'), cstring(name));
}

export function sync(): Buffer {
  return message('S');
}

export function flush(): Buffer {
  return message('H');
}

export function copyData(data: string | Buffer): Buffer {
  return message('d', Buffer.isBuffer(data) ? data : Buffer.from(data, 'utf8'));
}

export function copyDone(): Buffer {
  return message('c');
}

export function copyFail(reason: string): Buffer {
  return message('f', cstring(reason));
}

export function functionCall(oid: number, args: Value[], resultFormat = 0): Buffer {
  return message('F', int32(oid), ...formatCodes(args), ...encodeValues(args), int16(resultFormat));
}

export function terminate(): Buffer {
  return message('X');
}
