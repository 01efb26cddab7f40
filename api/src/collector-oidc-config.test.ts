import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { loadCollectorConfig } from './collector-config.js';
import { groupsPrefixOf, usernamePrefixOf } from './collector-oidc-config.js';
import { ValidationError } from './validate.js';

const dir = mkdtempSync(join(tmpdir(), 'byline-collector-oidc-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
function load(oidc: string, kubernetes = false) {
  const path = join(dir, `collector-${n++}.yaml`);
  writeFileSync(
    path,
    `listen: 127.0.0.1:8443
store: sqlite:/var/lib/byline/trail.db
auth:
  static: [{ token: a-writer-token-0123456789, identity: billing-agent }]
${kubernetes ? '  kubernetes: {}\n' : ''}  oidc:
${oidc}`,
  );
  return loadCollectorConfig(path).config;
}

function problems(oidc: string, kubernetes = false): string[] {
  try {
    load(oidc, kubernetes);
  } catch (e) {
    if (e instanceof ValidationError) return e.problems;
    throw e;
  }
  throw new Error('the config was accepted');
}

const ISSUER =
  '    - { issuer: https://login.example.com, audiences: [byline-viewer, byline-cli], viewerClientId: byline-viewer }\n';

describe('auth.oidc of the collector', () => {
  test('the documented example is valid; prefixes default to "oidc:" for users and groups alike', () => {
    const c = load(
      `    issuers:\n${ISSUER}    readers:\n      - { group: "oidc:auditors" }\n      - { user: "oidc:ada@example.com", namespaces: [payments] }\n`,
    );
    const issuer = c.auth.oidc!.issuers[0]!;
    expect(usernamePrefixOf(issuer)).toBe('oidc:');
    expect(groupsPrefixOf(issuer)).toBe('oidc:');
    expect(groupsPrefixOf({ ...issuer, usernamePrefix: 'corp:' })).toBe('corp:');
    expect(groupsPrefixOf({ ...issuer, usernamePrefix: 'corp:', groupsPrefix: 'corp-group:' })).toBe('corp-group:');
  });

  test('with auth.kubernetes RBAC decides: readers rules are refused, and not needed', () => {
    expect(() => load(`    issuers:\n${ISSUER}`, true)).not.toThrow();
    expect(problems(`    issuers:\n${ISSUER}    readers: [{ group: "oidc:auditors" }]\n`, true)).toEqual([
      'auth.oidc.readers: with auth.kubernetes, RBAC decides who reads (SubjectAccessReview); remove it',
    ]);
  });

  test('without auth.kubernetes someone must be named as a reader', () => {
    expect(problems(`    issuers:\n${ISSUER}`)).toEqual([
      'auth.oidc.readers: list who may read (user or group, with its prefix), or configure auth.kubernetes',
    ]);
  });

  test('prefixes cannot reach into system:, and an empty prefix is no prefix', () => {
    const p = problems(
      '    issuers:\n    - { issuer: https://login.example.com, audiences: [a], usernamePrefix: "system:", groupsPrefix: "system:x" }\n    readers: [{ group: g }]\n',
    );
    expect(p).toEqual([
      `auth.oidc.issuers[0].usernamePrefix: "system:" would make names in Kubernetes' reserved "system:" space`,
      `auth.oidc.issuers[0].groupsPrefix: "system:x" would make names in Kubernetes' reserved "system:" space`,
    ]);
    expect(
      problems(
        '    issuers:\n    - { issuer: https://login.example.com, audiences: [a], usernamePrefix: "" }\n    readers: [{ group: g }]\n',
      ).join(),
    ).toMatch(/usernamePrefix/);
  });

  test('the viewer client must be an audience; an issuer once; a rule names a user or a group', () => {
    const p = problems(
      '    issuers:\n    - { issuer: https://login.example.com, audiences: [a], viewerClientId: v }\n    - { issuer: https://login.example.com, audiences: [a] }\n    readers: [{ user: u, group: g }, { namespaces: [x] }]\n',
    );
    expect(p).toEqual([
      'auth.oidc.issuers[0].viewerClientId: "v" must also be in audiences (its ID tokens are for it)',
      'auth.oidc.issuers[1].issuer: "https://login.example.com" is listed twice',
      'auth.oidc.readers[0]: give exactly one of "user" and "group"',
      'auth.oidc.readers[1]: give exactly one of "user" and "group"',
    ]);
  });

  test('plain-http issuers and viewer scopes without openid are refused by the schema', () => {
    expect(
      problems(
        '    issuers:\n    - { issuer: http://login.example.com, audiences: [a] }\n    readers: [{ group: g }]\n',
      ).join(),
    ).toMatch(/issuer/);
    expect(
      problems(
        '    issuers:\n    - { issuer: https://login.example.com, audiences: [a], viewerScopes: email }\n    readers: [{ group: g }]\n',
      ).join(),
    ).toMatch(/viewerScopes/);
  });
});
