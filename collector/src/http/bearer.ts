/** The caller's principal from `Authorization: Bearer …`, or a 401/403/503 that says what was wrong. */
import type { IncomingMessage } from 'node:http';
import type { Authenticator, Principal, Purpose } from '../auth/authenticator.js';
import { HttpError } from './respond.js';

const CHALLENGE = { 'WWW-Authenticate': 'Bearer realm="byline"' };

export async function authenticate(req: IncomingMessage, auth: Authenticator, purpose: Purpose): Promise<Principal> {
  const header = req.headers.authorization;
  if (header === undefined || header === '') {
    throw new HttpError(401, 'missing bearer token: send "Authorization: Bearer <token>"', {}, CHALLENGE);
  }
  const m = /^Bearer[ ]+(\S+)[ ]*$/i.exec(header);
  if (!m) throw new HttpError(401, 'the Authorization header must be "Bearer <token>"', {}, CHALLENGE);
  const answer = await auth.authenticate(m[1]!, purpose);
  if (!answer) throw new HttpError(401, 'unknown bearer token', {}, CHALLENGE);
  if (answer.kind === 'refused') {
    const headers: Record<string, string> =
      answer.status === 401 ? CHALLENGE : answer.status === 503 ? { 'Retry-After': '1' } : {};
    throw new HttpError(answer.status, answer.message, { reason: answer.reason }, headers);
  }
  return answer;
}

export function requireWriter(p: Principal): Extract<Principal, { kind: 'writer' }> {
  if (p.kind !== 'writer') throw new HttpError(403, 'this token may only read; writing events needs a writer token');
  return p;
}

type Reader = Extract<Principal, { kind: 'reader' }>;

/** A reader of every namespace; one allowed only in some gets 403 (this endpoint spans them all). */
export function requireReader(p: Principal): Reader {
  const reader = requireAnyReader(p);
  if (reader.namespaces) throw namespacedReaderRefused(reader, 'this endpoint covers every namespace');
  return reader;
}

/** A reader of every namespace, or of some (which must then name one it may read: `namespaceAllowed`). */
export function requireAnyReader(p: Principal): Reader {
  if (p.kind !== 'reader') {
    throw new HttpError(403, `this token may only write events for "${p.identity.name}"; queries need a reader token`);
  }
  return p;
}

/** Throws 403 unless the reader may read `namespace` (undefined: may it read every namespace?). */
export async function requireNamespace(reader: Reader, namespace: string | undefined): Promise<void> {
  if (!reader.namespaces) return;
  if (namespace === undefined) {
    throw namespacedReaderRefused(reader, 'name the namespace to read with ?namespace=NS');
  }
  let access: { allowed: boolean; reason: string };
  try {
    access = await reader.namespaces(namespace);
  } catch (e) {
    throw new HttpError(
      503,
      `checking access to namespace "${namespace}" failed: ${(e as Error).message}`,
      {
        reason: 'review-failed',
      },
      { 'Retry-After': '1' },
    );
  }
  if (!access.allowed) {
    const why =
      reader.grantedBy === 'readers-rules'
        ? 'no auth.oidc.readers rule lets it'
        : 'RBAC does not allow "get" on "auditevents.byline.dev" there';
    throw new HttpError(
      403,
      `"${reader.subject}" may not read the trail of namespace "${namespace}": ${why}${access.reason ? ` (${access.reason})` : ''}`,
      { reason: 'reader-denied' },
    );
  }
}

function namespacedReaderRefused(reader: Reader, what: string): HttpError {
  const why =
    reader.grantedBy === 'readers-rules'
      ? 'its auth.oidc.readers rules name only some namespaces; '
      : 'RBAC does not allow "get" on "auditevents.byline.dev" cluster-wide (a ClusterRoleBinding does); with a RoleBinding in a namespace, ';
  return new HttpError(403, `"${reader.subject}" may not read the trail of every namespace: ${why}${what}`, {
    reason: 'reader-denied',
  });
}
