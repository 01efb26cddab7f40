import type { crds } from '@byline/api';
import { describe, expect, it } from 'vitest';
import type { AgentIdentity, DatabaseRoute } from '../injection/types.js';
import { evaluateIdentity, type IdentityContext } from './agent-identity.js';
import { nextStatus } from './conditions.js';
import { evaluateRoute, type SecretKeys, secretKeysOnly, secretsOf } from './database-route.js';

const NS = 'payments';

function route(name: string, spec: Partial<DatabaseRoute['spec']> = {}): DatabaseRoute {
  return {
    apiVersion: 'byline.dev/v1alpha1',
    kind: 'DatabaseRoute',
    metadata: { name, namespace: NS, generation: 1 },
    spec: {
      upstream: { host: 'db.example.com', port: 5432, database: 'orders', sslMode: 'require' },
      credentials: { secretRef: { name: `${name}-app`, usernameKey: 'username', passwordKey: 'password' } },
      listenPort: 15432,
      ...spec,
    },
  };
}

function identity(name: string, serviceAccounts: string[], routes: string[]): AgentIdentity {
  return {
    apiVersion: 'byline.dev/v1alpha1',
    kind: 'AgentIdentity',
    metadata: { name, namespace: NS, generation: 1 },
    spec: {
      kind: 'agent',
      serviceAccounts,
      routes: routes.map((r) => ({ name: r, access: 'readWrite' })),
      parameters: 'redacted',
    },
  };
}

const secret = (name: string, keys: string[]): SecretKeys => ({
  metadata: { name, namespace: NS },
  data: Object.fromEntries(keys.map((k) => [k, ''])),
});

function secrets(...list: SecretKeys[]) {
  return (ns: string, name: string) => list.find((s) => s.metadata.namespace === ns && s.metadata.name === name);
}

describe('the DatabaseRoute state machine', () => {
  it('SecretNotFound, SecretKeyMissing, CASecretNotFound, CASecretKeyMissing, Valid — first match wins', () => {
    const r = route('orders-db');
    expect(evaluateRoute(r, secrets())).toMatchObject({ status: 'False', reason: 'SecretNotFound' });
    expect(evaluateRoute(r, secrets()).message).toContain('"orders-db-app"');
    const keyMissing = evaluateRoute(r, secrets(secret('orders-db-app', ['username'])));
    expect(keyMissing).toMatchObject({ status: 'False', reason: 'SecretKeyMissing' });
    expect(keyMissing.message).toContain('"password"');
    expect(evaluateRoute(r, secrets(secret('orders-db-app', []))).message).toMatch(/"username" or "password"/);
    expect(evaluateRoute(r, secrets(secret('orders-db-app', ['username', 'password'])))).toMatchObject({
      status: 'True',
      reason: 'Valid',
    });

    const withCa = route('orders-db', {
      upstream: {
        host: 'db.example.com',
        port: 5432,
        database: 'orders',
        sslMode: 'verify-full',
        caSecretRef: { name: 'db-ca', key: 'ca.crt' },
      },
    });
    const creds = secret('orders-db-app', ['username', 'password']);
    expect(evaluateRoute(withCa, secrets(creds))).toMatchObject({ reason: 'CASecretNotFound', status: 'False' });
    expect(evaluateRoute(withCa, secrets(creds, secret('db-ca', ['tls.crt'])))).toMatchObject({
      reason: 'CASecretKeyMissing',
    });
    expect(evaluateRoute(withCa, secrets(creds, secret('db-ca', ['ca.crt'])))).toMatchObject({ reason: 'Valid' });
    expect(secretsOf(withCa)).toEqual(['orders-db-app', 'db-ca']);
  });

  it('honours custom key names and refuses an unusable spec', () => {
    const r = route('orders-db', {
      credentials: { secretRef: { name: 's', usernameKey: 'user', passwordKey: 'pass' } },
    });
    expect(evaluateRoute(r, secrets(secret('s', ['username', 'password']))).reason).toBe('SecretKeyMissing');
    expect(evaluateRoute(r, secrets(secret('s', ['user', 'pass']))).reason).toBe('Valid');
    const bad = route('orders-db', { listenPort: 80 });
    expect(evaluateRoute(bad, secrets()).reason).toBe('InvalidSpec');
  });

  it('a route naming its role (credentials.username) needs only the password in its Secret; env.user without it is InvalidSpec', () => {
    const named = route('orders-db', {
      credentials: { username: 'app_user', secretRef: { name: 's', usernameKey: 'username', passwordKey: 'password' } },
    });
    expect(evaluateRoute(named, secrets(secret('s', ['password']))).reason).toBe('Valid');
    expect(evaluateRoute(named, secrets(secret('s', ['username']))).message).toContain('"password"');
    const unnamed = route('orders-db', { env: { user: 'PGUSER' } });
    expect(evaluateRoute(unnamed, secrets(secret('orders-db-app', ['username', 'password'])))).toMatchObject({
      reason: 'InvalidSpec',
      message: 'spec.env.user names the role in spec.credentials.username: give spec.credentials.username too',
    });
  });

  it('keeps only the key names of a Secret', () => {
    const kept = secretKeysOnly({ metadata: { name: 's', namespace: NS }, data: { password: 'c2VjcmV0' } });
    expect(kept.data).toEqual({ password: '' });
    expect(JSON.stringify(kept)).not.toContain('c2VjcmV0');
  });
});

