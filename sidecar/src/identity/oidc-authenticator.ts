/**
 * The gateway's ClientAuthenticator: the password is an OIDC token. Verified (OidcVerifier), then
 * mapped to the one AgentIdentity claiming it (oidcClaimFor); the session may last `maxSessionAgeMs`
 * when configured, else the token's remaining lifetime plus `graceMs`; its statements are decided by
 * the policy of that AgentIdentity (GatewayPolicies), and without one it is refused (fail closed).
 */
import type { AuditIdentity } from '@byline/api';
import type { ClientAuthenticator, ClientAuthResult } from './client-auth.js';
import type { GatewayPolicies } from './gateway-policies.js';
import { type ListedOidcIdentity, oidcClaimFor } from './oidc-claims.js';
import { OidcTokenError, type OidcVerifier, type VerifiedToken } from './oidc-verifier.js';

export interface OidcAuthenticatorOptions {
  verifier: Pick<OidcVerifier, 'verify'>;
  /** The AgentIdentities as currently known (a watch cache of the API server). */
  identities: () => readonly ListedOidcIdentity[];
  policies: Pick<GatewayPolicies, 'authorizerFor'>;
  requireTls: boolean;
  maxSessionAgeMs: number | null;
  graceMs: number;
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

export class OidcAuthenticator implements ClientAuthenticator {
  readonly requireTls: boolean;

  constructor(private readonly options: OidcAuthenticatorOptions) {
    this.requireTls = options.requireTls;
  }

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
    return { ok: true, identity, endsAtMs, authorizer: grant.authorizer, lease: grant.lease };
  }
}
