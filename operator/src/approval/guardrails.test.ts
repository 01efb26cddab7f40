import type { crds } from '@byline/api';
import { describe, expect, it } from 'vitest';
import { evaluateIdentity } from '../reconcile/agent-identity.js';
import { identityGuardrailConflicts } from './guardrails.js';

const NS = 'payments';

const route = (guardrails?: crds.Guardrails): crds.DatabaseRoute => ({
  apiVersion: 'byline.dev/v1alpha1',
  kind: 'DatabaseRoute',
  metadata: { name: 'orders-db', namespace: NS, generation: 1 },
  spec: {
    upstream: { host: 'db.example.com', port: 5432, database: 'orders', sslMode: 'require' },
    credentials: { secretRef: { name: 'orders-db-app', usernameKey: 'username', passwordKey: 'password' } },
    listenPort: 15432,
    ...(guardrails ? { guardrails } : {}),
  },
});

const identity = (access: 'read' | 'readWrite' | 'admin', guardrails?: crds.Guardrails): crds.AgentIdentity => ({
  apiVersion: 'byline.dev/v1alpha1',
  kind: 'AgentIdentity',
  metadata: { name: 'migrator', namespace: NS, generation: 1 },
  spec: {
    kind: 'agent',
    serviceAccounts: ['migrator'],
    routes: [{ name: 'orders-db', access }],
    parameters: 'redacted',
    ...(guardrails ? { guardrails } : {}),
  },
});

describe('guardrail conflicts of an identity', () => {
  it("judges the identity's guardrails added to the route's defaults, against its access", () => {
    // The route denies ddl; the identity asks for approval of ddl: no approval could ever unlock it.
    const r = route({ deny: { classes: ['ddl'] } });
    expect(identityGuardrailConflicts(identity('admin', { requireApproval: { classes: ['ddl'] } }), () => r)).toEqual([
      'routes[orders-db]: class "ddl" is both denied and approval-gated; deny wins, no approval can unlock it',
    ]);
    expect(
      identityGuardrailConflicts(identity('admin', { requireApproval: { classes: ['ddl'] } }), () => route()),
    ).toEqual([]);
    expect(
      identityGuardrailConflicts(identity('read', { requireApproval: { classes: ['write'] } }), () => route()),
    ).toEqual([
      'routes[orders-db]: class "write" is approval-gated but access read never allows it; an approval cannot add access',
    ]);
  });

  it('the AgentIdentity reconciler reports them in Ready (True, reason GuardrailConflict)', () => {
    const i = identity('readWrite', { requireApproval: { classes: ['ddl'] } });
    const v = evaluateIdentity(i, {
      identities: [i],
      clusterIdentities: [i],
      route: () => route(),
      secret: () => ({ metadata: { name: 'orders-db-app', namespace: NS }, data: { username: '', password: '' } }),
      serviceAccountExists: () => true,
    });
    expect(v).toMatchObject({ status: 'True', reason: 'GuardrailConflict' });
    expect(v.message).toMatch(/class "ddl" is approval-gated but access readWrite never allows it/);
  });
});
