/**
 * `chain.hash` recomputed from the line itself, without serializing the event a second time.
 *
 * The hash covers the event's canonical JSON with `chain.hash` left out. Once a line is known to be
 * the canonical JSON of its event, that text is the line with `"hash":"…",` cut out of the chain
 * object: removing a key keeps the other keys sorted. Only `authz` sorts before `chain` at the top
 * level, so the chain object starts right after it; its length is that of `authz`'s own canonical
 * text (JSON.stringify reproduces it, as the line is canonical).
 */
import * as crypto from 'node:crypto';
import { type AuditEvent, chainHash } from '@byline/api';

// One-shot crypto.hash (Node ≥ 20.12) skips the Hash object.
const oneShot = (crypto as { hash?: (algorithm: string, data: string, encoding: 'hex') => string }).hash;
const sha256 = (text: string): string =>
  oneShot ? oneShot('sha256', text, 'hex') : crypto.createHash('sha256').update(text).digest('hex');

const AUTHZ_KEY = '{"authz":'.length;
const CHAIN_OPEN = '"chain":{'.length;

/** The hash `event` must carry; `line` must already be `canonicalJson(event)`. */
export function lineChainHash(line: string, event: AuditEvent): string {
  const at = event.authz === undefined ? 1 : AUTHZ_KEY + JSON.stringify(event.authz).length + 1;
  const hashField = `"hash":${JSON.stringify(event.chain.hash)},`;
  const fieldAt = at + CHAIN_OPEN;
  if (!line.startsWith('"chain":{', at) || !line.startsWith(hashField, fieldAt)) {
    // Not the layout a canonical event has (cannot happen for a canonical line): take the long way.
    return chainHash(event);
  }
  return sha256(line.slice(0, fieldAt) + line.slice(fieldAt + hashField.length));
}
