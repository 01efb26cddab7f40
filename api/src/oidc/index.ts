/** OIDC token verification shared by the gateway (passwords) and the collector (trail readers). */
export { caFetch, type FetchLike } from './ca-fetch.js';
export {
  OidcTokenError,
  OidcVerifier,
  type TokenRefusal,
  type VerifiedClaims,
  type VerifiedToken,
  type VerifierOptions,
} from './oidc-verifier.js';
