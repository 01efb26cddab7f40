/**
 * A denial on the wire: the ErrorResponse Postgres itself would send for insufficient_privilege
 * (severity ERROR, SQLSTATE 42501, message, hint), so clients handle it like any server error.
 * Built once per decision and reused: decisions are cached, and so are their bytes.
 */
import { DENIED_SQLSTATE, type Decision } from './engine.js';

const encoded = new WeakMap<object, Buffer>();

/** The ErrorResponse for a denial (UTF-8; the session's client_encoding is UTF-8 for the clients we serve). */
export function denialResponse(decision: Pick<Decision, 'message' | 'hint'>): Buffer {
  let bytes = encoded.get(decision);
  if (bytes === undefined) {
    const fields = ['SERROR', 'VERROR', `C${DENIED_SQLSTATE}`, `M${decision.message ?? 'byline: denied'}`];
    if (decision.hint) fields.push(`H${decision.hint}`);
    // A NUL inside a field would end it early and let the rest read as other fields.
    const body = Buffer.from(`${fields.map((f) => f.replaceAll('\0', ' ')).join('\0')}\0\0`, 'utf8');
    bytes = Buffer.allocUnsafe(5 + body.length);
    bytes[0] = 0x45; // 'E'
    bytes.writeInt32BE(4 + body.length, 1);
    body.copy(bytes, 5);
    encoded.set(decision, bytes);
  }
  return bytes;
}
