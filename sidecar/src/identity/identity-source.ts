/** Where a session's identity comes from: fixed in the config, or asked of the collector (Kubernetes). */
import type { AuditIdentity, SidecarConfig } from '@byline/api';

export interface IdentitySource {
  /** The identity for a session starting now. */
  current(): AuditIdentity;
  /** Stops watching for changes (nothing to stop for a static identity). */
  stop(): void;
  /**
   * Asks once more who this sidecar is, now (the collector refused events for their identity:
   * the AgentIdentity may have been edited). Never rejects; a static identity has nothing to ask.
   */
  refresh?(): Promise<void>;
}

/** `identity.static`, stamped as is (source "static"). */
export function staticIdentity(s: Extract<SidecarConfig['identity'], { static: unknown }>['static']): AuditIdentity {
  return {
    kind: s.kind,
    name: s.name,
    namespace: s.namespace ?? null,
    pod: s.pod ?? null,
    serviceAccount: s.serviceAccount ?? null,
    source: 'static',
  };
}

export function fixedIdentity(identity: AuditIdentity): IdentitySource {
  return { current: () => identity, stop: () => {} };
}
