/**
 * `GET /v1/whoami`: the identity a writer token writes for — what a sidecar in a pod stamps on its
 * events. Every field the writer vouches for (a static writer: all of them, null where its config
 * names none).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Authenticator, WriterIdentity } from '../auth/authenticator.js';
import { authenticate, requireWriter } from './bearer.js';
import { HttpError, sendJson } from './respond.js';

export async function handleWhoami(
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  deps: { auth: Authenticator },
): Promise<void> {
  for (const name of url.searchParams.keys())
    throw new HttpError(400, `unknown query parameter "${name}" (none are taken)`);
  const writer = requireWriter(await authenticate(req, deps.auth, 'write'));
  sendJson(res, 200, { identity: whoamiIdentity(writer.identity) }, { 'Cache-Control': 'no-store' });
}

export function whoamiIdentity(w: WriterIdentity): Record<string, unknown> {
  if (w.source === 'kubernetes') {
    const { name, kind, namespace, serviceAccount } = w;
    return { name, kind, namespace, serviceAccount, pod: w.pod ?? null, source: 'kubernetes' };
  }
  const known = Object.entries(w).filter(([k, v]) => v !== undefined && k !== 'source');
  return { ...Object.fromEntries(known), source: 'static' };
}
