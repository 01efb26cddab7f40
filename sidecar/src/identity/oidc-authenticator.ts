/**
 * The gateway's ClientAuthenticator: the password is an OIDC token. Verified (OidcVerifier), then
 * mapped to the one AgentIdentity claiming it (oidcClaimFor); the session may last `maxSessionAgeMs`
 * when configured, else the token's remaining lifetime plus `graceMs`; its statements are decided by
 * the policy of that AgentIdentity (GatewayPolicies), and without one it is refused (fail closed).
 * While it is open, the claim is checked again every `claimCheckMs` against the identities as now
 * known: a person no AgentIdentity claims any more, or another one does, loses the session at once
 * (a person removed during an incident keeps no open session until their token runs out).
 */
import type { AuditIdentity } from '@byline/api';
import { OidcTokenError, type OidcVerifier, type VerifiedToken } from '@byline/api/oidc';
import type { ClientAuthenticator, ClientAuthResult, SessionLease } from './client-auth.js';
import type { GatewayPolicies } from './gateway-policies.js';
import { type ListedOidcIdentity, oidcClaimFor, type VerifiedClaims } from './oidc-claims.js';

export interface OidcAuthenticatorOptions {
  verifier: Pick<OidcVerifier, 'verify'>;
  /** The AgentIdentities as currently known (a watch cache of the API server). */
  identities: () => readonly ListedOidcIdentity[];
  policies: Pick<GatewayPolicies, 'authorizerFor'>;
  requireTls: boolean;
  maxSessionAgeMs: number | null;
  graceMs: number;
  /** How often open sessions' claims are checked again (default 1 s). */
  claimCheckMs?: number;
  now?: () => number;
}

/** SQLSTATEs: a bad token is a failed password; an unavailable issuer is "cannot connect now". */
const SQLSTATE = { malformed: '28P01', invalid: '28P01', 'untrusted-issuer': '28P01', 'issuer-unavailable': '57P03' };

/**
 * The event identity: named after the person (the token's name claim), so the trail says who it
 * was even when a group mapped them; kind and namespace from the AgentIdentity that claims them.
 */
function oidcIdentity(
  token: VerifiedToken,
  claimed: { name: string; kind: AuditIdentity['kind']; namespace: string | null } | null,
): AuditIdentity {
  // Keys in canonical (sorted) order: events are chained with JSON.stringify, and the collector
  // refuses an event that is not in canonical form.
  return {
    kind: claimed?.kind ?? 'human',
    name: token.name,
    namespace: claimed?.namespace ?? null,
    oidc: {
      agentIdentity: claimed?.name ?? null,
      issuer: token.claims.issuer,
      jti: token.jti,
      sid: token.sid,
      subject: token.claims.subject,
    },
    pod: null,
    serviceAccount: null,
    source: 'oidc',
  };
}

/** `<namespace>/<name>` of a claiming identity, as policies and messages name it. */
const keyOf = (identity: { name: string; namespace: string | null }) => `${identity.namespace ?? ''}/${identity.name}`;

export class OidcAuthenticator implements ClientAuthenticator {
  readonly requireTls: boolean;
  readonly #open = new Set<ClaimedLease>();
  #timer: NodeJS.Timeout | null = null;

  constructor(private readonly options: OidcAuthenticatorOptions) {
    this.requireTls = options.requireTls;
  }

  /** Ends the sessions whose person is no longer claimed by the identity they signed in as. */
  #recheck = (): void => {
    const identities = this.options.identities();
    for (const open of this.#open) {
      const claim = oidcClaimFor(identities, open.claims);
      if (claim.ok && keyOf(claim.identity) === open.identity) continue;
      open.revoke(
        claim.ok
          ? `access withdrawn: AgentIdentity ${keyOf(claim.identity)} claims this person now, not ${open.identity}, which this session signed in as; sign in again`
          : `access withdrawn: AgentIdentity ${open.identity}, which this session signed in as, no longer claims this person (${claim.message})`,
      );
    }
  };

  #track(lease: ClaimedLease): void {
    this.#open.add(lease);
    if (this.#timer === null) {
      this.#timer = setInterval(this.#recheck, this.options.claimCheckMs ?? 1000);
      this.#timer.unref();
    }
  }

  #untrack = (lease: ClaimedLease): void => {
    this.#open.delete(lease);
    if (this.#open.size === 0 && this.#timer !== null) {
      clearInterval(this.#timer);
      this.#timer = null;
    }
  };

  async authenticate(password: string): Promise<ClientAuthResult> {
    let token: VerifiedToken;
    try {
      token = await this.options.verifier.verify(password);
    } catch (e) {
      if (!(e instanceof OidcTokenError)) throw e;
      return { ok: false, sqlstate: SQLSTATE[e.reason], message: e.message, identity: null };
    }
    const claim = oidcClaimFor(this.options.identities(), token.claims);
    if (!claim.ok) {
      // Genuine but not allowed in: recorded under what the token says, so the refusal has a byline too.
      return {
        ok: false,
        sqlstate: '28000',
        message: claim.message,
        identity: oidcIdentity(token, null),
      };
    }
    const identity = oidcIdentity(token, claim.identity);
    const grant = await this.options.policies.authorizerFor(claim.identity, token.name);
    if ('error' in grant) {
      // 57P03 (cannot connect now): the person is allowed in, the policy to hold them to is missing.
      return { ok: false, sqlstate: '57P03', message: grant.error, identity };
    }
    const now = (this.options.now ?? Date.now)();
    const endsAtMs =
      this.options.maxSessionAgeMs !== null
        ? now + this.options.maxSessionAgeMs
        : token.expiresAtMs + this.options.graceMs;
    const lease = new ClaimedLease(grant.lease, token.claims, keyOf(claim.identity), this.#untrack);
    this.#track(lease);
    return { ok: true, identity, endsAtMs, authorizer: grant.authorizer, lease };
  }
}

/** A session's lease, withdrawn too when its person's claim changes (checked by the authenticator). */
class ClaimedLease implements SessionLease {
  #listener: ((reason: string) => void) | null = null;
  #revoked: string | null = null;
  #released = false;

  constructor(
    private readonly inner: SessionLease,
    readonly claims: VerifiedClaims,
    /** `<namespace>/<name>` of the identity the session signed in as. */
    readonly identity: string,
    private readonly onRelease: (lease: ClaimedLease) => void,
  ) {}

  onRevoked(listener: (reason: string) => void): void {
    this.#listener = listener;
    this.inner.onRevoked(listener);
    const revoked = this.#revoked;
    if (revoked !== null) queueMicrotask(() => listener(revoked));
  }

  revoke(reason: string): void {
    if (this.#revoked !== null || this.#released) return;
    this.#revoked = reason;
    this.#listener?.(reason);
  }

  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.onRelease(this);
    this.inner.release();
  }
}
