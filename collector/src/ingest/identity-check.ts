/**
 * May this writer write an event with this identity? Pure.
 *
 * A writer vouches for every field: the event's identity must equal it exactly (name, kind,
 * namespace, serviceAccount, pod, source), a field the writer leaves undefined standing for null.
 * So a static token writes only the identity its config names, and never a Kubernetes one.
 */
import type { AuditIdentity } from '@byline/api';
import type { WriterIdentity } from '../auth/authenticator.js';

export type IdentityField = 'name' | 'kind' | 'namespace' | 'serviceAccount' | 'pod' | 'source';
export const IDENTITY_FIELDS: readonly IdentityField[] = [
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

export function identityMismatch(claimed: AuditIdentity, writer: WriterIdentity): IdentityMismatch | undefined {
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
