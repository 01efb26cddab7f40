import { canonicalJson } from '@byline/api';
import { OidcTokenError, type VerifiedToken } from '@byline/api/oidc';
import { describe, expect, it } from 'vitest';
import { Authorizer } from '../policy/authorizer.js';
import { PolicyEngine } from '../policy/engine.js';
import type { GatewayPolicies, SignedInAs } from './gateway-policies.js';
import { OidcAuthenticator } from './oidc-authenticator.js';
import type { ListedOidcIdentity } from './oidc-claims.js';

const ISSUER = 'https://login.example.com';
const NOW = 1_800_000_000_000;

const verified = (over: Partial<VerifiedToken> = {}): VerifiedToken => ({
  claims: { issuer: ISSUER, subject: 'ada-0001', email: 'ada@example.com', groups: ['dba'] },
  name: 'ada@example.com',
  nameFromClaim: true,
  jti: 'j-1',
  sid: null,
  expiresAtMs: NOW + 600_000,
  ...over,
});

const identities = [
  {
    metadata: { name: 'dbas', namespace: 'payments' },
    spec: { kind: 'human', oidc: [{ issuer: ISSUER, group: 'dba' }] },
  },
];

const AUTHORIZER = new Authorizer(new PolicyEngine(), null);
const LEASE = { onRevoked() {}, release() {} };
/** Who policies were asked for, in order. */
const asked: [SignedInAs, string][] = [];
const policies: Pick<GatewayPolicies, 'authorizerFor'> = {
  authorizerFor: async (identity, person) => {
    asked.push([identity, person]);
    return { authorizer: AUTHORIZER, lease: LEASE };
  },
};

function authenticator(
  verify: () => Promise<VerifiedToken>,
  maxSessionAgeMs: number | null = null,
  policy: Pick<GatewayPolicies, 'authorizerFor'> = policies,
) {
  return new OidcAuthenticator({
    verifier: { verify },
    identities: () => identities,
    policies: policy,
    requireTls: true,
    maxSessionAgeMs,
    graceMs: 300_000,
    now: () => NOW,
  });
}

describe('OidcAuthenticator', () => {
  it('names the person, with the claiming identity in identity.oidc; the session lasts the token plus the grace', async () => {
    const r = await authenticator(async () => verified()).authenticate('token');
    expect(r).toEqual({
      ok: true,
      identity: {
        name: 'ada@example.com',
        kind: 'human',
        namespace: 'payments',
        serviceAccount: null,
        pod: null,
        source: 'oidc',
        oidc: { issuer: ISSUER, subject: 'ada-0001', agentIdentity: 'dbas', jti: 'j-1', sid: null },
      },
      endsAtMs: NOW + 600_000 + 300_000,
      authorizer: AUTHORIZER,
      // The policy's lease, wrapped to follow the claim while the session is open.
      lease: expect.objectContaining({ identity: 'payments/dbas' }),
    });
    // The policy is the claiming identity's, and denials name the person.
    expect(asked.at(-1)).toEqual([{ name: 'dbas', namespace: 'payments', kind: 'human' }, 'ada@example.com']);
  });

  it('the identity is in canonical key order, as chained events must be (the collector refuses any other)', async () => {
    const r = await authenticator(async () => verified()).authenticate('token');
    const identity = (r as { identity: unknown }).identity;
    expect(JSON.stringify(identity)).toBe(canonicalJson(identity));
  });

  it('maxSessionAge counts from the sign-in, whatever the token says', async () => {
    const r = await authenticator(async () => verified(), 8 * 3_600_000).authenticate('token');
    expect(r).toMatchObject({ ok: true, endsAtMs: NOW + 8 * 3_600_000 });
  });

  it('an unclaimed subject is refused with 28000 and an identity to record the refusal under', async () => {
    const r = await authenticator(async () =>
      verified({ claims: { issuer: ISSUER, subject: 'm-9', email: null, groups: [] }, name: 'm-9' }),
    ).authenticate('token');
    expect(r).toMatchObject({
      ok: false,
      sqlstate: '28000',
      identity: { name: 'm-9', kind: 'human', namespace: null, oidc: { subject: 'm-9', agentIdentity: null } },
    });
  });

  it('a bad token is a failed password (28P01), an unavailable issuer "cannot connect now" (57P03), neither recorded', async () => {
    const bad = await authenticator(async () => {
      throw new OidcTokenError('invalid', 'the token has expired');
    }).authenticate('token');
    expect(bad).toEqual({ ok: false, sqlstate: '28P01', message: 'the token has expired', identity: null });
    const away = await authenticator(async () => {
      throw new OidcTokenError('issuer-unavailable', 'discovery failed');
    }).authenticate('token');
    expect(away).toMatchObject({ ok: false, sqlstate: '57P03', identity: null });
  });

  it('without a policy for the claiming identity the sign-in is refused (57P03, fail closed) and recorded under the person', async () => {
    const none = async () => ({ error: 'the gateway has no policy for AgentIdentity payments/dbas yet' });
    const r = await authenticator(async () => verified(), null, { authorizerFor: none }).authenticate('token');
    expect(r).toEqual({
      ok: false,
      sqlstate: '57P03',
      message: 'the gateway has no policy for AgentIdentity payments/dbas yet',
      identity: expect.objectContaining({
        name: 'ada@example.com',
        oidc: expect.objectContaining({ agentIdentity: 'dbas' }),
      }),
    });
  });

  it('an unexpected failure is not turned into a refusal', async () => {
    await expect(
      authenticator(async () => {
        throw new TypeError('bug');
      }).authenticate('token'),
    ).rejects.toThrow('bug');
  });
});

