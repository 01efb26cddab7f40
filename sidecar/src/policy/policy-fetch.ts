/**
 * One `GET <collector>/v1/policy[?after=<version>][&rejected=<version>][&identity=<ns>/<name>]` with the
 * sidecar's token, and what came back. `identity`: a gateway asking for an AgentIdentity it signed someone in as.
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { POLICY_FIELDS, POLICY_FIELDS_HEADER, type PolicyDocument, parsePolicyDocument } from '@byline/api';
import { type CollectorTrust, collectorCa } from '../collector-ca.js';

/** The optional fields this sidecar reads (approvals' requestedBy): without them, a collector leaves them out. */
const FIELDS = POLICY_FIELDS.join(',');

export type PolicyAnswer =
  /** A document that parses and validates. */
  | { kind: 'policy'; document: PolicyDocument }
  /** 304: still `after`, the long-poll ran out. */
  | { kind: 'unchanged' }
  /** A 200 whose body is not a policy; `version` when the body at least names one (so the next poll can wait past it). */
  | { kind: 'invalid'; error: string; version: string | null }
  /** Anything else: unreachable, refused, 5xx. */
  | { kind: 'failed'; status: number; error: string };

/** The collector's answer → a policy, or why not. Pure. */
export function parsePolicyAnswer(status: number, body: string): PolicyAnswer {
  if (status === 304) return { kind: 'unchanged' };
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    const error = `the collector answered ${status} with no JSON: ${body.slice(0, 200)}`;
    return status === 200 ? { kind: 'invalid', error, version: null } : { kind: 'failed', status, error };
  }
  if (status !== 200) {
    const error = (value as { error?: unknown } | null)?.error;
    return {
      kind: 'failed',
      status,
      error: `the collector answered ${status}: ${typeof error === 'string' ? error : body.slice(0, 200)}`,
    };
  }
  try {
    return { kind: 'policy', document: parsePolicyDocument(value) };
  } catch (e) {
    const version = (value as { version?: unknown } | null)?.version;
    return {
      kind: 'invalid',
      error: (e as Error).message,
      version: typeof version === 'string' && /^[0-9a-f]{1,64}$/.test(version) ? version : null,
    };
  }
}

export interface PolicyRequest extends CollectorTrust {
  url: string;
  token: string;
  after: string | null;
  /** A version this sidecar could not use, reported so the collector counts and logs it. */
  rejected?: string | null;
  /** A gateway's request for this AgentIdentity's policy (`<namespace>/<name>`); a sidecar asks for its own. */
  identity?: string;
  /** Longer than the collector's long-poll wait (25 s). */
  timeoutMs: number;
  signal?: AbortSignal;
}

export function fetchPolicy(req: PolicyRequest): Promise<PolicyAnswer> {
  const endpoint = new URL('/v1/policy', req.url);
  if (req.after !== null) endpoint.searchParams.set('after', req.after);
  if (req.rejected) endpoint.searchParams.set('rejected', req.rejected);
  if (req.identity !== undefined) endpoint.searchParams.set('identity', req.identity);
  const https = endpoint.protocol === 'https:';
  const trust = https ? collectorCa(req) : { ca: undefined };
  if ('error' in trust) return Promise.resolve({ kind: 'failed', status: 0, error: trust.error });
  const ca = trust.ca;
  return new Promise((resolve) => {
    const send = https ? httpsRequest : httpRequest;
    const r = send(
      endpoint,
      {
        method: 'GET',
        timeout: req.timeoutMs,
        headers: { authorization: `Bearer ${req.token}`, accept: 'application/json', [POLICY_FIELDS_HEADER]: FIELDS },
        ...(ca ? { ca } : {}),
        ...(req.signal ? { signal: req.signal } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve(parsePolicyAnswer(res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8'))));
        res.on('error', (e) => resolve({ kind: 'failed', status: 0, error: `the answer broke off: ${e.message}` }));
      },
    );
    r.on('timeout', () => r.destroy(new Error('no answer in time')));
    r.on('error', (e) =>
      resolve({ kind: 'failed', status: 0, error: `cannot reach ${endpoint.origin}: ${e.message}` }),
    );
    r.end();
  });
}
