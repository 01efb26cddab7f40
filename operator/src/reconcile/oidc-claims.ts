/**
 * OIDC claims that two AgentIdentities share. byline gateway maps a signed-in token to the one
 * identity claiming it (subject, else email, else group, across namespaces) and refuses the
 * sign-in when two claim it at the same level, so a claim held twice locks out whoever it names.
 * The operator reports that on both identities instead of leaving it to be found at sign-in. Pure.
 */
import type { AgentIdentity } from '../injection/types.js';

export interface SharedClaim {
  /** The claim as a person reads it, e.g. `subject "ada-0001" of issuer "https://login.example.com"`. */
  claim: string;
  /** The other identities claiming it, `namespace/name`, sorted. */
  others: string[];
}

interface Claim {
  key: string;
  label: string;
}

function claimsOf(identity: AgentIdentity): Claim[] {
  const entries = identity.spec?.oidc;
  if (!Array.isArray(entries)) return [];
  const out: Claim[] = [];
  for (const e of entries) {
    if (typeof e?.issuer !== 'string') continue;
    const of = `of issuer "${e.issuer}"`;
    // The gateway compares emails without regard to case, subjects and groups exactly.
    if (typeof e.subject === 'string')
      out.push({ key: `${e.issuer}\0s\0${e.subject}`, label: `subject "${e.subject}" ${of}` });
    else if (typeof e.email === 'string')
      out.push({ key: `${e.issuer}\0e\0${e.email.toLowerCase()}`, label: `email "${e.email}" ${of}` });
    else if (typeof e.group === 'string')
      out.push({ key: `${e.issuer}\0g\0${e.group}`, label: `group "${e.group}" ${of}` });
  }
  return out;
}

/** Being deleted: the gateway already ignores it. */
const deleting = (i: AgentIdentity) => (i.metadata as { deletionTimestamp?: unknown }).deletionTimestamp !== undefined;
const nameOf = (i: AgentIdentity) => `${i.metadata.namespace ?? ''}/${i.metadata.name}`;

/** The claims of `identity` that other identities (any namespace, not being deleted) also hold. */
export function sharedOidcClaims(identity: AgentIdentity, all: readonly AgentIdentity[]): SharedClaim[] {
  const own = claimsOf(identity);
  if (own.length === 0) return [];
  const self = nameOf(identity);
  const out: SharedClaim[] = [];
  const seen = new Set<string>();
  for (const { key, label } of own) {
    if (seen.has(key)) continue;
    seen.add(key);
    const others = all
      .filter((o) => nameOf(o) !== self && !deleting(o))
      .filter((o) => claimsOf(o).some((c) => c.key === key))
      .map(nameOf)
      .sort();
    if (others.length > 0) out.push({ claim: label, others });
  }
  return out;
}
