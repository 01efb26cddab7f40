/**
 * The gateway's ClientAuthenticator: the password is an OIDC token. Verified (OidcVerifier), then
 * mapped to the one AgentIdentity claiming it (oidcClaimFor); the session may last `maxSessionAgeMs`
 * when configured, else the token's remaining lifetime plus `graceMs`.
 */
import type { AuditIdentity } from '@byline/api';
import { OidcTokenError, type OidcVerifier, type VerifiedToken } from '@byline/api/oidc';
import type { ClientAuthenticator, ClientAuthResult } from './client-auth.js';
import { type ListedOidcIdentity, oidcClaimFor } from './oidc-claims.js';

export interface OidcAuthenticatorOptions {
  verifier: Pick<OidcVerifier, 'verify'>;
  /** The AgentIdentities as currently known (a watch cache of the API server). */
  identities: () => readonly ListedOidcIdentity[];
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
  return {
    name: token.name,
    kind: claimed?.kind ?? 'human',
    namespace: claimed?.namespace ?? null,
    serviceAccount: null,
    pod: null,
    source: 'oidc',
    oidc: {
      issuer: token.claims.issuer,
      subject: token.claims.subject,
      agentIdentity: claimed?.name ?? null,
      jti: token.jti,
      sid: token.sid,
    },
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
    const now = (this.options.now ?? Date.now)();
    const endsAtMs =
      this.options.maxSessionAgeMs !== null
        ? now + this.options.maxSessionAgeMs
        : token.expiresAtMs + this.options.graceMs;
    return { ok: true, identity: oidcIdentity(token, claim.identity), endsAtMs };
  }
}