describe('the AgentIdentity state machine', () => {
  const ready = secret('orders-db-app', ['username', 'password']);
  const ctx = (over: Partial<IdentityContext> = {}): IdentityContext => ({
    identities: [],
    // Unless a test says otherwise, the cluster holds the namespace's identities only.
    clusterIdentities: over.clusterIdentities ?? over.identities ?? [],
    route: (ns, name) => (ns === NS && name === 'orders-db' ? route('orders-db') : undefined),
    secret: secrets(ready),
    serviceAccountExists: () => true,
    ...over,
  });

  it('Valid when its routes are ready and its service accounts exist', () => {
    const i = identity('billing', ['billing'], ['orders-db']);
    expect(evaluateIdentity(i, ctx({ identities: [i] }))).toMatchObject({ status: 'True', reason: 'Valid' });
  });

  it('Valid for an identity of people (spec.oidc, no service accounts), saying so', () => {
    const base = identity('ada', [], ['orders-db']);
    const { serviceAccounts: _none, ...spec } = base.spec;
    const i = {
      ...base,
      spec: { ...spec, kind: 'human' as const, oidc: [{ issuer: 'https://login.example.com', subject: 'a' }] },
    };
    expect(evaluateIdentity(i, ctx({ identities: [i] }))).toMatchObject({
      status: 'True',
      reason: 'Valid',
      message: 'routes "orders-db" are ready for 1 OIDC claim (through byline gateway)',
    });
  });

  it('RouteNotFound names the missing routes', () => {
    const i = identity('billing', ['billing'], ['orders-db', 'ledger-db']);
    const v = evaluateIdentity(i, ctx({ identities: [i] }));
    expect(v).toMatchObject({ status: 'False', reason: 'RouteNotFound' });
    expect(v.message).toContain('"ledger-db"');
    expect(v.message).not.toContain('"orders-db"');
  });

  it('RouteNotReady carries the route’s own reason', () => {
    const i = identity('billing', ['billing'], ['orders-db']);
    const v = evaluateIdentity(i, ctx({ identities: [i], secret: secrets() }));
    expect(v).toMatchObject({ status: 'False', reason: 'RouteNotReady' });
    expect(v.message).toContain('SecretNotFound');
  });

  it('ServiceAccountClaimedTwice on both identities, naming the other, before any other problem', () => {
    const a = identity('alpha', ['shared', 'own'], ['orders-db']);
    const b = identity('beta', ['shared'], ['missing-db']);
    const all = [a, b, identity('gamma', ['unrelated'], ['orders-db'])];
    const va = evaluateIdentity(a, ctx({ identities: all }));
    const vb = evaluateIdentity(b, ctx({ identities: all }));
    expect(va).toMatchObject({ status: 'False', reason: 'ServiceAccountClaimedTwice' });
    expect(vb).toMatchObject({ status: 'False', reason: 'ServiceAccountClaimedTwice' });
    expect(va.message).toContain('"shared"');
    expect(va.message).toContain('"beta"');
    expect(vb.message).toContain('"alpha"');
    expect(va.message).not.toContain('gamma');
  });

  it('OidcClaimedTwice on both identities, across namespaces, naming the claim and the other; before route problems', () => {
    const ISSUER = 'https://login.example.com';
    const people = (name: string, namespace: string, oidc: crds.OidcClaim[], routes = ['orders-db']) => {
      const base = identity(name, [], routes);
      const { serviceAccounts: _none, ...spec } = base.spec;
      return { ...base, metadata: { name, namespace }, spec: { ...spec, kind: 'human' as const, oidc } };
    };
    const a = people('ada', NS, [
      { issuer: ISSUER, subject: 'ada-1' },
      { issuer: ISSUER, group: 'dba' },
    ]);
    const b = people('ada-too', 'other', [{ issuer: ISSUER, subject: 'ada-1' }], ['missing-db']);
    const c = people('dbas', NS, [{ issuer: ISSUER, group: 'dba' }]);
    const bystander = people('bob', NS, [{ issuer: ISSUER, subject: 'bob-2' }]);
    const sameSubjectOtherIssuer = people('ada-x', NS, [{ issuer: 'https://other.example.com', subject: 'ada-1' }]);
    const all = [a, b, c, bystander, sameSubjectOtherIssuer];
    const va = evaluateIdentity(a, ctx({ identities: [a, c, bystander], clusterIdentities: all }));
    expect(va).toMatchObject({ status: 'False', reason: 'OidcClaimedTwice' });
    expect(va.message).toBe(
      `subject "ada-1" of issuer "${ISSUER}" is also claimed by AgentIdentity "other/ada-too"; group "dba" of issuer "${ISSUER}" is also claimed by AgentIdentity "${NS}/dbas": byline gateway refuses those sign-ins (28000) until one identity claims it`,
    );
    const vb = evaluateIdentity(b, ctx({ identities: [b], clusterIdentities: all }));
    expect(vb).toMatchObject({ status: 'False', reason: 'OidcClaimedTwice' });
    expect(vb.message).toContain(`AgentIdentity "${NS}/ada"`);
    expect(evaluateIdentity(bystander, ctx({ identities: [bystander], clusterIdentities: all })).reason).toBe('Valid');
    expect(evaluateIdentity(sameSubjectOtherIssuer, ctx({ clusterIdentities: all })).reason).toBe('Valid');
    // Emails compare without regard to case, as the gateway compares them.
    const e1 = people('e1', NS, [{ issuer: ISSUER, email: 'Ada@Example.com' }]);
    const e2 = people('e2', NS, [{ issuer: ISSUER, email: 'ada@example.com' }]);
    expect(evaluateIdentity(e1, ctx({ clusterIdentities: [e1, e2] })).reason).toBe('OidcClaimedTwice');
    // One being deleted no longer counts.
    const leaving = { ...b, metadata: { ...b.metadata, deletionTimestamp: '2026-12-06T00:00:00Z' } };
    expect(evaluateIdentity(a, ctx({ clusterIdentities: [a, leaving] })).reason).toBe('Valid');
  });

  it('identities in other namespaces do not clash', () => {
    const a = identity('alpha', ['shared'], ['orders-db']);
    const elsewhere = {
      ...identity('beta', ['shared'], ['orders-db']),
      metadata: { name: 'beta', namespace: 'other' },
    };
    expect(evaluateIdentity(a, ctx({ identities: [a, elsewhere] })).reason).toBe('Valid');
  });

  it('PolicyInvalid names what the collector’s policy builder cannot read, and clears once fixed', () => {
    // Objects stored under an older CRD schema can hold what today's schema refuses.
    const base = identity('billing', ['billing'], ['orders-db']);
    const bad = {
      ...base,
      spec: {
        ...base.spec,
        routes: [{ name: 'orders-db', access: 'superuser' }],
        guardrails: { deny: { classes: ['drop-everything'] } },
      },
    } as unknown as AgentIdentity;
    const v = evaluateIdentity(bad, ctx({ identities: [bad] }));
    expect(v).toMatchObject({ status: 'False', reason: 'PolicyInvalid' });
    expect(v.message).toContain('AgentIdentity payments/billing guardrails');
    expect(v.message).toContain('routes[orders-db].access: "superuser"');

    const onlyAccess = { ...base, spec: { ...base.spec, routes: [{ name: 'orders-db', access: 'root' }] } };
    const va = evaluateIdentity(onlyAccess as unknown as AgentIdentity, ctx({ identities: [bad] }));
    expect(va).toMatchObject({ status: 'False', reason: 'PolicyInvalid' });
    expect(va.message).not.toContain('guardrails');

    const fixed = { ...base, spec: { ...base.spec, guardrails: { deny: { classes: ['ddl' as const] } } } };
    expect(evaluateIdentity(fixed, ctx({ identities: [fixed] }))).toMatchObject({ status: 'True', reason: 'Valid' });
  });

  it('ServiceAccountNotFound keeps Ready True and names the account', () => {
    const i = identity('billing', ['billing', 'typo'], ['orders-db']);
    const v = evaluateIdentity(i, ctx({ identities: [i], serviceAccountExists: (_ns, n) => n === 'billing' }));
    expect(v).toMatchObject({ status: 'True', reason: 'ServiceAccountNotFound' });
    expect(v.message).toContain('"typo"');
  });
});

