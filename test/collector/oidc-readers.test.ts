/**
 * Trail readers with OIDC tokens, outside a cluster (`auth.oidc.readers` decides), against a real
 * OpenID provider (oidc-provider over HTTPS) and a real collector: a person signed in through the
 * provider's own pages reads only the namespaces the rules give their prefixed name or group; every
 * forged, stretched or borrowed token is refused with a 401 naming the problem.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { caFetch } from '@byline/api/oidc';
import { ndjson, type RunningCollector, SampleStream, startCollector } from '@byline/collector';
import { exportSPKI, importJWK, SignJWT } from 'jose';
import * as client from 'openid-client';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { login } from '../../cli/src/login.js';
import { trail } from '../../cli/src/trail.js';
import { TestBrowser } from '../harness/browser.js';
import { CLI_CLIENT_ID, makeSigningKey, startProvider, type TestProvider } from '../harness/oidc-provider.js';
import { call, metric, type Reply } from './http.js';

const PAYMENTS_WRITER = 'writer-token-payments-0123456789';
const BILLING_WRITER = 'writer-token-billing-0123456789';

const dir = mkdtempSync(join(tmpdir(), 'byline-oidc-readers-'));
// byline login caches its tokens here (this test file runs in its own process).
process.env.XDG_CONFIG_HOME = join(dir, 'config');
let op: TestProvider;
let collector: RunningCollector;
/** ada's ID token, from signing in with the device flow at the provider's pages. */
let adaToken: string;
/** The stream each namespace's writer opened. */
const streams: Record<string, string> = {};

const now = () => Math.floor(Date.now() / 1000);

/** A token signed with the provider's own key (what it would issue), claims chosen by the test. */
async function signed(claims: Record<string, unknown>, header: Record<string, unknown> = {}, key = op.key) {
  return new SignJWT({ sub: 'grace-0002', email: 'grace@example.com', email_verified: true, ...claims })
    .setProtectedHeader({ alg: 'RS256', kid: key.kid, ...header })
    .setIssuer(String(claims.iss ?? op.issuer))
    .setAudience((claims.aud as string) ?? CLI_CLIENT_ID)
    .setIssuedAt(now())
    .setExpirationTime((claims.exp as number) ?? now() + 300)
    .sign(key.privateKey);
}

/** Signs in as `login` with the device flow, the test playing the person at the provider's pages. */
async function deviceSignIn(login: string): Promise<string> {
  const config = await client.discovery(new URL(op.issuer), CLI_CLIENT_ID, undefined, client.None(), {
    [client.customFetch]: caFetch(op.ca),
  });
  const device = await client.initiateDeviceAuthorization(config, { scope: 'openid email profile groups' });
  const page = await new TestBrowser(op.ca).complete(device.verification_uri_complete!, { login, password: 'any' });
  expect(page).toContain('Sign-in Success');
  const tokens = await client.pollDeviceAuthorizationGrant(config, device);
  return tokens.id_token!;
}

const read = (token: string, query = '') => call(collector.port, 'GET', `/v1/events${query}`, { token });
const namespacesOf = (r: Reply) =>
  [
    ...new Set(r.json.events.map((e: { event: { identity: { namespace: string } } }) => e.event.identity.namespace)),
  ].sort();

beforeAll(async () => {
  op = await startProvider({
    dir,
    accounts: {
      'ada-0001': { email: 'ada@example.com', email_verified: true, groups: ['payments-team'] },
      'root-0003': { email: 'root@example.com', email_verified: true },
    },
  });
  collector = await startCollector(
    {
      listen: '127.0.0.1:0',
      store: `sqlite:${join(dir, 'trail.db')}`,
      auth: {
        static: [
          { token: PAYMENTS_WRITER, identity: 'billing-agent', namespace: 'payments' },
          { token: BILLING_WRITER, identity: 'billing-agent', namespace: 'billing' },
        ],
        oidc: {
          issuers: [{ issuer: op.issuer, audiences: [CLI_CLIENT_ID], caFile: op.caFile }],
          clockToleranceSeconds: 5,
          readers: [
            { group: 'oidc:payments-team', namespaces: ['payments'] },
            { group: 'oidc:auditors' },
            // A rule for a name without the prefix (a Kubernetes user's, say) matches no OIDC token.
            { user: 'root@example.com' },
          ],
        },
      },
    },
    { logger: pino({ level: process.env.BYLINE_TEST_LOG ?? 'silent' }) },
  );
  for (const [token, ns] of [
    [PAYMENTS_WRITER, 'payments'],
    [BILLING_WRITER, 'billing'],
  ] as const) {
    const sample = new SampleStream({ identity: 'billing-agent', namespace: ns, sessionLength: 3 });
    streams[ns] = sample.stream;
    const res = await call(collector.port, 'POST', '/v1/events', { token, body: ndjson(sample.take(5)) });
    expect(res.status, res.text).toBe(200);
  }
  adaToken = await deviceSignIn('ada-0001');
});

