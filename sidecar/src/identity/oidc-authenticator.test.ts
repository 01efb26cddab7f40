import { OidcTokenError, type VerifiedToken } from '@byline/api/oidc';
import { describe, expect, it } from 'vitest';
import { OidcAuthenticator } from './oidc-authenticator.js';

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

function authenticator(verify: () => Promise<VerifiedToken>, maxSessionAgeMs: number | null = null) {
  return new OidcAuthenticator({
    verifier: { verify },
    identities: () => identities,
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
    });
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

  it('an unexpected failure is not turned into a refusal', async () => {
    await expect(
      authenticator(async () => {
        throw new TypeError('bug');
      }).authenticate('token'),
    ).rejects.toThrow('bug');
  });
});
