import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { durationMs, loadGatewayConfig } from './gateway-config.js';
import { ValidationError } from './validate.js';

const dir = mkdtempSync(join(tmpdir(), 'byline-gateway-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const EXAMPLE = `routes:
  - name: orders-db
    listen: 0.0.0.0:5432
    upstream: { host: orders.db.svc, port: 5432, database: orders, sslMode: verify-full }
    credentials: { mode: inject, username: app_user, passwordFile: /var/run/byline/orders/password }
    tls: { certFile: /etc/byline/tls/tls.crt, keyFile: /etc/byline/tls/tls.key }
    access: readWrite
oidc:
  issuers:
    - issuer: https://login.example.com
      audiences: [byline]
      nameClaim: email
    - issuer: https://token.actions.githubusercontent.com
      audiences: [https://github.com/example]
      nameClaim: sub
      algorithms: [RS256]
  maxSessionAge: 8h
audit:
  spoolDir: /var/lib/byline/spool
  sinks: [ { collector: { url: https://byline-collector.byline.svc:8443, tokenFile: /var/run/byline/token } } ]
`;

function load(text: string) {
  const path = join(dir, `g-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(path, text);
  return loadGatewayConfig(path);
}

function problems(text: string): string[] {
  try {
    load(text);
  } catch (e) {
    if (e instanceof ValidationError) return e.problems;
    throw e;
  }
  throw new Error('expected the config to be refused');
}

describe('gateway config', () => {
  it('accepts the documented example', () => {
    const c = load(EXAMPLE);
    expect(c.oidc.issuers.map((i) => i.issuer)).toEqual([
      'https://login.example.com',
      'https://token.actions.githubusercontent.com',
    ]);
    expect(durationMs(c.oidc.maxSessionAge!)).toBe(8 * 3_600_000);
  });

  it('refuses a route without TLS, saying why and how to opt out', () => {
    const p = problems(EXAMPLE.replace(/ {4}tls: .*\n/, ''));
    expect(p).toEqual([expect.stringMatching(/^routes\[0\]\.tls: required \(clients send their OIDC token/)]);
  });

  it('accepts a route without TLS only with allowPlaintext: true', () => {
    const c = load(`allowPlaintext: true\n${EXAMPLE.replace(/ {4}tls: .*\n/, '')}`);
    expect(c.routes[0]?.tls).toBeUndefined();
  });

  it('refuses alg none and HMAC algorithms for tokens', () => {
    for (const alg of ['none', 'HS256']) {
      const p = problems(EXAMPLE.replace('algorithms: [RS256]', `algorithms: [${alg}]`));
      expect(p.join('\n')).toMatch(/oidc\.issuers\[1\]\.algorithms\[0\]/);
    }
  });

  it('refuses a plain-http issuer, a passthrough route and a duplicate issuer, naming each field', () => {
    expect(
      problems(EXAMPLE.replace('issuer: https://login.example.com', 'issuer: http://login.example.com')).join(),
    ).toMatch(/oidc\.issuers\[0\]\.issuer/);
    expect(
      problems(EXAMPLE.replace(/credentials: \{ mode: inject.*\}/, 'credentials: { mode: passthrough }')).join(),
    ).toMatch(/routes\[0\]\.credentials/);
    expect(
      problems(EXAMPLE.replace('https://token.actions.githubusercontent.com', 'https://login.example.com')),
    ).toContain('oidc.issuers[1].issuer: "https://login.example.com" is already oidc.issuers[0]');
  });

  it('refuses a malformed duration and an issuer without audiences', () => {
    expect(problems(EXAMPLE.replace('maxSessionAge: 8h', 'maxSessionAge: 8 hours')).join()).toMatch(
      /oidc\.maxSessionAge/,
    );
    expect(problems(EXAMPLE.replace('audiences: [byline]', 'audiences: []')).join()).toMatch(
      /oidc\.issuers\[0\]\.audiences/,
    );
  });
});
