/**
 * Who is calling: the seam between the HTTP API and whatever vouches for a bearer token. The static
 * implementation reads tokens from the config; Kubernetes TokenReview (audience-checked) and
 * SubjectAccessReview plug in here later without the API changing.
 */

/** The identity a writer may write events for; the optional fields, when known, must match too. */
export interface WriterIdentity {
  name: string;
  kind?: 'agent' | 'human' | 'service';
  namespace?: string;
  serviceAccount?: string;
}

export type Principal = { kind: 'writer'; identity: WriterIdentity } | { kind: 'reader'; subject: string };

export interface Authenticator {
  /** The principal a bearer token stands for, or null when the token is not known. */
  authenticate(token: string): Promise<Principal | null>;
}
