/**
 * May this writer write an event with this identity? Pure.
 *
 * A Kubernetes writer vouches for every field: the event's identity must equal it exactly (name,
 * kind, namespace, serviceAccount, pod, and `source: "kubernetes"`). A static writer vouches for
 * the name and whatever optional fields it knows, and can never write a Kubernetes identity.
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
  if (writer.source === 'kubernetes') {
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
  if (claimed.source === 'kubernetes') {
    return {
      field: 'source',
      message: 'identity.source is "kubernetes", but only a Kubernetes service-account token may write such events',
    };
  }
  for (const field of ['kind', 'namespace', 'serviceAccount', 'pod'] as const) {
    const vouched = writer[field];
    if (vouched !== undefined && claimed[field] !== vouched) {
      return {
        field,
        message: `identity.${field} is ${show(claimed[field])}, but this token stands for ${show(vouched)}`,
      };
    }
  }
  return undefined;
}
