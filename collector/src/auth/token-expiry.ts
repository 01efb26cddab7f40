/**
 * How long a review may be reused: until shortly before the token expires, or `cacheSeconds`,
 * whichever comes first. The expiry is read from the JWT's `exp` claim without checking the
 * signature — only after the API server has accepted the token, so the claim is the signed one.
 */

/** Reviews are not reused during a token's last seconds, so an expired token is never accepted from the cache. */
export const EXPIRY_MARGIN_MS = 10_000;

/** The `exp` claim (ms since the epoch) of a JWT, or null when the token is no JWT or has none. */
export function jwtExpiry(token: string): number | null {
  const parts = token.split('.');
  if (parts.length !== 3) return null;
  try {
    const claims = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as { exp?: unknown };
    return typeof claims.exp === 'number' && Number.isFinite(claims.exp) ? claims.exp * 1000 : null;
  } catch {
    return null;
  }
}

/** Until when (ms since the epoch) a positive review of `token` may be reused; ≤ now means not at all. */
export function reuseUntil(token: string, now: number, cacheSeconds: number): number {
  const byCache = now + cacheSeconds * 1000;
  const exp = jwtExpiry(token);
  return exp === null ? byCache : Math.min(byCache, exp - EXPIRY_MARGIN_MS);
}
