/** Asks the collector who a token stands for: `GET <url>/v1/whoami` with the token as bearer. */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { type AuditIdentity, Identity, isValid, problemsOf } from '@byline/api';
import { type CollectorTrust, collectorCa } from '../collector-ca.js';

export type WhoamiAnswer = { ok: true; identity: AuditIdentity } | { ok: false; status: number; error: string };

export interface WhoamiRequest extends CollectorTrust {
  url: string;
  token: string;
  timeoutMs?: number;
}

/** The collector's answer → an identity with every field (valid as an event's), or why not. Pure. */
export function parseWhoami(status: number, body: string): WhoamiAnswer {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    return { ok: false, status, error: `the collector answered ${status} with no JSON: ${body.slice(0, 200)}` };
  }
  if (status !== 200) {
    const error = (value as { error?: unknown } | null)?.error;
    return {
      ok: false,
      status,
      error: `the collector answered ${status}: ${typeof error === 'string' ? error : body.slice(0, 200)}`,
    };
  }
  const identity = (value as { identity?: unknown } | null)?.identity;
  if (!isValid(Identity, identity)) {
    const why = problemsOf(Identity, identity).join('; ');
    const shown = JSON.stringify(identity ?? null).slice(0, 200);
    return { ok: false, status, error: `the collector's identity is not one events can carry (${why}): ${shown}` };
  }
  // Rebuilt with its keys in canonical (sorted) order: events are chained with JSON.stringify.
  const { kind, name, namespace, pod, serviceAccount, source } = identity as AuditIdentity;
  return { ok: true, identity: { kind, name, namespace, pod, serviceAccount, source } };
}

export function askWhoami(req: WhoamiRequest): Promise<WhoamiAnswer> {
  const endpoint = new URL('/v1/whoami', req.url);
  const https = endpoint.protocol === 'https:';
  const trust = https ? collectorCa(req) : { ca: undefined };
  if ('error' in trust) return Promise.resolve({ ok: false, status: 0, error: trust.error });
  const ca = trust.ca;
  return new Promise((resolve) => {
    const send = https ? httpsRequest : httpRequest;
    const r = send(
      endpoint,
      {
        method: 'GET',
        timeout: req.timeoutMs ?? 10_000,
        headers: { authorization: `Bearer ${req.token}`, accept: 'application/json' },
        ...(ca ? { ca } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve(parseWhoami(res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8'))));
        res.on('error', (e) => resolve({ ok: false, status: 0, error: `the answer broke off: ${e.message}` }));
      },
    );
    r.on('timeout', () => r.destroy(new Error('no answer in time')));
    r.on('error', (e) => resolve({ ok: false, status: 0, error: `cannot reach ${endpoint.origin}: ${e.message}` }));
    r.end();
  });
}
