/**
 * The names a verified OIDC token reads the trail as: the issuer's name claim and groups, each with
 * the issuer's prefix (as the API server's `--oidc-username-prefix`), so RBAC and the readers rules
 * see `oidc:ada@example.com`, never a Kubernetes user or group that happens to share the name.
 * Tokens whose names reach into Kubernetes' reserved `system:` space are refused outright, as the
 * API server refuses them. Pure.
 */
import { type CollectorOidcIssuerConfig, groupsPrefixOf, usernamePrefixOf } from '@byline/api';
import type { VerifiedToken } from '@byline/api/oidc';

export type ReaderNames = { ok: true; username: string; groups: string[] } | { ok: false; message: string };

export function readerNames(token: VerifiedToken, issuer: CollectorOidcIssuerConfig): ReaderNames {
  const claim = issuer.nameClaim ?? 'email';
  const from = `the token from issuer "${issuer.issuer}"`;
  // The verifier falls back to the subject; a reader is named by the configured claim or not at all.
  if (!token.nameFromClaim && claim !== 'sub') {
    const unverified = claim === 'email' ? ' (or its email is not verified)' : '';
    return { ok: false, message: `${from} has no "${claim}" claim${unverified}, which names the reader` };
  }
  if (token.name.startsWith('system:')) {
    return { ok: false, message: `${from} names "${token.name}", in Kubernetes' reserved "system:" space` };
  }
  const reserved = token.claims.groups.find((g) => g.startsWith('system:'));
  if (reserved !== undefined) {
    return { ok: false, message: `${from} lists group "${reserved}", in Kubernetes' reserved "system:" space` };
  }
  const groupsPrefix = groupsPrefixOf(issuer);
  return {
    ok: true,
    username: usernamePrefixOf(issuer) + token.name,
    groups: token.claims.groups.map((g) => groupsPrefix + g),
  };
}
