export type { SessionInfo } from './audit/event-builder.js';
export type { AuditSink } from './audit/sink.js';
export { caFetch, type FetchLike } from './identity/ca-fetch.js';
export type { IdentitySource } from './identity/identity-source.js';
export { KubernetesIdentity, type KubernetesIdentityOptions } from './identity/kubernetes-identity.js';
export { type ListedOidcIdentity, type OidcClaim, oidcClaimFor, type VerifiedClaims } from './identity/oidc-claims.js';
export { OidcTokenError, OidcVerifier, type VerifiedToken, type VerifierOptions } from './identity/oidc-verifier.js';
export { askWhoami, parseWhoami, type WhoamiAnswer } from './identity/whoami.js';
export { type RunningSidecar, type SidecarOptions, splitListen, startSidecar } from './sidecar.js';
