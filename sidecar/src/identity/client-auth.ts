/**
 * Per-connection identity (byline gateway): the client's password is a credential that says who
 * is connecting. The session asks for it (cleartext, over TLS only) and gets back the identity for
 * every event of the session, the policy its statements are decided by, and when the session must
 * end — or why it is refused, with the
 * identity to record the refusal under when the credential was genuine but is not allowed in.
 */
import type { AuditIdentity } from '@byline/api';
import type { Authorizer } from '../policy/authorizer.js';

/**
 * The hold a session keeps on what let it in (the gateway: the policy of the AgentIdentity its
 * person signed in as). Released when the session ends, so what no session holds can be let go.
 */
export interface SessionLease {
  /** `listener` is called at most once, when that access is withdrawn; the session must then end. */
  onRevoked(listener: (reason: string) => void): void;
  release(): void;
}

export type ClientAuthResult =
  /** `authorizer`: the policy of the session (the AgentIdentity the person signed in as). */
  | { ok: true; identity: AuditIdentity; endsAtMs: number | null; authorizer: Authorizer; lease: SessionLease }
  | { ok: false; sqlstate: string; message: string; identity: AuditIdentity | null };

export interface ClientAuthenticator {
  /** Refuse clients that have not negotiated TLS before sending the password. */
  readonly requireTls: boolean;
  authenticate(password: string): Promise<ClientAuthResult>;
}
