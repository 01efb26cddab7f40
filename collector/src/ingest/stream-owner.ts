/**
 * A writer as the owner of the streams it opens (see BatchWriter). Pure.
 *
 * The pod is left out on purpose: a durable spool continued by the next pod of the same
 * AgentIdentity and service account carries on its stream. Another identity, another service
 * account or namespace, or a static token of another name is another owner.
 */
import type { WriterIdentity } from '../auth/authenticator.js';

export function streamOwner(w: WriterIdentity): string {
  if (w.source === 'kubernetes') return `kubernetes:${w.namespace}/${w.serviceAccount}:${w.name}`;
  return `static:${w.name}`;
}
