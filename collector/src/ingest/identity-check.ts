/**
 * May this writer write an event with this identity? Pure.
 *
 * A writer vouches for every field: the event's identity must equal it exactly (name, kind,
 * namespace, serviceAccount, pod, source), a field the writer leaves undefined standing for null.
 * So a static token writes only the identity its config names, and never a Kubernetes one.
 * A gateway writer (RBAC `write` on gatewayevents.byline.dev) is the exception: it writes events
 * for the OIDC identities it verified, which carry no service account or pod (which issuers it may
 * name is checked against the AgentIdentities, oidc-issuer-check.ts), and its own incident events
 * (spool.damaged, spool.deadLettered) under exactly its own identity, as any writer does. Never a
 * statement or session under its own identity, and never an agent's or a static identity.
 */
import type { AuditIdentity } from '@byline/api';
import type { WriterIdentity } from '../auth/authenticator.js';

export type IdentityField = 'name' | 'kind' | 'namespace' | 'serviceAccount' | 'pod' | 'source' | 'oidc';
export const IDENTITY_FIELDS: readonly Exclude<IdentityField, 'oidc'>[] = [
  'name',
  'kind',
  'namespace',
  'serviceAccount',
  'pod',
  'source',
];

export interface IdentityMismatch {
  field: IdentityField;
  message: string;
}

const show = (v: unknown) => JSON.stringify(v ?? null);

/** `incident`: the event is an incident event (it carries `incident`), which only a gateway's own identity may differ for. */
export function identityMismatch(
  claimed: AuditIdentity,
  writer: WriterIdentity,
  incident = false,
): IdentityMismatch | undefined {
  if (writer.gateway && (claimed.source === 'oidc' || !incident)) return gatewayMismatch(claimed);
  if (claimed.source === 'oidc') {
    return {
      field: 'source',
      message:
        'identity.source is "oidc", but only a gateway\'s service account (RBAC "write" on gatewayevents.byline.dev) may write such events',
    };
  }
  if (claimed.name !== writer.name) {
    return {
      field: 'name',
      message: `identity.name is ${show(claimed.name)}, but this token writes only for ${show(writer.name)}`,
    };
  }
  if (claimed.source === 'kubernetes' && writer.source !== 'kubernetes') {
    return {
      field: 'source',
      message: 'identity.source is "kubernetes", but only a Kubernetes service-account token may write such events',
    };
  }
  for (const field of IDENTITY_FIELDS) {
    const vouched = writer[field] ?? null;
    if (claimed[field] !== vouched) {
      return {
        field,
        message: `identity.${field} is ${show(claimed[field])}, but this token stands for ${show(vouched)}`,
      };
    }
  }
  return undefined;
}

function gatewayMismatch(claimed: AuditIdentity): IdentityMismatch | undefined {
  if (claimed.source !== 'oidc' || claimed.oidc === undefined) {
    return {
      field: 'source',
      message: `identity.source is ${show(claimed.source)}${claimed.source === 'oidc' ? ' without identity.oidc' : ''}, but a gateway's token writes only events for OIDC identities (source "oidc", with identity.oidc), and its own incident events`,
    };
  }
  for (const field of ['serviceAccount', 'pod'] as const) {
    if (claimed[field] !== null) {
      return {
        field,
        message: `identity.${field} is ${show(claimed[field])}, but an OIDC identity has none (a gateway never writes for a pod)`,
      };
    }
  }
  return undefined;
}
