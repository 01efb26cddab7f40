/**
 * Which AgentIdentity a verified OIDC token stands for: the identities whose `spec.oidc` names the
 * token's issuer and its subject, its (verified) email, or one of its groups. The most specific
 * form wins (subject, then email, then group), so a person named by subject is not swept into a
 * team identity by a group they are also in. Two identities at the same level, or none, and the
 * token acts as nobody: the gateway never guesses. Pure.
 */

import type { VerifiedClaims } from '@byline/api/oidc';

export type { VerifiedClaims };

/** The parts of an AgentIdentity this needs, as listed from the API server (untrusted shape). */
export interface ListedOidcIdentity {
  metadata?: { name?: string; namespace?: string; deletionTimestamp?: unknown };
  spec?: { kind?: unknown; oidc?: unknown };
}

export type ClaimForm = 'subject' | 'email' | 'group';

export type OidcClaim =
  | {
      ok: true;
      identity: { name: string; namespace: string | null; kind: 'agent' | 'human' | 'service' };
      matchedBy: ClaimForm;
    }
  | { ok: false; reason: 'unclaimed' | 'claimed-twice' | 'invalid-identity'; message: string };

const KINDS = new Set(['agent', 'human', 'service']);
const FORMS: readonly ClaimForm[] = ['subject', 'email', 'group'];

/** How an identity's entries name this token, most specific first; undefined when they do not. */
function strongestMatch(identity: ListedOidcIdentity, claims: VerifiedClaims): ClaimForm | undefined {
  const entries = identity.spec?.oidc;
  if (!Array.isArray(entries)) return undefined;
  let best: number | undefined;
  for (const e of entries as unknown[]) {
    if (typeof e !== 'object' || e === null) continue;
    const entry = e as Record<string, unknown>;
    if (entry.issuer !== claims.issuer) continue;
    let level: number | undefined;
    if (typeof entry.subject === 'string') level = entry.subject === claims.subject ? 0 : undefined;
    else if (typeof entry.email === 'string') {
      level = claims.email !== null && entry.email.toLowerCase() === claims.email.toLowerCase() ? 1 : undefined;
    } else if (typeof entry.group === 'string') level = claims.groups.includes(entry.group) ? 2 : undefined;
    if (level !== undefined && (best === undefined || level < best)) best = level;
  }
  return best === undefined ? undefined : FORMS[best];
}

export function oidcClaimFor(identities: readonly ListedOidcIdentity[], claims: VerifiedClaims): OidcClaim {
  const byForm = new Map<ClaimForm, ListedOidcIdentity[]>();
  for (const identity of identities) {
    if (identity.metadata?.deletionTimestamp !== undefined) continue;
    const form = strongestMatch(identity, claims);
    if (form === undefined) continue;
    const list = byForm.get(form) ?? [];
    list.push(identity);
    byForm.set(form, list);
  }
  const who = `subject "${claims.subject}" of issuer "${claims.issuer}"`;
  const form = FORMS.find((f) => byForm.has(f));
  if (form === undefined) {
    return {
      ok: false,
      reason: 'unclaimed',
      message: `${who} is claimed by no AgentIdentity (add { issuer, subject | email | group } to the spec.oidc of one)`,
    };
  }
  const claimants = byForm.get(form)!;
  if (claimants.length > 1) {
    const names = claimants.map((i) => `"${i.metadata?.namespace ?? ''}/${i.metadata?.name ?? ''}"`).sort();
    return {
      ok: false,
      reason: 'claimed-twice',
      message: `${who} is claimed by ${form} by several AgentIdentities (${names.join(', ')}); exactly one may claim it`,
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
    identity: { name, namespace: only.metadata?.namespace ?? null, kind: kind as 'agent' | 'human' | 'service' },
    matchedBy: form,
  };
}
