export {
  caFetch,
  type FetchLike,
  OidcTokenError,
  OidcVerifier,
  type VerifiedToken,
  type VerifierOptions,
} from '@byline/api/oidc';
export type { SessionInfo } from './audit/event-builder.js';
export type { AuditSink } from './audit/sink.js';
export { type GatewayOptions, type RunningGateway, sidecarConfigFor, startGateway } from './gateway.js';
export type { ClientAuthenticator, ClientAuthResult } from './identity/client-auth.js';
export type { IdentitySource } from './identity/identity-source.js';
export { KubernetesIdentity, type KubernetesIdentityOptions } from './identity/kubernetes-identity.js';
export { OidcAuthenticator, type OidcAuthenticatorOptions } from './identity/oidc-authenticator.js';
export { type ListedOidcIdentity, type OidcClaim, oidcClaimFor, type VerifiedClaims } from './identity/oidc-claims.js';
export { askWhoami, parseWhoami, type WhoamiAnswer } from './identity/whoami.js';
export { SidecarMetrics } from './metrics.js';
export { type RunningSidecar, type SidecarOptions, startSidecar } from './sidecar.js';
