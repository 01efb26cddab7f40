/**
 * OIDC sign-in in the trail viewer, in a real browser (Debian's chromium through puppeteer-core),
 * against a real OpenID provider (oidc-provider over HTTPS; chromium trusts exactly its certificate)
 * and a real collector whose `auth.oidc.readers` gives ada one namespace. A person signs in through
 * the provider's own login and consent pages (authorization code + PKCE), sees that namespace's
 * events and not another's; the token is renewed with the refresh token before it expires, and the
 * person is asked to sign in again when it cannot be. The RBAC case
 * (SubjectAccessReview against a real API server) is test/kube/viewer-oidc-rbac.test.ts.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatSignedHeadHeader, HeadSigner, SIGNED_HEAD_HEADER } from '@byline/api';
import { ndjson, type RunningCollector, SampleStream, startCollector } from '@byline/collector';
import { SignJWT } from 'jose';
import pino from 'pino';
import type { Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { call } from '../collector/http.js';
import { freePort } from '../harness/net.js';
import { makeSigningKey, startProvider, type TestProvider, VIEWER_CLIENT_ID } from '../harness/oidc-provider.js';
import { chromiumFor, loadStatus, signInAtProvider } from './oidc-sign-in.js';

declare const sessionStorage: { getItem(key: string): string | null };

const SHOTS = join(import.meta.dirname, 'screenshots');
const PAYMENTS_WRITER = 'writer-token-payments-0123456789';
const BILLING_WRITER = 'writer-token-billing-0123456789';
/** Seconds an ID token lives: long enough to sign in and look, short enough to watch it expire. */
const TOKEN_TTL = 30;

const dir = mkdtempSync(join(tmpdir(), 'byline-viewer-oidc-'));
const collectorPort = await freePort();
const collectorUrl = `http://127.0.0.1:${collectorPort}`;
const op: TestProvider = await startProvider({
  dir,
  tokenTtl: TOKEN_TTL,
  viewerRedirectUri: `${collectorUrl}/ui/`,
  viewerRefreshTokens: true,
  accounts: { 'ada-0001': { email: 'ada@example.com', email_verified: true, groups: ['payments-team'] } },
});

const browser = await chromiumFor(op, 'the viewer OIDC browser tests');

let collector: RunningCollector;

beforeAll(async () => {
  if (!browser) return;
  mkdirSync(SHOTS, { recursive: true });
  collector = await startCollector(
    {
      listen: `127.0.0.1:${collectorPort}`,
      store: `sqlite:${join(dir, 'trail.db')}`,
      auth: {
        static: [
          { token: PAYMENTS_WRITER, identity: 'billing-agent', namespace: 'payments' },
          { token: BILLING_WRITER, identity: 'billing-agent', namespace: 'billing' },
        ],
        oidc: {
          issuers: [
            { issuer: op.issuer, audiences: [VIEWER_CLIENT_ID], caFile: op.caFile, viewerClientId: VIEWER_CLIENT_ID },
          ],
          clockToleranceSeconds: 0,
          readers: [{ user: 'oidc:ada@example.com', namespaces: ['payments'] }],
        },
      },
    },
    { logger: pino({ level: process.env.BYLINE_TEST_LOG ?? 'silent' }) },
  );
  for (const [token, ns, n] of [
    [PAYMENTS_WRITER, 'payments', 7],
    [BILLING_WRITER, 'billing', 4],
  ] as const) {
    // Chained and signed as a sidecar ships them, so the page can show the chain intact.
    const batch = new SampleStream({ identity: 'billing-agent', namespace: ns, sessionLength: 3 }).take(n);
    const { stream, seq, hash } = batch[batch.length - 1]!.event.chain;
    const res = await call(collectorPort, 'POST', '/v1/events', {
      token,
      body: ndjson(batch),
      headers: { [SIGNED_HEAD_HEADER]: formatSignedHeadHeader(new HeadSigner().sign({ stream, seq, hash })) },
    });
    expect(res.status, res.text).toBe(200);
  }
});

