import { describe, expect, it } from 'vitest';
import { type ListedOidcIdentity, oidcClaimFor, type VerifiedClaims } from './oidc-claims.js';

const ISSUER = 'https://login.example.com';
const OTHER = 'https://other.example.com';

const id = (name: string, oidc: unknown, extra: Partial<ListedOidcIdentity['metadata']> = {}): ListedOidcIdentity => ({
  metadata: { name, namespace: 'payments', ...extra },
  spec: { kind: 'human', oidc },
});

const ada: VerifiedClaims = { issuer: ISSUER, subject: 'ada-0001', email: 'ada@example.com', groups: ['dba', 'eng'] };

describe('oidcClaimFor', () => {
  it('maps a claimed subject to its identity', () => {
    const r = oidcClaimFor([id('ada', [{ issuer: ISSUER, subject: 'ada-0001' }])], ada);
    expect(r).toEqual({
      ok: true,
      identity: { name: 'ada', namespace: 'payments', kind: 'human' },
      matchedBy: 'subject',
    });
  });

  it('maps by verified email, ignoring case', () => {
    const r = oidcClaimFor([id('ada', [{ issuer: ISSUER, email: 'Ada@Example.com' }])], ada);
    expect(r).toMatchObject({ ok: true, identity: { name: 'ada' }, matchedBy: 'email' });
  });

  it('does not map by an email the issuer did not vouch for', () => {
    const r = oidcClaimFor([id('ada', [{ issuer: ISSUER, email: 'ada@example.com' }])], { ...ada, email: null });
    expect(r).toMatchObject({ ok: false, reason: 'unclaimed' });
  });

  it('maps by group', () => {
    const r = oidcClaimFor([id('dbas', [{ issuer: ISSUER, group: 'dba' }])], ada);
    expect(r).toMatchObject({ ok: true, identity: { name: 'dbas' }, matchedBy: 'group' });
  });

  it('prefers the subject over an email over a group, so a person is not swept into a team', () => {
    const identities = [
      id('dbas', [{ issuer: ISSUER, group: 'dba' }]),
      id('ada-by-mail', [{ issuer: ISSUER, email: 'ada@example.com' }]),
      id('ada', [{ issuer: ISSUER, subject: 'ada-0001' }]),
    ];
    expect(oidcClaimFor(identities, ada)).toMatchObject({ ok: true, identity: { name: 'ada' } });
    expect(oidcClaimFor(identities.slice(0, 2), ada)).toMatchObject({ ok: true, identity: { name: 'ada-by-mail' } });
  });

  it('never matches a subject of another issuer', () => {
    const r = oidcClaimFor([id('ada', [{ issuer: OTHER, subject: 'ada-0001' }])], ada);
    expect(r).toEqual({
      ok: false,
      reason: 'unclaimed',
      message: expect.stringContaining(`subject "ada-0001" of issuer "${ISSUER}" is claimed by no AgentIdentity`),
    });
  });

  it('refuses a subject two identities claim at the same level, naming both', () => {
    const r = oidcClaimFor(
      [id('eng', [{ issuer: ISSUER, group: 'eng' }]), id('dbas', [{ issuer: ISSUER, group: 'dba' }])],
      ada,
    );
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.reason).toBe('claimed-twice');
    expect(r.message).toContain('"payments/dbas", "payments/eng"');
    expect(r.message).toContain(`issuer "${ISSUER}"`);
  });

  it('ignores identities being deleted and entries of the wrong shape', () => {
    const identities = [
      id('gone', [{ issuer: ISSUER, subject: 'ada-0001' }], { deletionTimestamp: '2026-12-01T00:00:00Z' }),
      id('junk', ['x', null, { issuer: ISSUER }, { issuer: ISSUER, subject: 7 }]),
      id('nope', 'not a list'),
    ];
    expect(oidcClaimFor(identities, ada)).toMatchObject({ ok: false, reason: 'unclaimed' });
  });

  it('refuses a claimant without a valid kind', () => {
    const bad = {
      metadata: { name: 'x', namespace: 'p' },
      spec: { kind: 'robot', oidc: [{ issuer: ISSUER, subject: 'ada-0001' }] },
    };
    expect(oidcClaimFor([bad], ada)).toMatchObject({ ok: false, reason: 'invalid-identity' });
  });

  it('an entry with a subject never matches by a group it also names (one form per entry)', () => {
    const r = oidcClaimFor([id('x', [{ issuer: ISSUER, subject: 'someone-else', group: 'dba' }])], ada);
    expect(r).toMatchObject({ ok: false, reason: 'unclaimed' });
  });
});
