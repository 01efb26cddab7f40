/**
 * The gateway's token verifier against a real OpenID provider (oidc-provider over HTTPS): tokens
 * it issues pass; every way a hostile client might forge, stretch or borrow a token is refused with
 * a message naming the problem; keys are cached and refreshed as promised.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { OidcIssuerConfig } from '@byline/api';
import { caFetch, OidcTokenError, OidcVerifier, oidcClaimFor } from '@byline/sidecar';
import { exportSPKI, importJWK, SignJWT } from 'jose';
import * as client from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueCert } from '../harness/certs.js';
import {
  CI_CLIENT_ID,
  CI_CLIENT_SECRET,
  CLI_CLIENT_ID,
  GATEWAY_AUDIENCE,
  makeSigningKey,
  startProvider,
  type TestProvider,
} from '../harness/oidc-provider.js';

const dir = mkdtempSync(join(tmpdir(), 'byline-oidc-verifier-'));
let op: TestProvider;

beforeAll(async () => {
  op = await startProvider({ dir });
});
afterAll(async () => {
  await op?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function issuerConfig(extra: Partial<OidcIssuerConfig> = {}): OidcIssuerConfig {
  return {
    issuer: op.issuer,
    audiences: [GATEWAY_AUDIENCE, CLI_CLIENT_ID],
    caFile: op.caFile,
    nameClaim: 'email',
    ...extra,
  };
}

function verifier(extra: Partial<OidcIssuerConfig> = {}, options = {}) {
  return new OidcVerifier([issuerConfig(extra)], { clockToleranceSeconds: 5, ...options });
}

/** A token signed with the provider's current key (what the provider itself would sign), claims chosen by the test. */
async function signed(claims: Record<string, unknown>, header: Record<string, unknown> = {}, key = op.key) {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ sub: 'ada-0001', email: 'ada@example.com', email_verified: true, ...claims })
    .setProtectedHeader({ alg: 'RS256', kid: key.kid, ...header })
    .setIssuer(String(claims.iss ?? op.issuer))
    .setAudience((claims.aud as string) ?? CLI_CLIENT_ID)
    .setIssuedAt(now)
    .setExpirationTime((claims.exp as number) ?? now + 300)
    .sign(key.privateKey);
}

async function refusal(v: OidcVerifier, token: string): Promise<OidcTokenError> {
  try {
    await v.verify(token);
  } catch (e) {
    if (e instanceof OidcTokenError) return e;
    throw e;
  }
  throw new Error('the token was accepted');
}

async function clientCredentialsToken(): Promise<string> {
  const config = await client.discovery(new URL(op.issuer), CI_CLIENT_ID, CI_CLIENT_SECRET, undefined, {
    [client.customFetch]: caFetch(op.ca),
  });
  const tokens = await client.clientCredentialsGrant(config, { resource: `urn:byline:${GATEWAY_AUDIENCE}` });
  return tokens.access_token;
}

describe('tokens the provider issues', () => {
  it('accepts a client-credentials JWT access token for the gateway audience, with its jti', async () => {
    const token = await clientCredentialsToken();
    const v = verifier({ nameClaim: 'sub' });
    const verified = await v.verify(token);
    expect(verified.claims).toEqual({ issuer: op.issuer, subject: CI_CLIENT_ID, email: null, groups: [] });
    expect(verified.name).toBe(CI_CLIENT_ID);
    expect(verified.jti).toMatch(/.+/);
    expect(verified.expiresAtMs).toBeGreaterThan(Date.now());
    // the same token with an issuer config that accepts only another audience is refused
    const other = verifier({ audiences: ['someone-else'] });
    expect((await refusal(other, token)).message).toMatch(/not meant for this gateway \(aud\)/);
  });

  it('accepts an ID token signed with the issuer key, with email (verified), groups and sid', async () => {
    const v = verifier();
    const verified = await v.verify(await signed({ groups: ['dba', 7], sid: 'session-1' }));
    expect(verified.claims).toEqual({
      issuer: op.issuer,
      subject: 'ada-0001',
      email: 'ada@example.com',
      groups: ['dba'],
    });
    expect(verified.name).toBe('ada@example.com');
    expect(verified.sid).toBe('session-1');
  });

  it('drops an unverified email, so it can neither name nor map the person', async () => {
    const verified = await verifier().verify(await signed({ email_verified: false }));
    expect(verified.claims.email).toBeNull();
    expect(verified.name).toBe('ada-0001');
  });
});

