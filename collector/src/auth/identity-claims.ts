/**
 * Which AgentIdentity a service account acts as: exactly one in its namespace must list it in
 * spec.serviceAccounts. None, or several (the operator marks those ServiceAccountClaimedTwice),
 * and the account acts as nobody — the collector never guesses between claimants. Pure.
 */
import type { WriterIdentity } from './authenticator.js';

/** The parts of an AgentIdentity this needs, as listed from the API server (untrusted shape). */
export interface ListedIdentity {
  metadata?: { name?: string; namespace?: string; deletionTimestamp?: unknown };
  spec?: { kind?: unknown; serviceAccounts?: unknown; oidc?: unknown };
}

export type Claim =
  | { ok: true; identity: Required<Omit<WriterIdentity, 'source' | 'gateway'>> & { source: 'kubernetes' } }
  | { ok: false; reason: 'unclaimed' | 'claimed-twice' | 'invalid-identity'; message: string };

const KINDS = new Set(['agent', 'human', 'service']);

export function claimFor(
  identities: readonly ListedIdentity[],
  namespace: string,
  serviceAccount: string,
  pod: string | null,
): Claim {
  const claimants = identities.filter(
    (i) =>
      i.metadata?.namespace === namespace &&
      i.metadata.deletionTimestamp === undefined &&
      Array.isArray(i.spec?.serviceAccounts) &&
      i.spec.serviceAccounts.includes(serviceAccount),
  );
  const who = `service account "${serviceAccount}" in namespace "${namespace}"`;
  if (claimants.length === 0) {
    return {
      ok: false,
      reason: 'unclaimed',
      message: `${who} is claimed by no AgentIdentity (list it in the spec.serviceAccounts of one)`,
    };
  }
  if (claimants.length > 1) {
    const names = claimants.map((i) => `"${i.metadata?.name}"`).sort();
    return {
      ok: false,
      reason: 'claimed-twice',
      message: `${who} is claimed by several AgentIdentities (${names.join(', ')}); exactly one may claim it`,
    };
  }
  const only = claimants[0]!;
  const name = only.metadata?.name;
  const kind = only.spec?.kind;
  if (typeof name !== 'string' || name === '' || typeof kind !== 'string' || !KINDS.has(kind)) {
    return {
      ok: false,
      reason: 'invalid-identity',
      message: `the AgentIdentity claiming ${who} has no valid name or spec.kind`,
    };
  }
  return {
    ok: true,
    identity: {
      name,
      kind: kind as 'agent' | 'human' | 'service',
      namespace,
      serviceAccount,
      pod,
      source: 'kubernetes',
    },
  };
}