describe('OidcAuthenticator: open sessions follow the claims', () => {
  const ada = {
    metadata: { name: 'ada', namespace: 'payments' },
    spec: { kind: 'human', oidc: [{ issuer: ISSUER, subject: 'ada-0001' }] },
  };
  const dbas = identities[0]!;

  async function signedIn(list: { current: ListedOidcIdentity[] }) {
    const auth = new OidcAuthenticator({
      verifier: { verify: async () => verified() },
      identities: () => list.current,
      policies,
      requireTls: true,
      maxSessionAgeMs: null,
      graceMs: 300_000,
      claimCheckMs: 10,
      now: () => NOW,
    });
    const r = await auth.authenticate('token');
    if (!r.ok) throw new Error(r.message);
    const revoked: string[] = [];
    r.lease.onRevoked((reason) => revoked.push(reason));
    return { lease: r.lease, revoked };
  }
  const tick = () => new Promise((r) => setTimeout(r, 60));

  it('a person no identity claims any more loses the open session, with the reason', async () => {
    const list = { current: [ada, dbas] };
    const { revoked, lease } = await signedIn(list);
    await tick();
    expect(revoked).toEqual([]);
    list.current = []; // ada's identity deleted, the group one too
    await tick();
    expect(revoked).toEqual([
      'access withdrawn: AgentIdentity payments/ada, which this session signed in as, no longer claims this person (subject "ada-0001" of issuer "https://login.example.com" is claimed by no AgentIdentity (add { issuer, subject | email | group } to the spec.oidc of one))',
    ]);
    lease.release();
  });

  it('claimed by another identity now (the subject entry removed, a group still matches): the session ends too, once', async () => {
    const list = { current: [ada, dbas] };
    const { revoked, lease } = await signedIn(list);
    list.current = [{ ...ada, spec: { ...ada.spec, oidc: [{ issuer: ISSUER, subject: 'someone-else' }] } }, dbas];
    await tick();
    await tick();
    expect(revoked).toEqual([
      'access withdrawn: AgentIdentity payments/dbas claims this person now, not payments/ada, which this session signed in as; sign in again',
    ]);
    lease.release();
  });

  it('a released session is no longer checked', async () => {
    const list = { current: [ada] };
    const { revoked, lease } = await signedIn(list);
    lease.release();
    list.current = [];
    await tick();
    expect(revoked).toEqual([]);
  });
});