describe('refused tokens', () => {
  const now = () => Math.floor(Date.now() / 1000);

  it('expired (beyond the leeway)', async () => {
    const e = await refusal(verifier(), await signed({ exp: now() - 60 }));
    expect(e.reason).toBe('invalid');
    expect(e.message).toBe(`the token from issuer "${op.issuer}" has expired`);
  });

  it('expired within the leeway is still accepted', async () => {
    await expect(verifier().verify(await signed({ exp: now() - 2 }))).resolves.toMatchObject({});
  });

  it('not yet valid (nbf in the future)', async () => {
    const e = await refusal(verifier(), await signed({ nbf: now() + 120 }));
    expect(e.message).toMatch(/is not valid yet \(nbf\)/);
  });

  it('for another audience', async () => {
    const e = await refusal(verifier(), await signed({ aud: 'another-client' }));
    expect(e.message).toMatch(/not meant for this gateway \(aud\)/);
  });

  it('from an issuer that is not trusted, naming it', async () => {
    const e = await refusal(verifier(), await signed({ iss: 'https://evil.example.com' }));
    expect(e.reason).toBe('untrusted-issuer');
    expect(e.message).toBe('tokens from issuer "https://evil.example.com" are not trusted here');
  });

  it('claiming the trusted issuer but signed by another key with the same kid', async () => {
    const impostor = await makeSigningKey(op.key.kid);
    const e = await refusal(verifier(), await signed({}, {}, impostor));
    expect(e.message).toMatch(/has a bad signature/);
  });

  it('signed by a key the issuer does not publish', async () => {
    const impostor = await makeSigningKey('unknown-kid');
    const e = await refusal(verifier(), await signed({}, {}, impostor));
    expect(e.message).toMatch(/signed by a key the issuer does not publish/);
  });

  it('alg none', async () => {
    const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const token = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ iss: op.issuer, sub: 'ada-0001', aud: CLI_CLIENT_ID, exp: now() + 300 })}.`;
    const e = await refusal(verifier(), token);
    expect(e.reason).toBe('malformed');
    expect(e.message).toMatch(/not a signed JWT/);
  });

  it('HS256 with the issuer public key as the HMAC secret', async () => {
    const pem = await exportSPKI((await importJWK(op.key.publicJwk, 'RS256')) as never);
    const token = await new SignJWT({ sub: 'ada-0001', email: 'ada@example.com', email_verified: true })
      .setProtectedHeader({ alg: 'HS256', kid: op.key.kid })
      .setIssuer(op.issuer)
      .setAudience(CLI_CLIENT_ID)
      .setExpirationTime(now() + 300)
      .sign(new TextEncoder().encode(pem));
    const e = await refusal(verifier(), token);
    expect(e.message).toMatch(/signature algorithm this issuer does not allow/);
  });

  it('a password that is no JWT at all', async () => {
    const e = await refusal(verifier(), 'hunter2');
    expect(e.reason).toBe('malformed');
  });
});

describe('mapping a verified token to an identity', () => {
  const identities = () => [
    {
      metadata: { name: 'dbas', namespace: 'payments' },
      spec: { kind: 'human', oidc: [{ issuer: op.issuer, group: 'dba' }] },
    },
  ];

  it('maps by group', async () => {
    const verified = await verifier().verify(
      await signed({ sub: 'grace-2', email: 'grace@example.com', groups: ['dba'] }),
    );
    expect(oidcClaimFor(identities(), verified.claims)).toMatchObject({
      ok: true,
      identity: { name: 'dbas' },
      matchedBy: 'group',
    });
  });

  it('refuses an unclaimed subject, naming issuer and subject', async () => {
    const verified = await verifier().verify(await signed({ sub: 'mallory-9', groups: ['eng'] }));
    const claim = oidcClaimFor(identities(), verified.claims);
    expect(claim).toMatchObject({ ok: false, reason: 'unclaimed' });
    expect(claim.ok ? '' : claim.message).toContain(`subject "mallory-9" of issuer "${op.issuer}"`);
  });
});

describe('keys and discovery: cached, refreshed, never fetched per connection', () => {
  it('a rotated kid makes the verifier fetch the JWKS again', async () => {
    const v = verifier({}, { jwksCooldownMs: 0 });
    await v.verify(await signed({}));
    const rotated = await makeSigningKey('key-2');
    await op.restart({ key: rotated });
    const verified = await v.verify(await signed({}, {}, rotated));
    expect(verified.claims.subject).toBe('ada-0001');
  });

  it('an issuer unreachable at start is refused clearly, and used once it answers', async () => {
    await op.stop();
    const v = verifier({}, { retryMs: 0 });
    const status = await v.start();
    expect(status[0]?.error).toMatch(new RegExp(`cannot verify tokens of issuer "${op.issuer}": discovery failed`));
    const token = await signed({});
    expect((await refusal(v, token)).reason).toBe('issuer-unavailable');
    await op.restart();
    await expect(v.verify(token)).resolves.toMatchObject({ claims: { subject: 'ada-0001' } });
  });

  it('an issuer gone later: the cached keys keep working, until they expire; then nothing is accepted', async () => {
    const v = verifier({}, { jwksMaxAgeMs: 1500 });
    await v.verify(await signed({}));
    await op.stop();
    try {
      await expect(v.verify(await signed({ sub: 'ada-0001' }))).resolves.toMatchObject({});
      await new Promise((r) => setTimeout(r, 1600));
      const e = await refusal(v, await signed({}));
      expect(e.reason).toBe('issuer-unavailable');
      expect(e.message).toMatch(/its keys could not be fetched/);
    } finally {
      await op.restart();
    }
  });
});

describe('a discovery document that cannot be trusted', () => {
  /** An HTTPS server (trusted CA) serving the discovery document a hostile or broken issuer might. */
  async function fakeIssuer(doc: (origin: string) => Record<string, unknown>) {
    const { certFile, keyFile } = issueCert(dir, 'oidc-ca', `fake-${Math.random().toString(36).slice(2)}`);
    const server = createServer({ cert: readFileSync(certFile), key: readFileSync(keyFile) });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const origin = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
    server.on('request', (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(doc(origin)));
    });
    return { origin, close: () => new Promise<void>((r) => server.close(() => r())) };
  }

  it('refuses a document naming another issuer', async () => {
    const fake = await fakeIssuer(() => ({
      issuer: 'https://evil.example.com',
      jwks_uri: 'https://evil.example.com/jwks',
    }));
    try {
      const v = new OidcVerifier([{ issuer: fake.origin, audiences: ['x'], caFile: op.caFile }]);
      const [status] = await v.start();
      expect(status?.error).toContain('the discovery document names issuer "https://evil.example.com"');
    } finally {
      await fake.close();
    }
  });

  it('refuses keys served in clear (a jwks_uri that is not https)', async () => {
    const fake = await fakeIssuer((origin) => ({ issuer: origin, jwks_uri: 'http://127.0.0.1:1/jwks' }));
    try {
      const v = new OidcVerifier([{ issuer: fake.origin, audiences: ['x'], caFile: op.caFile }]);
      const [status] = await v.start();
      expect(status?.error).toContain('jwks_uri http://127.0.0.1:1/jwks is not https');
    } finally {
      await fake.close();
    }
  });

  it('refuses a discovery document of megabytes', async () => {
    const fake = await fakeIssuer((origin) => ({ issuer: origin, padding: 'x'.repeat(2 * 1024 * 1024) }));
    try {
      const v = new OidcVerifier([{ issuer: fake.origin, audiences: ['x'], caFile: op.caFile }]);
      const [status] = await v.start();
      expect(status?.error).toMatch(/discovery failed \(.*answered more than 1048576 bytes/);
    } finally {
      await fake.close();
    }
  });

  it('names an unreadable caFile when the verifier is made', () => {
    expect(
      () => new OidcVerifier([{ issuer: 'https://x.example.com', audiences: ['x'], caFile: join(dir, 'nope.crt') }]),
    ).toThrow(/issuer "https:\/\/x\.example\.com": caFile .*nope\.crt cannot be read/);
  });
});
