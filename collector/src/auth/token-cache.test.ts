/** The cache parts of the Kubernetes authenticator: entry expiry and how long a review may be reused. */
import { describe, expect, test } from 'vitest';
import { EXPIRY_MARGIN_MS, jwtExpiry, reuseUntil } from './token-expiry.js';
import { TtlCache } from './ttl-cache.js';

const jwt = (claims: object) =>
  ['{"alg":"RS256"}', JSON.stringify(claims), 'signature'].map((p) => Buffer.from(p).toString('base64url')).join('.');

describe('TtlCache', () => {
  test('an entry is there until its time, and gone from then on', () => {
    let now = 1000;
    const cache = new TtlCache<string, number>(10, () => now);
    cache.set('a', 1, 2000);
    expect(cache.get('a')).toBe(1);
    now = 1999;
    expect(cache.get('a')).toBe(1);
    now = 2000;
    expect(cache.get('a')).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  test('a time already past keeps nothing, and replaces what was there', () => {
    const cache = new TtlCache<string, number>(10, () => 1000);
    cache.set('a', 1, 5000);
    cache.set('a', 2, 1000);
    expect(cache.get('a')).toBeUndefined();
  });

  test('full: expired entries go first, then the oldest', () => {
    let now = 0;
    const cache = new TtlCache<string, number>(2, () => now);
    cache.set('short', 1, 10);
    cache.set('long', 2, 100);
    now = 20;
    cache.set('new', 3, 100);
    expect([cache.get('long'), cache.get('new')]).toEqual([2, 3]);
    cache.set('newest', 4, 100);
    expect([cache.get('long'), cache.get('new'), cache.get('newest')]).toEqual([undefined, 3, 4]);
  });
});

describe('reuseUntil', () => {
  const now = Date.UTC(2026, 0, 1);

  test('cacheSeconds when the token lives longer', () => {
    expect(reuseUntil(jwt({ exp: now / 1000 + 3600 }), now, 30)).toBe(now + 30_000);
  });

  test('shortly before the token expires when that is sooner', () => {
    const exp = now / 1000 + 20;
    expect(reuseUntil(jwt({ exp }), now, 30)).toBe(exp * 1000 - EXPIRY_MARGIN_MS);
  });

  test('not at all in a token’s last seconds, nor with cacheSeconds 0', () => {
    expect(reuseUntil(jwt({ exp: now / 1000 + 5 }), now, 30)).toBeLessThanOrEqual(now);
    expect(reuseUntil(jwt({ exp: now / 1000 + 3600 }), now, 0)).toBe(now);
  });

  test('a token that is no JWT, or has no exp, is reused for cacheSeconds', () => {
    expect(reuseUntil('opaque-token', now, 30)).toBe(now + 30_000);
    expect(reuseUntil(jwt({ sub: 'x' }), now, 30)).toBe(now + 30_000);
    expect(jwtExpiry('a.b.c')).toBeNull();
    expect(jwtExpiry(jwt({ exp: 'soon' }))).toBeNull();
  });
});
