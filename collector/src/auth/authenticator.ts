/**
 * Who is calling: the seam between the HTTP API and whatever vouches for a bearer token. Static
 * tokens come from the config; Kubernetes tokens are reviewed by the API server (TokenReview,
 * audience-checked) and readers authorized by RBAC (SubjectAccessReview). The endpoint says what
 * the token is for, so an authenticator does only the checks that purpose needs.
 */
import type { ListedIdentity } from './identity-claims.js';

/**
 * The identity a writer may write events for: it vouches for every field exactly (a field left
 * undefined stands for null). Static writers have `source: 'static'`, Kubernetes writers
 * `source: 'kubernetes'`.
 */
export interface WriterIdentity {
  name: string;
  kind?: 'agent' | 'human' | 'service';
  namespace?: string | null;
  serviceAccount?: string | null;
  /** The pod the token is bound to; null when the token is bound to none. */
  pod?: string | null;
  source?: 'kubernetes' | 'static';
  /**
   * A gateway's service account, which RBAC allows `write` on `gatewayevents.byline.dev`: it
   * writes events for the OIDC identities it verified (`identity.source: oidc`), never its own or
   * an agent's. Its streams are still its own (owner: its service account).
   */
  gateway?: true;
}

/**
 * A reader allowed only in some namespaces (RBAC by RoleBinding, not ClusterRoleBinding) carries
 * `namespaces`, which asks whether it may read one; a reader without it reads every namespace.
 */
export type NamespaceAccess = (namespace: string) => Promise<{ allowed: boolean; reason: string }>;

/** The AgentIdentities of a namespace as the collector knows them (a gateway's events are checked against them). */
export type IdentitiesIn = (namespace: string) => Promise<readonly ListedIdentity[]>;

export type Principal =
  | { kind: 'writer'; identity: WriterIdentity; identitiesIn?: IdentitiesIn }
  | {
      kind: 'reader';
      subject: string;
      namespaces?: NamespaceAccess;
      /** What decided the namespaces, for refusals: RBAC (default), or the collector's `auth.oidc.readers`. */
      grantedBy?: 'rbac' | 'readers-rules';
    };

/** What the endpoint needs the token for. */
export type Purpose = 'write' | 'read';

/** Machine-readable reasons a known kind of token was refused (metrics label, `reason` in the 401/403 body). */
export type RefusalReason =
  | 'unauthenticated'
  | 'not-a-service-account'
  | 'unclaimed'
  | 'claimed-twice'
  | 'invalid-identity'
  | 'reader-denied'
  | 'review-failed';

export const REFUSAL_REASONS: readonly RefusalReason[] = [
  'unauthenticated',
  'not-a-service-account',
  'unclaimed',
  'claimed-twice',
  'invalid-identity',
  'reader-denied',
  'review-failed',
];

/** A token the authenticator has an opinion about, and why it does not pass: 401, 403, or 503 (try again). */
export interface Refusal {
  kind: 'refused';
  status: 401 | 403 | 503;
  reason: RefusalReason;
  message: string;
}

export interface Authenticator {
  /** The principal a bearer token stands for, a refusal that says why not, or null when the token is not known. */
  authenticate(token: string, purpose: Purpose): Promise<Principal | Refusal | null>;
}

/** Asks each authenticator in turn; the first with an answer (principal or refusal) decides. */
export class ChainedAuthenticator implements Authenticator {
  constructor(private readonly chain: readonly Authenticator[]) {}

  async authenticate(token: string, purpose: Purpose): Promise<Principal | Refusal | null> {
    for (const auth of this.chain) {
      const answer = await auth.authenticate(token, purpose);
      if (answer !== null) return answer;
    }
    return null;
  }
}
