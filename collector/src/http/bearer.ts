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

export function requireReader(p: Principal): Extract<Principal, { kind: 'reader' }> {
  if (p.kind !== 'reader') {
    throw new HttpError(403, `this token may only write events for "${p.identity.name}"; queries need a reader token`);
  }
  return p;
}