describe('nextStatus', () => {
  const t0 = new Date('2026-01-01T00:00:00.123Z');
  const t1 = new Date('2026-01-01T00:05:00Z');
  const desired = { type: 'Ready', status: 'False' as const, reason: 'SecretNotFound', message: 'm' };

  it('sets lastTransitionTime (whole seconds) and observedGeneration on the first write', () => {
    const u = nextStatus(undefined, desired, 3, t0);
    expect(u.changed).toBe(true);
    expect(u.status).toEqual({
      observedGeneration: 3,
      conditions: [{ ...desired, lastTransitionTime: '2026-01-01T00:00:00Z', observedGeneration: 3 }],
    });
  });

  it('writes nothing when nothing changed', () => {
    const first = nextStatus(undefined, desired, 3, t0).status;
    const again = nextStatus(first, desired, 3, t1);
    expect(again.changed).toBe(false);
  });

  it('keeps lastTransitionTime while the status stays, moves it when the status flips', () => {
    const first = nextStatus(undefined, desired, 3, t0).status;
    const otherReason = nextStatus(first, { ...desired, reason: 'SecretKeyMissing' }, 3, t1);
    expect(otherReason.changed).toBe(true);
    expect(otherReason.status.conditions?.[0]?.lastTransitionTime).toBe('2026-01-01T00:00:00Z');
    const newGeneration = nextStatus(first, desired, 4, t1);
    expect(newGeneration.changed).toBe(true);
    expect(newGeneration.status.observedGeneration).toBe(4);
    const flipped = nextStatus(first, { ...desired, status: 'True', reason: 'Valid' }, 3, t1);
    expect(flipped.status.conditions?.[0]?.lastTransitionTime).toBe('2026-01-01T00:05:00Z');
    expect(flipped.previous?.reason).toBe('SecretNotFound');
  });

  it('leaves other condition types alone', () => {
    const other = { type: 'Other', status: 'True' as const, reason: 'X', message: '', lastTransitionTime: 'x' };
    const u = nextStatus({ conditions: [other] }, desired, 1, t0);
    expect(u.status.conditions?.map((c) => c.type)).toEqual(['Other', 'Ready']);
  });
});
