/**
 * Bearer tokens reviewed by the Kubernetes API server.
 *
 * Writing (POST /v1/events, GET /v1/whoami): a TokenReview with the configured audience must
 * authenticate the token as `system:serviceaccount:<ns>:<sa>`, and exactly one AgentIdentity in
 * <ns> must claim <sa>; the writer is that identity, with the pod the token is bound to.
 * A service account no AgentIdentity claims may still write as a gateway when RBAC allows it
 * `write` on `gatewayevents.byline.dev` (SubjectAccessReview): then only events for OIDC identities.
 * Reading: any token the API server accepts (for the configured audience, else for its own) whose
 * user RBAC allows `get` on `auditevents.byline.dev`, as a SubjectAccessReview answers: cluster-wide
 * (a ClusterRoleBinding) for every namespace's events, else per namespace (a RoleBinding there),
 * asked again for the namespace each query names.
 *
 * Positive reviews are reused (keyed by the token's SHA-256, never the token) until shortly before
 * the token expires or for `cacheSeconds`, whichever is sooner; AgentIdentity lists per namespace
 * for `cacheSeconds`. Refusals are never cached, so a fix (an AgentIdentity, a RoleBinding) takes
 * effect on the next request. Tokens are never logged.
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { Authenticator, NamespaceAccess, Principal, Purpose, Refusal, RefusalReason } from './authenticator.js';
import { claimFor, type ListedIdentity } from './identity-claims.js';
import type { KubeReviewer, ReviewedUser } from './kube-reviewer.js';
import { parseServiceAccountUser, podNameOf } from './service-account.js';
import { reuseUntil } from './token-expiry.js';
import { TtlCache } from './ttl-cache.js';

/** What readers must be allowed: `get` on this resource, cluster-wide or in a namespace. */
export const TRAIL_RESOURCE = { verb: 'get', group: 'byline.dev', resource: 'auditevents' } as const;

/**
 * What a gateway's service account must be allowed, cluster-wide, to write events for the OIDC
 * identities it verified: a permission of its own (not `create` on anything real), so granting it
 * is a deliberate, auditable act; the collector cannot re-verify a person's token.
 */
export const GATEWAY_RESOURCE = { verb: 'write', group: 'byline.dev', resource: 'gatewayevents' } as const;

export interface KubernetesAuthenticatorOptions {
  audience: string;
  cacheSeconds: number;
  logger: Logger;
  /** Called once per refused token, with the reason (the collector counts them). */
  onRefusal?: (reason: RefusalReason) => void;
  now?: () => number;
}

const MAX_CACHED = 10_000;

export class KubernetesAuthenticator implements Authenticator {
  private readonly reviews: TtlCache<string, ReviewedUser>;
  private readonly readers: TtlCache<string, Principal>;
  private readonly gateways: TtlCache<string, Principal>;
  private readonly identities: TtlCache<string, Promise<ListedIdentity[]>>;
  private readonly now: () => number;

  constructor(
    private readonly reviewer: KubeReviewer,
    private readonly options: KubernetesAuthenticatorOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.reviews = new TtlCache(MAX_CACHED, this.now);
    this.readers = new TtlCache(MAX_CACHED, this.now);
    this.gateways = new TtlCache(MAX_CACHED, this.now);
    this.identities = new TtlCache(1000, this.now);
  }

  async authenticate(token: string, purpose: Purpose): Promise<Principal | Refusal> {
    const key = createHash('sha256').update(token).digest('base64');
    try {
      return purpose === 'write' ? await this.writer(token, key) : await this.reader(token, key);
    } catch (e) {
      return this.refuse(
        503,
        'review-failed',
        `the collector cannot check the token with the Kubernetes API server right now; retry later (${(e as Error).message})`,
      );
    }
  }

  private async writer(token: string, key: string): Promise<Principal | Refusal> {
    const { audience } = this.options;
    const user = await this.review(token, key, audience);
    if (!('username' in user)) {
      return this.refuse(401, 'unauthenticated', `the token is not valid for audience "${audience}": ${user.error}`);
    }
    const sa = parseServiceAccountUser(user.username);
    if (!sa) {
      return this.refuse(
        403,
        'not-a-service-account',
        `"${user.username}" is not a service account; only service-account tokens write events`,
        user.username,
      );
    }
    const claim = claimFor(
      await this.identitiesIn(sa.namespace),
      sa.namespace,
      sa.serviceAccount,
      podNameOf(user.extra),
    );
    if (claim.ok) return { kind: 'writer', identity: claim.identity };
    if (claim.reason === 'unclaimed') {
      const gateway = await this.gateway(token, key, user, sa);
      if (gateway) return gateway;
    }
    const hint =
      claim.reason === 'unclaimed'
        ? ` (a gateway's service account needs RBAC "${GATEWAY_RESOURCE.verb}" on ${GATEWAY_RESOURCE.resource}.${GATEWAY_RESOURCE.group} instead)`
        : '';
    return this.refuse(403, claim.reason, claim.message + hint, user.username);
  }