afterAll(async () => {
  await browser?.close();
  await collector?.close();
  await op.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function newPage(): Promise<{ page: Page; requests: string[] }> {
  const context = await browser!.createBrowserContext();
  const page = await context.newPage();
  await page.setViewport({ width: 1366, height: 900 });
  // What the viewer's own page fetches (the provider's pages load their own things).
  const requests: string[] = [];
  page.on('request', (r) => {
    const local = r.url().startsWith('data:'); // inline images of the stylesheet
    if (!local && !r.isNavigationRequest() && r.frame()?.url().startsWith(collectorUrl)) requests.push(r.url());
  });
  return { page, requests };
}

const signIn = (page: Page) => signInAtProvider(page, op, collectorUrl, 'ada-0001');

describe.skipIf(!browser)('OIDC sign-in in the trail viewer (chromium)', () => {
  test('a person signs in at the provider and sees the namespace the rules grant, not another', async () => {
    const { page, requests } = await newPage();
    await page.goto(`${collectorUrl}/ui/?namespace=payments`);
    await signIn(page);

    await page.waitForSelector('header .who');
    expect(await page.$eval('header .who', (e) => e.textContent)).toBe('Signed in as ada@example.com');
    expect(await loadStatus(page)).toBe('7 events');
    // The chain of what is on screen, checked within the namespace the person may read.
    await page.waitForSelector('.badge:not(.checking)');
    expect(await page.$eval('.badge', (e) => e.textContent)).toBe(
      '✓ Chain intact: 7 events in 1 stream, covered by 1 signed head',
    );
    // Back where the person started: the code and state are gone from the address bar.
    expect(page.url()).toBe(`${collectorUrl}/ui/?namespace=payments`);
    const kept = await page.evaluate(() => sessionStorage.getItem('byline.oidcSession'));
    expect(JSON.parse(kept!)).toMatchObject({ issuer: op.issuer, name: 'ada@example.com' });
    await page.screenshot({ path: join(SHOTS, 'oidc-signed-in.png'), fullPage: true });

    // Another namespace: refused by the collector, said on the page; the sign-in stays.
    await page.goto(`${collectorUrl}/ui/?namespace=billing`);
    expect(await loadStatus(page)).toBe(
      'Could not load events: "oidc:ada@example.com" may not read the trail of namespace "billing": ' +
        'no auth.oidc.readers rule lets it (auth.oidc.readers lets it read only payments)',
    );
    expect(await page.$eval('header .who', (e) => e.textContent)).toBe('Signed in as ada@example.com');

    // The viewer fetched from its collector and the issuer (discovery, the token endpoint), nothing else.
    const origins = new Set(requests.map((u) => new URL(u).origin));
    expect([...origins].sort()).toEqual([collectorUrl, op.issuer].sort());
    expect(requests).toContain(`${op.issuer}/.well-known/openid-configuration`);
    expect(requests).toContain(`${op.issuer}/token`);
    await page.browserContext().close();
  }, 60_000);

  test('the token is renewed before it expires; when the issuer will not renew it, the person is asked to sign in again', async () => {
    const { page } = await newPage();
    await page.goto(`${collectorUrl}/ui/?namespace=payments`);
    await signIn(page);
    expect(await loadStatus(page)).toBe('7 events');
    const session = () => page.evaluate(() => JSON.parse(sessionStorage.getItem('byline.oidcSession') ?? 'null'));
    const first = (await session()) as { idToken: string; expiresAtMs: number; refreshToken?: string };
    expect(first.refreshToken).toEqual(expect.any(String));

    // Past the first token's expiry, still signed in: the page renewed it with the refresh token.
    await new Promise((r) => setTimeout(r, first.expiresAtMs - Date.now() + 1000));
    const renewed = (await session()) as { idToken: string; expiresAtMs: number };
    expect(renewed.idToken).not.toBe(first.idToken);
    expect(renewed.expiresAtMs).toBeGreaterThan(Date.now());
    await page.reload();
    expect(await loadStatus(page)).toBe('7 events');
    expect(await page.$eval('header .who', (e) => e.textContent)).toBe('Signed in as ada@example.com');

    // The issuer forgets its grants (restarted without storage): no renewal, a clear prompt instead.
    await op.restart();
    await page.waitForSelector('.signin [role=alert]', { timeout: TOKEN_TTL * 1000 });
    expect(await page.$eval('.signin [role=alert]', (e) => e.textContent)).toBe(
      `Your sign-in as ada@example.com with ${op.issuer} has expired. Sign in again to go on.`,
    );
    await page.screenshot({ path: join(SHOTS, 'oidc-expired.png'), fullPage: true });

    // Signing in again brings the person back to the same search.
    await signIn(page);
    expect(await loadStatus(page)).toBe('7 events');
    expect(page.url()).toBe(`${collectorUrl}/ui/?namespace=payments`);
    await page.browserContext().close();
  }, 150_000);

  test('a person who cancels at the provider is told so, and signed in nowhere', async () => {
    const { page } = await newPage();
    await page.goto(`${collectorUrl}/ui/?namespace=payments`);
    await page.waitForSelector('button.issuer');
    await Promise.all([page.waitForNavigation(), page.click('button.issuer')]);
    await page.waitForSelector('a[href$="/abort"]');
    await Promise.all([page.waitForNavigation(), page.click('a[href$="/abort"]')]);
    await page.waitForSelector('.signin [role=alert]');
    expect(await page.$eval('.signin [role=alert]', (e) => e.textContent)).toBe(
      `Sign-in did not complete: ${op.issuer} answered access_denied (End-User aborted interaction)`,
    );
    expect(page.url()).toBe(`${collectorUrl}/ui/?namespace=payments`);
    expect(await page.evaluate(() => sessionStorage.getItem('byline.oidcSession'))).toBeNull();
    await page.browserContext().close();
  });

  test("a token from another issuer, pasted, is refused with the collector's reason", async () => {
    const { page } = await newPage();
    const rogue = await makeSigningKey('rogue');
    const token = await new SignJWT({ sub: 'ada-0001', email: 'ada@example.com', email_verified: true })
      .setProtectedHeader({ alg: 'RS256', kid: rogue.kid })
      .setIssuer('https://login.evil.example')
      .setAudience(VIEWER_CLIENT_ID)
      .setExpirationTime('5m')
      .sign(rogue.privateKey);
    await page.goto(`${collectorUrl}/ui/?namespace=payments`);
    await page.waitForSelector('#token');
    await page.type('#token', token);
    await page.click('form[aria-label="Sign in with a reader token"] button[type=submit]');
    await page.waitForSelector('.signin [role=alert]');
    expect(await page.$eval('.signin [role=alert]', (e) => e.textContent)).toBe(
      'The collector refused the token: tokens from issuer "https://login.evil.example" are not trusted by this collector',
    );
    await page.browserContext().close();
  });
});
