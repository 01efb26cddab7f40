import type { VerifiedToken } from '@byline/api/oidc';
import { describe, expect, test } from 'vitest';
import { readerNames } from './oidc-reader-names.js';
import { ruleGrant } from './oidc-reader-rules.js';

const ISSUER = { issuer: 'https://login.example.com', audiences: ['byline-viewer'] };
const token = (over: Partial<VerifiedToken> = {}, groups: string[] = ['dba']): VerifiedToken => ({
  claims: { issuer: ISSUER.issuer, subject: 'ada-0001', email: 'ada@example.com', groups },
  name: 'ada@example.com',
  nameFromClaim: true,
  jti: null,
  sid: null,
  expiresAtMs: 0,
  ...over,
});

describe('readerNames', () => {
  test('prefixes the name and every group ("oidc:" unless configured)', () => {
    expect(readerNames(token(), ISSUER)).toEqual({ ok: true, username: 'oidc:ada@example.com', groups: ['oidc:dba'] });
    expect(readerNames(token(), { ...ISSUER, usernamePrefix: 'corp:', groupsPrefix: 'corp-g:' })).toEqual({
      ok: true,
      username: 'corp:ada@example.com',
      groups: ['corp-g:dba'],
    });
  });

  test('a name claim the token lacks is not replaced by the subject', () => {
    const lacking = token({ name: 'ada-0001', nameFromClaim: false });
    expect(readerNames(lacking, ISSUER)).toMatchObject({
      ok: false,
      message: expect.stringMatching(/no "email" claim/),
    });
    expect(readerNames(lacking, { ...ISSUER, nameClaim: 'preferred_username' })).toMatchObject({ ok: false });
    expect(readerNames(lacking, { ...ISSUER, nameClaim: 'sub' })).toMatchObject({
      ok: true,
      username: 'oidc:ada-0001',
    });
  });

  test("names and groups in Kubernetes' reserved system: space are refused", () => {
    expect(readerNames(token({ name: 'system:admin' }), ISSUER)).toMatchObject({ ok: false });
    expect(readerNames(token({}, ['dba', 'system:masters']), ISSUER)).toMatchObject({
      ok: false,
      message: expect.stringContaining('"system:masters"'),
    });
  });
});

describe('ruleGrant', () => {
  const rules = [
    { user: 'oidc:ada@example.com', namespaces: ['payments'] },
    { group: 'oidc:billing', namespaces: ['billing'] },
    { group: 'oidc:auditors' },
  ];

  test('rules add up; a rule without namespaces gives them all; none matching gives nothing', () => {
    expect(ruleGrant(rules, 'oidc:ada@example.com', ['oidc:billing'])).toEqual({
      all: false,
      namespaces: new Set(['payments', 'billing']),
    });
    expect(ruleGrant(rules, 'oidc:ada@example.com', ['oidc:auditors'])).toEqual({ all: true });
    expect(ruleGrant(rules, 'oidc:eve@example.com', ['oidc:dba'])).toBeNull();
  });

  test('names are matched exactly: no prefix, no case folding', () => {
    expect(ruleGrant(rules, 'ada@example.com', [])).toBeNull();
    expect(ruleGrant(rules, 'oidc:ADA@example.com', ['oidc:Auditors'])).toBeNull();
  });
});