  /** An unclaimed service account that RBAC lets write for OIDC identities: a gateway writer, else null. */
  private async gateway(
    token: string,
    key: string,
    user: ReviewedUser,
    sa: { namespace: string; serviceAccount: string },
  ): Promise<Principal | null> {
    const known = this.gateways.get(key);
    if (known) return known;
    const { verb, group, resource } = GATEWAY_RESOURCE;
    const access = await this.reviewer.allowed(user, verb, group, resource);
    if (!access.allowed) return null;
    const principal: Principal = {
      kind: 'writer',
      identity: {
        name: user.username,
        kind: 'service',
        namespace: sa.namespace,
        serviceAccount: sa.serviceAccount,
        pod: podNameOf(user.extra),
        source: 'kubernetes',
        gateway: true,
      },
      identitiesIn: (namespace) => this.identitiesIn(namespace),
    };
    this.options.logger.info({ user: user.username }, 'gateway writer: may write events for OIDC identities');
    this.gateways.set(key, principal, reuseUntil(token, this.now(), this.options.cacheSeconds));
    return principal;
  }

  private async reader(token: string, key: string): Promise<Principal | Refusal> {
    const known = this.readers.get(key);
    if (known) return known;
    // A workload's byline.dev token, or a person's token for the API server itself.
    let user = await this.review(token, key, this.options.audience);
    if (!('username' in user)) user = await this.review(token, key, null);
    if (!('username' in user)) {
      return this.refuse(401, 'unauthenticated', `the Kubernetes API server does not accept the token: ${user.error}`);
    }
    const { verb, group, resource } = TRAIL_RESOURCE;
    const access = await this.reviewer.allowed(user, verb, group, resource);
    // Not allowed cluster-wide: perhaps in some namespaces (a RoleBinding), asked per query.
    if (!access.allowed) {
      // Not kept: a ClusterRoleBinding made later takes effect on the next request.
      return { kind: 'reader', subject: user.username, namespaces: this.namespaceAccess(user) };
    }
    const principal: Principal = { kind: 'reader', subject: user.username };
    this.readers.set(key, principal, reuseUntil(token, this.now(), this.options.cacheSeconds));
    return principal;
  }

  /** A SubjectAccessReview of this reader in the namespace a query names. */
  private namespaceAccess(user: ReviewedUser): NamespaceAccess {
    const { verb, group, resource } = TRAIL_RESOURCE;
    return (namespace) => this.reviewer.allowed(user, verb, group, resource, namespace);
  }

  /** A TokenReview for `audience` (null: the API server's own), its positive answers reused. */
  private async review(token: string, key: string, audience: string | null): Promise<ReviewedUser | { error: string }> {
    const cacheKey = `${audience ?? ''}\0${key}`;
    const cached = this.reviews.get(cacheKey);
    if (cached) return cached;
    const result = await this.reviewer.reviewToken(token, audience === null ? undefined : [audience]);
    if (!result.authenticated) return { error: result.error };
    // An API server that ignored the audiences would answer without them: not good enough.
    if (audience !== null && !result.audiences.includes(audience)) {
      return { error: `the API server did not confirm the audience (it answered ${JSON.stringify(result.audiences)})` };
    }
    this.reviews.set(cacheKey, result.user, reuseUntil(token, this.now(), this.options.cacheSeconds));
    return result.user;
  }

  private identitiesIn(namespace: string): Promise<ListedIdentity[]> {
    let listed = this.identities.get(namespace);
    if (!listed) {
      listed = this.reviewer.listAgentIdentities(namespace);
      this.identities.set(namespace, listed, this.now() + this.options.cacheSeconds * 1000);
      // A failed list is not kept: the next request asks again.
      listed.catch(() => this.identities.delete(namespace));
    }
    return listed;
  }

  private refuse(status: Refusal['status'], reason: RefusalReason, message: string, user?: string): Refusal {
    this.options.onRefusal?.(reason);
    const log = reason === 'review-failed' ? 'error' : reason === 'unauthenticated' ? 'info' : 'warn';
    this.options.logger[log]({ reason, ...(user ? { user } : {}) }, `token refused: ${message}`);
    return { kind: 'refused', status, reason, message };
  }
}
