import type { UpstreamConfig } from '@byline/api';
import { expect, test } from 'vitest';
import { CancelRegistry } from './cancel-registry.js';

const serverA: UpstreamConfig = { host: 'a.db', port: 5432 };
const serverB: UpstreamConfig = { host: 'b.db', port: 5432 };
const key = (byte: number, length = 4) => Buffer.alloc(length, byte);

test("the client keeps Postgres's pid and gets a fresh secret of the same length", () => {
  const registry = new CancelRegistry();
  const issued = registry.issue({ upstream: serverA, key: { pid: 4242, key: key(1, 32) } });
  expect(issued.pid).toBe(4242);
  expect(issued.key.length).toBe(32);
  expect(issued.key.equals(key(1, 32))).toBe(false);
  // Postgres's own key is not accepted by the sidecar either.
  expect(registry.resolve({ pid: 4242, key: key(1, 32) })).toBeUndefined();
});

test('two routes whose servers hand out the same pid: each key reaches its own server', () => {
  const registry = new CancelRegistry();
  const a = registry.issue({ upstream: serverA, key: { pid: 7, key: key(0xa) } });
  const b = registry.issue({ upstream: serverB, key: { pid: 7, key: key(0xb) } });
  expect(registry.size).toBe(2);
  expect(registry.resolve(a)).toEqual({ upstream: serverA, key: { pid: 7, key: key(0xa) } });
  expect(registry.resolve(b)).toEqual({ upstream: serverB, key: { pid: 7, key: key(0xb) } });
  registry.release(a);
  expect(registry.resolve(a)).toBeUndefined();
  expect(registry.resolve(b)?.upstream).toBe(serverB);
  registry.release(b);
  expect(registry.size).toBe(0);
});

test('a wrong key, a wrong length or an unknown pid resolves to nothing', () => {
  const registry = new CancelRegistry();
  const issued = registry.issue({ upstream: serverA, key: { pid: 9, key: key(3) } });
  const wrong = Buffer.from(issued.key);
  wrong[0] = wrong[0]! ^ 1;
  expect(registry.resolve({ pid: 9, key: wrong })).toBeUndefined();
  expect(registry.resolve({ pid: 9, key: Buffer.concat([issued.key, key(0, 1)]) })).toBeUndefined();
  expect(registry.resolve({ pid: 10, key: issued.key })).toBeUndefined();
});
