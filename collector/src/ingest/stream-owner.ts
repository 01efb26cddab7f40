/**
 * A writer as the owner of the streams it opens (see BatchWriter). Pure.
 *
 * The owner is the principal the writer's credential proves: for Kubernetes the service account
 * (namespace/name) its token was issued to, for a static token the identity that token names.
 * The AgentIdentity's name is left out on purpose: an AgentIdentity renamed or replaced while a
 * sidecar's spool holds events must not strand that sidecar's stream (its events are then
 * dead-lettered with markers under the new name, in the same chain). The pod is left out too: a
 * durable spool continued by the next pod of the same service account carries on its stream.
 * Another service account, namespace, or static token is another owner.
 */
import type { WriterIdentity } from '../auth/authenticator.js';

export function streamOwner(w: WriterIdentity): string {
  if (w.source === 'kubernetes') return `kubernetes:${w.namespace}/${w.serviceAccount}`;
  return `static:${w.name}`;
}
