/**
 * Trail readers who sign in with an OIDC token (the viewer's "Sign in with …", `byline login`):
 * verified by the gateway's own verifier (discovery, cached JWKS refreshed on an unknown kid,
 * the issuer's allowed algorithms only, iss/aud/exp/nbf), named with the issuer's prefix, then
 * authorized as `byline trail` is: by RBAC through SubjectAccessReview (cluster-wide, else per
 * namespace a query names) when the collector has an API server, else by `auth.oidc.readers`.
 *
 * A token that is no JWT, or (with Kubernetes configured) names an issuer not listed here, or is
 * sent to write, is not this authenticator's business: the next one (TokenReview) decides.
 * Positive answers are reused, keyed by the token's SHA-256, until shortly before it expires or for
 * `cacheSeconds`; refusals never are. Tokens are never logged.
 */
import { createHash } from 'node:crypto';
import type { CollectorOidcIssuerConfig, OidcReaderRuleConfig } from '@byline/api';
import { OidcTokenError, type VerifiedToken } from '@byline/api/oidc';
import { decodeJwt } from 'jose';
import type { Logger } from 'pino';
import type { Authenticator, NamespaceAccess, Principal, Purpose, Refusal, RefusalReason } from './authenticator.js';
import type { KubeReviewer } from './kube-reviewer.js';
import { TRAIL_RESOURCE } from './kubernetes-authenticator.js';
import { readerNames } from './oidc-reader-names.js';
import { ruleGrant } from './oidc-reader-rules.js';
import { reuseUntil } from './token-expiry.js';
import { TtlCache } from './ttl-cache.js';

export interface TokenVerifier {
  verify(token: string): Promise<VerifiedToken>;
}

/** How a reader's names become a principal: RBAC through the API server, or the configured rules. */
export type ReaderAuthorization = { rbac: KubeReviewer } | { rules: readonly OidcReaderRuleConfig[] };

export interface OidcReaderAuthenticatorOptions {
  issuers: readonly CollectorOidcIssuerConfig[];
  authorization: ReaderAuthorization;
  cacheSeconds: number;
  logger: Logger;
  onRefusal?: (reason: RefusalReason) => void;
  now?: () => number;
}

/** Kubernetes adds this group to every user it authenticates; an OIDC reader is one too. */
const AUTHENTICATED_GROUP = 'system:authenticated';

export class OidcReaderAuthenticator implements Authenticator {
  private readonly issuers: Map<string, CollectorOidcIssuerConfig>;
  private readonly readers: TtlCache<string, Principal>;
  private readonly now: () => number;
  /** With an API server behind, a JWT of another issuer may be a Kubernetes token: TokenReview decides. */
  private readonly deferOtherIssuers: boolean;

  constructor(
    private readonly verifier: TokenVerifier,
    private readonly options: OidcReaderAuthenticatorOptions,
  ) {
    this.issuers = new Map(options.issuers.map((i) => [i.issuer, i]));
    this.now = options.now ?? Date.now;
    this.readers = new TtlCache(10_000, this.now);
    this.deferOtherIssuers = 'rbac' in options.authorization;
  }

  async authenticate(token: string, purpose: Purpose): Promise<Principal | Refusal | null> {
    // OIDC tokens only read. A writer's token is never this authenticator's, even from a listed
    // issuer (say the cluster's own service-account issuer): TokenReview or static tokens decide.
    if (purpose === 'write') return null;
    let iss: unknown;
    try {
      iss = decodeJwt(token).iss;
    } catch {
      return null; // not a JWT: a static token, or for the API server to judge
    }
    const issuer = typeof iss === 'string' ? this.issuers.get(iss) : undefined;
    if (!issuer) {
      if (this.deferOtherIssuers) return null;
      const named = JSON.stringify(String(iss)).slice(0, 200);
      return this.refuse(401, 'unauthenticated', `tokens from issuer ${named} are not trusted by this collector`);
    }
    const key = createHash('sha256').update(token).digest('base64');
    const known = this.readers.get(key);
    if (known) return known;

    let verified: VerifiedToken;
    try {
      verified = await this.verifier.verify(token);
    } catch (e) {
      if (!(e instanceof OidcTokenError)) throw e;
      if (e.reason === 'issuer-unavailable') return this.refuse(503, 'review-failed', e.message);
      return this.refuse(401, 'unauthenticated', e.message);
    }
    const names = readerNames(verified, issuer);
    if (!names.ok) return this.refuse(401, 'unauthenticated', names.message);

    let answer: Principal | Refusal;
    try {
      answer = await this.authorize(names.username, names.groups);
    } catch (e) {
      return this.refuse(
        503,
        'review-failed',
        `the collector cannot check "${names.username}" with the Kubernetes API server right now; retry later (${(e as Error).message})`,
      );
    }
    if (answer.kind === 'reader' && !answer.namespaces) {
      this.readers.set(key, answer, reuseUntil(token, this.now(), this.options.cacheSeconds));
    }
    return answer;
  }

  private async authorize(username: string, groups: string[]): Promise<Principal | Refusal> {
    const { authorization } = this.options;
    if ('rbac' in authorization) {
      const user = { username, groups: [...groups, AUTHENTICATED_GROUP], extra: {} };
      const { verb, group, resource } = TRAIL_RESOURCE;
      const access = await authorization.rbac.allowed(user, verb, group, resource);
      if (access.allowed) return { kind: 'reader', subject: username };
      // Perhaps in some namespaces (a RoleBinding), asked for the namespace each query names.
      const namespaces: NamespaceAccess = (ns) => authorization.rbac.allowed(user, verb, group, resource, ns);
      return { kind: 'reader', subject: username, namespaces };
    }
    const grant = ruleGrant(authorization.rules, username, groups);
    if (grant === null) {
      return this.refuse(
        403,
        'reader-denied',
        `"${username}" may not read the trail: no auth.oidc.readers rule names this user or one of its groups`,
        username,
      );
    }
    if (grant.all) return { kind: 'reader', subject: username };
    const allowed = grant.namespaces;
    const namespaces: NamespaceAccess = async (ns) => ({
      allowed: allowed.has(ns),
      reason: allowed.has(ns) ? '' : `auth.oidc.readers lets it read only ${[...allowed].sort().join(', ')}`,
    });
    return { kind: 'reader', subject: username, namespaces, grantedBy: 'readers-rules' };
  }

  private refuse(status: Refusal['status'], reason: RefusalReason, message: string, user?: string): Refusal {
    this.options.onRefusal?.(reason);
    const log = reason === 'review-failed' ? 'error' : reason === 'unauthenticated' ? 'info' : 'warn';
    this.options.logger[log]({ reason, ...(user ? { user } : {}) }, `OIDC reader refused: ${message}`);
    return { kind: 'refused', status, reason, message };
  }
}
