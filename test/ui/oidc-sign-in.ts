/**
 * What the OIDC viewer tests share: chromium started to trust exactly the test provider's
 * certificate (or a loud reason it cannot start), and a person going through the provider's own
 * login and consent pages after clicking "Sign in with …".
 */
import { createHash, X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { expect } from 'vitest';
import type { TestProvider } from '../harness/oidc-provider.js';

declare const document: { querySelector(selector: string): { textContent: string | null } | null };

const CHROMIUM = [process.env.BYLINE_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser'].find(
  (p): p is string => !!p && existsSync(p),
);

/** The SHA-256 of a certificate's public key, as chromium's --ignore-certificate-errors-spki-list takes it. */
function spkiPin(certFile: string): string {
  const spki = new X509Certificate(readFileSync(certFile)).publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(spki).digest('base64');
}

/** chromium trusting the provider's certificate (pinned by its key), or undefined after a loud warning. */
export async function chromiumFor(op: TestProvider, what: string): Promise<Browser | undefined> {
  let reason = 'no chromium found (apt-get install chromium, or set BYLINE_CHROMIUM)';
  if (CHROMIUM) {
    try {
      return await puppeteer.launch({
        executablePath: CHROMIUM,
        headless: true,
        args: [
          '--no-sandbox',
          '--disable-gpu',
          '--disable-dev-shm-usage',
          '--no-first-run',
          `--ignore-certificate-errors-spki-list=${spkiPin(op.certFile)}`,
        ],
      });
    } catch (e) {
      reason = `chromium at ${CHROMIUM} cannot start: ${(e as Error).message.split('\n')[0]}`;
    }
  }
  console.warn(`\n${'!'.repeat(100)}\n!!! SKIPPING ${what}: ${reason}\n${'!'.repeat(100)}\n`);
  return undefined;
}

/** Clicks "Sign in with …" and goes through the provider's pages as `login` (login, then consent) until back. */
export async function signInAtProvider(page: Page, op: TestProvider, back: string, login: string): Promise<void> {
  await page.waitForSelector('button.issuer');
  expect(await page.$eval('button.issuer', (e) => e.textContent)).toBe(`Sign in with ${op.issuer}`);
  await Promise.all([page.waitForNavigation(), page.click('button.issuer')]);
  for (let step = 0; step < 5 && page.url().startsWith(op.issuer); step++) {
    if (await page.$('input[name=login]')) {
      await page.type('input[name=login]', login);
      await page.type('input[name=password]', 'any password');
    }
    await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
  }
  expect(page.url().startsWith(back)).toBe(true);
}

/** The search's status line once loading ended ("7 events", or "Could not load events: …"). */
export async function loadStatus(page: Page): Promise<string> {
  await page.waitForFunction(() =>
    /events?$|Could not/.test(document.querySelector('.load-status')?.textContent ?? ''),
  );
  return page.$eval('.load-status', (e) => e.textContent ?? '');
}
