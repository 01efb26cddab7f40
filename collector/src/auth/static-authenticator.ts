/**
 * Tokens listed in the config. Looked up by SHA-256 digest, so no comparison leaks a token's prefix.
 * A writer stands for its whole configured identity: kind (agent unless configured), namespace,
 * service account and pod (null unless configured), so its events cannot claim other ones.
 */
import { createHash } from 'node:crypto';
import type { ResolvedStaticToken } from '@byline/api';
import type { Authenticator, Principal, Refusal } from './authenticator.js';

const digest = (token: string) => createHash('sha256').update(token).digest('base64');

export class StaticAuthenticator implements Authenticator {
  private readonly principals = new Map<string, Principal>();

  constructor(tokens: readonly ResolvedStaticToken[]) {
    tokens.forEach((t, i) => {
      const principal: Principal =
        'identity' in t
          ? {
              kind: 'writer',
              identity: {
                name: t.identity,
                kind: t.kind ?? 'agent',
                namespace: t.namespace ?? null,
                serviceAccount: t.serviceAccount ?? null,
                pod: t.pod ?? null,
                source: 'static',
              },
            }
          : { kind: 'reader', subject: `static:${i}` };
      this.principals.set(digest(t.token), principal);
    });
  }

  /** The purpose is left to the endpoint: a token stands for one principal whatever it is used for. */
  async authenticate(token: string): Promise<Principal | Refusal | null> {
    return this.principals.get(digest(token)) ?? null;
  }
}
