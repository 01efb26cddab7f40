/**
 * The trail viewer's assets as the compiled `byline collector` serves them (cli/dist/ui, found
 * beside the bundle): content types, caching, the CSP, and nothing outside the built files.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { UI_CSP } from '../../collector/src/http/ui-assets.js';
import { call, rawExchange } from '../collector/http.js';
import { children, Service } from '../harness/byline-process.js';
import { freePort } from '../harness/postgres.js';

let dir: string;
let collector: Service;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'byline-ui-assets-'));
  const port = await freePort();
  writeFileSync(
    join(dir, 'collector.yaml'),
    [
      `listen: 127.0.0.1:${port}`,
      `store: sqlite:${join(dir, 'trail.db')}`,
      'auth: { static: [ { token: reader-token-0123456789, reader: true } ] }',
      'log: { level: warn }',
    ].join('\n'),
  );
  collector = new Service(['collector', '--config', join(dir, 'collector.yaml')], port);
  await collector.start();
});

afterAll(async () => {
  await collector?.kill('SIGTERM');
  for (const c of children) c.kill('SIGKILL');
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the compiled collector serves the trail viewer', () => {
  test('index.html: HTML, revalidated on every load, under a CSP that allows only this origin', async () => {
    const page = await call(collector.port, 'GET', '/ui/');
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.headers['cache-control']).toBe('no-cache');
    expect(page.headers['content-security-policy']).toBe(UI_CSP);
    expect(page.headers['x-content-type-options']).toBe('nosniff');
    expect(page.headers['referrer-policy']).toBe('no-referrer');
    // Every asset the page names is local and relative: no CDN, no other origin.
    const refs = [...page.text.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    expect(refs.length).toBe(2);
    for (const ref of refs) expect(ref).toMatch(/^\.\/viewer-[A-Z0-9]+\.(js|css)$/);
    const script = await call(collector.port, 'GET', `/ui/${refs.find((r) => r.endsWith('.js'))!.slice(2)}`);
    expect(script.status).toBe(200);
    expect(script.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(script.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    // No URL but XML namespaces, and one origin openid-client compares an issuer with (Entra ID's
    // multi-tenant issuer rule): a string, never fetched — and the CSP would refuse it anyway.
    expect(script.text).not.toMatch(/https?:\/\/(?!www\.w3\.org\/|login\.microsoftonline\.com['"])/);
    const style = await call(collector.port, 'GET', `/ui/${refs.find((r) => r.endsWith('.css'))!.slice(2)}`);
    expect(style.headers['content-type']).toBe('text/css; charset=utf-8');
  });

  test('/ui redirects to /ui/ keeping the filters; HEAD answers without a body', async () => {
    const r = await call(collector.port, 'GET', '/ui?table=customers');
    expect(r.status).toBe(308);
    expect(r.headers.location).toBe('/ui/?table=customers');
    const head = await call(collector.port, 'HEAD', '/ui/');
    expect(head.status).toBe(200);
    expect(head.text).toBe('');
    expect(Number(head.headers['content-length'])).toBeGreaterThan(100);
  });

  test('anything else under /ui/ is a 404, traversal included; other methods are a 405', async () => {
    expect((await call(collector.port, 'GET', '/ui/nope.js')).status).toBe(404);
    expect((await call(collector.port, 'GET', '/ui/%2e%2e/package.json')).status).toBe(404);
    const raw = await rawExchange(
      collector.port,
      'GET /ui/../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
    );
    expect(raw).not.toContain('root:');
    expect(raw.split('\r\n')[0]).toMatch(/ 404 /);
    const post = await call(collector.port, 'POST', '/ui/', { body: 'x' });
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe('GET, HEAD');
  });

  test('GET /v1/verify needs a reader token and names its streams', async () => {
    expect((await call(collector.port, 'GET', '/v1/verify?stream=s')).status).toBe(401);
    const none = await call(collector.port, 'GET', '/v1/verify', { token: 'reader-token-0123456789' });
    expect(none.status).toBe(400);
    expect(none.json.error).toMatch(/name at least one stream/);
    const odd = await call(collector.port, 'GET', '/v1/verify?streams=s', { token: 'reader-token-0123456789' });
    expect(odd.json.error).toMatch(/unknown query parameter "streams"/);
  });
});
