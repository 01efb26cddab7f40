import type { AuditIdentity } from '@byline/api';
import { describe, expect, test } from 'vitest';
import type { WriterIdentity } from '../auth/authenticator.js';
import { whoamiIdentity } from '../http/whoami.js';
import { identityMismatch } from './identity-check.js';

const kube: WriterIdentity = {
  name: 'billing-reconciler',
  kind: 'agent',
  namespace: 'payments',
  serviceAccount: 'billing',
  pod: 'billing-0',
  source: 'kubernetes',
};
const event: AuditIdentity = {
  name: 'billing-reconciler',
  kind: 'agent',
  namespace: 'payments',
  serviceAccount: 'billing',
  pod: 'billing-0',
  source: 'kubernetes',
};

describe('identityMismatch', () => {
  test('a Kubernetes writer writes exactly its identity', () => {
    expect(identityMismatch(event, kube)).toBeUndefined();
  });

  test.each<[keyof AuditIdentity, unknown]>([
    ['name', 'someone-else'],
    ['kind', 'human'],
    ['namespace', 'orders'],
    ['namespace', null],
    ['serviceAccount', 'other'],
    ['pod', 'billing-1'],
    ['pod', null],
    ['source', 'static'],
  ])('a Kubernetes writer cannot write another %s (%s)', (field, value) => {
    const mismatch = identityMismatch({ ...event, [field]: value } as AuditIdentity, kube);
    expect(mismatch?.field).toBe(field);
    expect(mismatch?.message).toContain(`identity.${field} is ${JSON.stringify(value)}`);
  });

  test('a token bound to no pod writes events with no pod only', () => {
    const unbound = { ...kube, pod: null };
    expect(identityMismatch({ ...event, pod: null }, unbound)).toBeUndefined();
    expect(identityMismatch(event, unbound)?.field).toBe('pod');
  });

  test('a static writer vouches for every field of its configured identity, and never for a Kubernetes one', () => {
    const writer: WriterIdentity = {
      name: 'billing-reconciler',
      kind: 'agent',
      namespace: null,
      serviceAccount: null,
      pod: null,
      source: 'static',
    };
    const staticEvent: AuditIdentity = { ...event, namespace: null, serviceAccount: null, pod: null, source: 'static' };
    expect(identityMismatch(staticEvent, writer)).toBeUndefined();
    expect(identityMismatch(event, writer)).toEqual({
      field: 'source',
      message: 'identity.source is "kubernetes", but only a Kubernetes service-account token may write such events',
    });
    // Fields its config does not name are null, and may not be claimed.
    for (const [field, value] of [
      ['kind', 'human'],
      ['namespace', 'payments'],
      ['serviceAccount', 'billing'],
      ['pod', 'billing-7d9f'],
    ] as const) {
      expect(identityMismatch({ ...staticEvent, [field]: value }, writer)).toEqual({
        field,
        message: `identity.${field} is ${JSON.stringify(value)}, but this token stands for ${JSON.stringify(writer[field])}`,
      });
    }
    // Fields its config names must be claimed as named.
    const placed: WriterIdentity = { ...writer, kind: 'service', namespace: 'payments' };
    expect(identityMismatch({ ...staticEvent, kind: 'service', namespace: 'payments' }, placed)).toBeUndefined();
    expect(identityMismatch(staticEvent, placed)?.field).toBe('kind');
    expect(identityMismatch({ ...staticEvent, kind: 'service' }, placed)?.field).toBe('namespace');
  });
});

describe('identityMismatch: OIDC identities and gateways', () => {
  const person: AuditIdentity = {
    name: 'ada@example.com',
    kind: 'human',
    namespace: 'payments',
    serviceAccount: null,
    pod: null,
    source: 'oidc',
    oidc: { issuer: 'https://login.example.com', subject: 'u-1', agentIdentity: 'oncall', jti: null, sid: null },
  };
  const gateway: WriterIdentity = {
    name: 'system:serviceaccount:byline:byline-gateway',
    kind: 'service',
    namespace: 'byline',
    serviceAccount: 'byline-gateway',
    pod: 'byline-gateway-0',
    source: 'kubernetes',
    gateway: true,
  };

  test('an agent’s or a static token can never write an OIDC identity, even one shaped like its own', () => {
    const gatewayless = { ...gateway, gateway: undefined };
    for (const writer of [kube, gatewayless, { name: 'ada@example.com', source: 'static' } as WriterIdentity]) {
      expect(identityMismatch({ ...person, name: writer.name }, writer)).toEqual({
        field: 'source',
        message:
          'identity.source is "oidc", but only a gateway\'s service account (RBAC "write" on gatewayevents.byline.dev) may write such events',
      });
    }
  });

  test('a gateway writes for any OIDC identity, and only for those', () => {
    expect(identityMismatch(person, gateway)).toBeUndefined();
    expect(identityMismatch({ ...person, name: 'grace@example.com', kind: 'service' }, gateway)).toBeUndefined();
    expect(identityMismatch(event, gateway)?.message).toBe(
      'identity.source is "kubernetes", but a gateway\'s token writes only events for OIDC identities (source "oidc", with identity.oidc), and its own incident events',
    );
    const { oidc: _, ...bare } = person;
    expect(identityMismatch(bare, gateway)?.message).toContain('is "oidc" without identity.oidc');
    expect(identityMismatch({ ...person, serviceAccount: 'billing' }, gateway)?.field).toBe('serviceAccount');
    expect(identityMismatch({ ...person, pod: 'billing-0' }, gateway)?.field).toBe('pod');
  });

  test('a gateway writes its own incident events under exactly its own identity, and no other events under it', () => {
    const own = whoamiIdentity(gateway) as AuditIdentity;
    expect(identityMismatch(own, gateway, true)).toBeUndefined();
    // not a statement or a session under its own name: those are people's
    expect(identityMismatch(own, gateway, false)?.field).toBe('source');
    // not an incident under an identity it did not authenticate: an agent's, another service account, a static one
    expect(identityMismatch(event, gateway, true)?.field).toBe('name');
    expect(identityMismatch({ ...own, serviceAccount: 'agent' }, gateway, true)?.field).toBe('serviceAccount');
    expect(identityMismatch({ ...own, pod: 'other-0' }, gateway, true)?.field).toBe('pod');
    expect(identityMismatch({ ...own, source: 'static' }, gateway, true)?.field).toBe('source');
    // an ordinary writer gains nothing from the flag
    expect(identityMismatch({ ...event, name: 'other' }, kube, true)?.field).toBe('name');
  });
});

describe('whoamiIdentity', () => {
  test('a Kubernetes writer: every field', () => {
    expect(whoamiIdentity(kube)).toEqual(event);
    expect(whoamiIdentity({ ...kube, pod: undefined })).toEqual({ ...event, pod: null });
  });

  test('a static writer: what the config knows', () => {
    expect(whoamiIdentity({ name: 'billing-agent', source: 'static' })).toEqual({
      name: 'billing-agent',
      source: 'static',
    });
  });
});
