/**
 * How a denied statement is answered exactly where, and as, a Postgres error would be: instead of
 * the denied message the sidecar sends Postgres a placeholder that fails without running anything,
 * then replaces that error with the denial on its way back. Postgres itself then decides what an
 * error at that position means — a Query's implicit transaction rolled back, a transaction block
 * put in the failed state (ReadyForQuery 'E', so the client's ROLLBACK works), everything until
 * Sync skipped in the extended protocol and that implicit transaction rolled back too — so the
 * client cannot tell a denial from a server error except by its text, pipelined or not.
 *
 *   Query, FunctionCall → Query "byline_denied": a syntax error (42601) at raw parsing, before any
 *                         statement of it runs (a whole multi-statement Query is refused).
 *   Execute             → Execute of a portal no client can name (34000, portal does not exist).
 */
import { randomBytes } from 'node:crypto';

/** The placeholder for a denied Query or FunctionCall, and the SQLSTATE Postgres answers it with. */
export const PLACEHOLDER_QUERY = queryMessage('byline_denied');
export const PLACEHOLDER_QUERY_SQLSTATE = '42601';
export const PLACEHOLDER_EXECUTE_SQLSTATE = '34000';

/**
 * The Execute placeholder of one session: an unguessable portal name, so a client can never bind a
 * portal under it (and have the placeholder run it). The client never sees the name: the error
 * naming it is replaced by the denial.
 */
export function placeholderExecute(): Buffer {
  const name = Buffer.from(`byline_denied_${randomBytes(16).toString('hex')}\0`, 'latin1');
  const out = Buffer.allocUnsafe(1 + 4 + name.length + 4);
  out[0] = 0x45; // 'E'
  out.writeInt32BE(4 + name.length + 4, 1);
  name.copy(out, 5);
  out.writeInt32BE(0, 5 + name.length);
  return out;
}

function queryMessage(text: string): Buffer {
  const body = Buffer.from(`${text}\0`, 'utf8');
  const out = Buffer.allocUnsafe(5 + body.length);
  out[0] = 0x51; // 'Q'
  out.writeInt32BE(4 + body.length, 1);
  body.copy(out, 5);
  return out;
}