afterAll(async () => {
  await collector?.close();
  await op?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('a person signed in at the provider', () => {
  it('reads the namespace the rules give their group, and only that one', async () => {
    const ok = await read(adaToken, '?namespace=payments');
    expect(ok.status, ok.text).toBe(200);
    expect(ok.json.events).toHaveLength(5);
    expect(namespacesOf(ok)).toEqual(['payments']);

    const other = await read(adaToken, '?namespace=billing');
    expect(other.status).toBe(403);
    expect(other.json).toMatchObject({ reason: 'reader-denied' });
    expect(other.json.error).toContain('"oidc:ada@example.com" may not read the trail of namespace "billing"');
    expect(other.json.error).toContain('auth.oidc.readers lets it read only payments');

    const all = await read(adaToken);
    expect(all.status).toBe(403);
    expect(all.json.error).toMatch(/may not read the trail of every namespace: .*name the namespace/);
  });

  it("has the chains of its namespace's streams checked, and only of streams wholly in it", async () => {
    const verify = (query: string) => call(collector.port, 'GET', `/v1/verify?${query}`, { token: adaToken });
    const own = await verify(`stream=${streams.payments}&namespace=payments`);
    expect(own.status, own.text).toBe(200);
    expect(own.json).toMatchObject({ streams: 1, events: 5 });
    const stray = await verify(`stream=${streams.payments}&stream=${streams.billing}&namespace=payments`);
    expect(stray.status).toBe(403);
    expect(stray.json.error).toBe(`stream ${streams.billing} holds events outside namespace "payments"`);
    expect((await verify(`stream=${streams.billing}&namespace=billing`)).json).toMatchObject({
      reason: 'reader-denied',
    });
    expect((await verify(`stream=${streams.payments}`)).json.error).toMatch(
      /may not read the trail of every namespace/,
    );
  });

  it('a group the rules give every namespace reads them all', async () => {
    const res = await read(await signed({ groups: ['auditors'] }));
    expect(res.status, res.text).toBe(200);
    expect(namespacesOf(res)).toEqual(['billing', 'payments']);
  });

  it('a person no rule names reads nothing (403 naming them, with the prefix)', async () => {
    const res = await read(await signed({ email: 'eve@example.com', groups: ['payments'] }));
    expect(res.status).toBe(403);
    expect(res.json).toMatchObject({ reason: 'reader-denied' });
    expect(res.json.error).toContain('"oidc:eve@example.com" may not read the trail');
  });

  it('a rule naming "root@example.com" without the prefix does not let the OIDC root@example.com read', async () => {
    const root = await deviceSignIn('root-0003');
    const res = await read(root, '?namespace=payments');
    expect(res.status).toBe(403);
    expect(res.json.error).toContain('"oidc:root@example.com"');
  });

  it('an OIDC token only reads: no writer knows it', async () => {
    const res = await call(collector.port, 'POST', '/v1/events', {
      token: adaToken,
      body: ndjson(new SampleStream({ identity: 'billing-agent', namespace: 'payments' }).take(1)),
    });
    expect(res.status).toBe(401);
    expect(res.json.error).toBe('unknown bearer token');
  });
});

describe('refused with a 401 that names the problem', () => {
  const refused = async (token: string, message: RegExp) => {
    const res = await read(token, '?namespace=payments');
    expect(res.status, res.text).toBe(401);
    expect(res.json.error).toMatch(message);
    expect(res.headers['www-authenticate']).toBe('Bearer realm="byline"');
    expect(res.text).not.toContain(token);
  };

  it('each refusal is counted by its reason', async () => {
    const series = 'byline_collector_auth_refusals_total{reason="unauthenticated"}';
    const count = async () => metric((await call(collector.port, 'GET', '/metrics')).text, series) ?? Number.NaN;
    const before = await count();
    await refused(await signed({ groups: ['auditors'], exp: now() - 60 }), /has expired/);
    expect(await count()).toBe(before + 1);
  });

  it('a token from another issuer', async () => {
    const other = await makeSigningKey('evil-1');
    await refused(
      await signed({ iss: 'https://evil.example.com', groups: ['auditors'] }, {}, other),
      /^tokens from issuer "https:\/\/evil\.example\.com" are not trusted by this collector$/,
    );
  });

  it('for another audience (another client of the same provider)', async () => {
    await refused(
      await signed({ aud: 'someone-else', groups: ['auditors'] }),
      /is not meant for this collector \(aud\)/,
    );
  });

  it('alg none', async () => {
    const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const token = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({
      iss: op.issuer,
      sub: 'grace-0002',
      aud: CLI_CLIENT_ID,
      email: 'grace@example.com',
      email_verified: true,
      groups: ['auditors'],
      exp: now() + 300,
    })}.`;
    await refused(token, /the bearer token is not a signed JWT/);
  });

  it('HS256 "signed" with the issuer\'s public key', async () => {
    const pem = await exportSPKI((await importJWK(op.key.publicJwk, 'RS256')) as never);
    const token = await new SignJWT({
      sub: 'grace-0002',
      email: 'grace@example.com',
      email_verified: true,
      groups: ['auditors'],
    })
      .setProtectedHeader({ alg: 'HS256', kid: op.key.kid })
      .setIssuer(op.issuer)
      .setAudience(CLI_CLIENT_ID)
      .setExpirationTime(now() + 300)
      .sign(new TextEncoder().encode(pem));
    await refused(token, /uses a signature algorithm this issuer does not allow/);
  });

  it('signed by a key the issuer does not publish', async () => {
    await refused(
      await signed({ groups: ['auditors'] }, {}, await makeSigningKey('rogue')),
      /signed by a key the issuer does not publish/,
    );
  });

  it('expired', async () => {
    await refused(await signed({ groups: ['auditors'], exp: now() - 60 }), /has expired/);
  });

  it('a Kubernetes user name without the prefix: a name in the reserved system: space', async () => {
    await refused(
      await signed({ email: 'system:serviceaccount:kube-system:admin', groups: ['auditors'] }),
      /names "system:serviceaccount:kube-system:admin", in Kubernetes' reserved "system:" space/,
    );
  });

  it('a Kubernetes group without the prefix: system:masters', async () => {
    await refused(await signed({ groups: ['auditors', 'system:masters'] }), /lists group "system:masters"/);
  });

  it('no verified email to name the reader by', async () => {
    await refused(
      await signed({ email_verified: false, groups: ['auditors'] }),
      /has no "email" claim \(or its email is not verified\)/,
    );
  });
});

describe('byline trail --login', () => {
  /** Output of a command run in-process, and a way to wait for a line of it. */
  function capture() {
    const out = new PassThrough();
    let text = '';
    out.on('data', (d: Buffer) => {
      text += d.toString();
    });
    return { out, text: () => text };
  }

  it("reads with the token of byline login (device flow), as the person's prefixed name", async () => {
    const signIn = capture();
    const done = login({ issuer: op.issuer, 'client-id': CLI_CLIENT_ID, 'ca-file': op.caFile }, signIn.out);
    let page: string | undefined;
    for (let i = 0; i < 100 && !page; i++) {
      page = /\(or open (\S+)\)/.exec(signIn.text())?.[1];
      if (!page) await new Promise((r) => setTimeout(r, 50));
    }
    expect(await new TestBrowser(op.ca).complete(page!, { login: 'ada-0001', password: 'any' })).toContain(
      'Sign-in Success',
    );
    expect(await done).toBe(0);

    const printed = capture();
    expect(
      await trail({ collector: collector.url, login: true, namespace: 'payments', format: 'json' }, printed.out),
    ).toBe(0);
    const lines = printed
      .text()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { identity: { namespace: string } });
    expect(lines).toHaveLength(5);
    expect(lines.every((e) => e.identity.namespace === 'payments')).toBe(true);
    await expect(trail({ collector: collector.url, login: true, format: 'json' }, printed.out)).rejects.toThrow(
      /"oidc:ada@example.com" may not read the trail of every namespace/,
    );
  });

  it('takes exactly one of --token-file and --login', async () => {
    await expect(
      trail({ collector: collector.url, login: true, 'token-file': join(dir, 'x'), format: 'json' }),
    ).rejects.toThrow(/exactly one of --token-file FILE and --login/);
    await expect(trail({ collector: collector.url, login: false, format: 'json' })).rejects.toThrow(
      /exactly one of --token-file FILE and --login/,
    );
  });
});
