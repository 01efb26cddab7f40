import type { AuditIdentity } from '@byline/api';
import { describe, expect, test } from 'vitest';
import type { ListedIdentity } from '../auth/identity-claims.js';
import { oidcAttributionProblem } from './oidc-issuer-check.js';

const ISSUER = 'https://login.example.com';
const ada = {
  name: 'ada@example.com',
  kind: 'human',
  namespace: 'payments',
  serviceAccount: null,
  pod: null,
  source: 'oidc',
  oidc: { issuer: ISSUER, subject: 'u-1', agentIdentity: 'oncall', jti: null, sid: null },
} satisfies AuditIdentity;
const listed: ListedIdentity[] = [
  {
    metadata: { name: 'oncall', namespace: 'payments' },
    spec: {
      kind: 'human',
      oidc: [
        { issuer: 'https://other.example.com', group: 'x' },
        { issuer: ISSUER, group: 'sre' },
      ],
    },
  },
];

describe('oidcAttributionProblem', () => {
  test('an event naming an AgentIdentity that claims its issuer passes', () => {
    expect(oidcAttributionProblem(ada, listed)).toBeUndefined();
  });

  test('an issuer the AgentIdentity does not name is refused, naming both', () => {
    const other = { ...ada, oidc: { ...ada.oidc, issuer: 'https://evil.example.com' } };
    expect(oidcAttributionProblem(other, listed)).toBe(
      'identity.oidc.issuer is "https://evil.example.com", but AgentIdentity "oncall" in namespace "payments" claims no subjects of that issuer (spec.oidc)',
    );
  });

  test('an AgentIdentity that is not there, is being deleted, or claims service accounts is refused', () => {
    expect(oidcAttributionProblem({ ...ada, oidc: { ...ada.oidc, agentIdentity: 'ghost' } }, listed)).toBe(
      'identity.oidc.agentIdentity: there is no AgentIdentity "ghost" in namespace "payments"',
    );
    expect(oidcAttributionProblem({ ...ada, namespace: 'orders' }, listed)).toContain('there is no AgentIdentity');
    const deleting = [
      { ...listed[0]!, metadata: { ...listed[0]!.metadata, deletionTimestamp: '2026-01-01T00:00:00Z' } },
    ];
    expect(oidcAttributionProblem(ada, deleting)).toContain('there is no AgentIdentity');
    const pods = [{ metadata: listed[0]!.metadata, spec: { kind: 'human', serviceAccounts: ['billing'] } }];
    expect(oidcAttributionProblem(ada, pods)).toContain('claims no subjects of that issuer');
  });

  test('the kind must be the AgentIdentity’s', () => {
    expect(oidcAttributionProblem({ ...ada, kind: 'agent' }, listed)).toBe(
      'identity.kind is "agent", but AgentIdentity "oncall" in namespace "payments" is of kind "human"',
    );
  });

  test('an unclaimed subject (refused at connect) has no namespace, and no AgentIdentity without one', () => {
    const unclaimed = { ...ada, namespace: null, oidc: { ...ada.oidc, agentIdentity: null } };
    expect(oidcAttributionProblem(unclaimed, [])).toBeUndefined();
    expect(oidcAttributionProblem({ ...unclaimed, namespace: 'payments' }, listed)).toContain(
      'identity.oidc.agentIdentity is null',
    );
    expect(oidcAttributionProblem({ ...ada, namespace: null }, listed)).toBe(
      'identity.oidc.agentIdentity is "oncall", but identity.namespace is null',
    );
  });
});
