/**
 * `GET /v1/policy[?after=<version>][&rejected=<version>]`: the calling sidecar's effective policy
 * (access, guardrails, active approvals), for the identity its token is reviewed as. Without
 * `after`, or when the policy is no longer that version, the answer is immediate; otherwise the
 * request waits until it changes (200 with the new document) or until `waitSeconds` pass (304, ask
 * again). `rejected` is a sidecar's report that it could not parse a version it was served (version
 * skew): handed to `onPolicyRejected` (metric and log) once the caller is authenticated.
 *
 * A gateway writer (RBAC `write` on gatewayevents.byline.dev) has no policy of its own: it asks with
 * `identity=<namespace>/<name>` for the AgentIdentity it signed a person in as, and is served only
 * identities that claim OIDC subjects (spec.oidc), never an agent's that claims service accounts.
 * Anyone else asking for another identity is refused.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type EffectivePolicy, POLICY_FIELDS_HEADER, withoutRequesters } from '@byline/api';
import type { Authenticator } from '../auth/authenticator.js';
import { authenticate, requireWriter } from '../http/bearer.js';
import { HttpError, sendJson } from '../http/respond.js';
import type { PolicySource } from './policy-source.js';

export interface PolicyDeps {
  auth: Authenticator;
  policy?: PolicySource;
  /** How long a long-poll waits for a change (default 25 s, under common proxy idle timeouts). */
  policyWaitSeconds?: number;
  /** Called with what could not be read in a policy that was served (logged and counted by the caller). */
  onPolicyProblems?: (identity: string, problems: string[]) => void;
  /** Called when a sidecar reports a version it rejected; `current` is the version served now. */
  onPolicyRejected?: (report: { namespace: string; name: string; rejected: string; current: string }) => void;
}

const VERSION = /^[0-9a-f]{1,64}$/;
const PARAMETERS = new Set(['after', 'rejected', 'identity']);
const IDENTITY = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?)\/([a-z0-9]([-.a-z0-9]*[a-z0-9])?)$/;

const DEFAULT_WAIT_SECONDS = 25;

export async function handlePolicy(
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  deps: PolicyDeps,
): Promise<void> {
  for (const name of url.searchParams.keys())
    if (!PARAMETERS.has(name))
      throw new HttpError(400, `unknown query parameter "${name}" (only "after", "rejected" and "identity" are taken)`);
  const after = versionParameter(url, 'after');
  const rejected = versionParameter(url, 'rejected');
  const asked = identityParameter(url);
  const writer = requireWriter(await authenticate(req, deps.auth, 'write')).identity;
  const source = deps.policy;
  if (writer.gateway && asked === null)
    throw new HttpError(
      400,
      `"${writer.name}" is a gateway: ask for the policy of the AgentIdentity a person signed in as, with identity=<namespace>/<name>`,
    );
  if (!writer.gateway && asked !== null)
    throw new HttpError(
      403,
      `"${writer.name}" may read only its own policy; only a gateway (RBAC "write" on gatewayevents.byline.dev) asks for an identity's`,
    );
  if (source === undefined || writer.source !== 'kubernetes' || writer.namespace == null)
    throw new HttpError(
      404,
      `no policy is served for "${writer.name}": policies come from AgentIdentities, for sidecars authenticated by ` +
        'Kubernetes; a sidecar with a static identity takes routes[].access and guardrails from its own config',
    );
  const { namespace, name } = asked ?? { namespace: writer.namespace, name: writer.name };
  const project = readsRequesters(req) ? (p: EffectivePolicy) => p : asOlderSidecarReads;
  // Counted only for an identity that exists: a 503 or 404 leaves the sidecar to report it again.
  const existing = rejected !== null && source.isReady() ? source.policyFor(namespace, name, Date.now()) : null;
  if (rejected !== null && existing !== null)
    deps.onPolicyRejected?.({ namespace, name, rejected, current: project(existing).document.version });
  const deadline = Date.now() + (deps.policyWaitSeconds ?? DEFAULT_WAIT_SECONDS) * 1000;
  let closed = false;
  const onClose = () => {
    closed = true;
  };
  req.socket.once('close', onClose);
  try {
    for (;;) {
      // Checked on every wake-up too: a collector shutting down ends its long-polls.
      if (!source.isReady())
        throw new HttpError(
          503,
          'the collector has no policies loaded (starting or stopping); retry',
          {},
          // Closing: a stopping collector must not keep answering 503 on a kept-alive socket.
          { 'Retry-After': '1', Connection: 'close' },
        );
      // Registered before reading, so a change between the read and the wait is not missed.
      const wait = source.nextChange();
      const found = source.policyFor(namespace, name, Date.now());
      if (found === null) {
        wait.cancel();
        throw new HttpError(404, `AgentIdentity ${namespace}/${name} no longer exists`);
      }
      // Checked on every wake-up too: an identity edited to claim service accounts stops being served.
      if (asked !== null && !source.claimsOidc(namespace, name)) {
        wait.cancel();
        throw new HttpError(
          403,
          `AgentIdentity ${namespace}/${name} claims no OIDC subjects (spec.oidc): a gateway is served only the policies of identities people sign in as`,
        );
      }
      const current = project(found);
      if (after === null || current.document.version !== after) {
        wait.cancel();
        if (current.problems.length > 0) deps.onPolicyProblems?.(`${namespace}/${name}`, current.problems);
        sendJson(res, 200, current.document, { 'Cache-Control': 'no-store' });
        return;
      }
      const left = deadline - Date.now();
      if (left <= 0 || closed) {
        wait.cancel();
        if (!closed) {
          res.writeHead(304, { 'Cache-Control': 'no-store' });
          res.end();
        }
        return;
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      let stopClose: (() => void) | undefined;
      await Promise.race([
        wait.changed,
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, left);
          const wake = () => resolve();
          req.socket.once('close', wake);
          stopClose = () => req.socket.off('close', wake);
        }),
      ]);
      clearTimeout(timer);
      stopClose?.();
      wait.cancel();
    }
  } finally {
    req.socket.off('close', onClose);
  }
}

/** `identity=<namespace>/<name>`, or null when not given. */
function identityParameter(url: URL): { namespace: string; name: string } | null {
  const all = url.searchParams.getAll('identity');
  if (all.length > 1) throw new HttpError(400, `identity: given ${all.length} times; give it once`);
  const value = all[0];
  if (value === undefined) return null;
  const m = IDENTITY.exec(value);
  if (m === null || value.length > 317)
    throw new HttpError(400, `identity: "${value.slice(0, 80)}" is not <namespace>/<name> of an AgentIdentity`);
  return { namespace: m[1]!, name: m[3]! };
}

function versionParameter(url: URL, name: string): string | null {
  const all = url.searchParams.getAll(name);
  if (all.length > 1) throw new HttpError(400, `${name}: given ${all.length} times; give it once`);
  const value = all[0] ?? null;
  if (value !== null && !VERSION.test(value))
    throw new HttpError(400, `${name}: "${value.slice(0, 80)}" is not a policy version (lower-case hex)`);
  return value;
}

/** Whether the sidecar said it reads `approvals[].requestedBy` (POLICY_FIELDS_HEADER). */
function readsRequesters(req: IncomingMessage): boolean {
  const header = req.headers[POLICY_FIELDS_HEADER];
  const value = Array.isArray(header) ? header.join(',') : (header ?? '');
  return value.split(',').some((f) => f.trim() === 'requestedBy');
}

function asOlderSidecarReads(p: EffectivePolicy): EffectivePolicy {
  return { document: withoutRequesters(p.document), problems: p.problems };
}
