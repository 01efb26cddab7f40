/**
 * What the collector keeps private and whom a static writer token stands for: the SQLite trail's
 * files are readable by the collector's user only, and a static token writes only the identity its
 * config names (kind, namespace, service account, pod and source included).
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AuditIdentity } from '@byline/api';
import { ndjson, type RunningCollector, SampleStream, startCollector } from '@byline/collector';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';

const logger = pino({ level: 'silent' });
const PLAIN = 'plain-writer-token-0123456789';
const PLACED = 'placed-writer-token-0123456789';
let dir: string;
let collector: RunningCollector;

const mode = (path: string) => statSync(path).mode & 0o777;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'byline-binding-'));
  collector = await startCollector(
    {
      listen: '127.0.0.1:0',
      store: `sqlite:${join(dir, 'store', 'trail.db')}`,
      auth: {
        static: [
          { token: PLAIN, identity: 'billing-agent' },
          { token: PLACED, identity: 'migrator', kind: 'service', namespace: 'payments', pod: 'migrator-0' },
        ],
      },
    },
    { logger },
  );
});

afterAll(async () => {
  await collector?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Events of a fresh stream whose identity is the sample's with `identity` laid over it. */
function eventsClaiming(identity: Partial<AuditIdentity> & { name: string }) {
  const s = new SampleStream({ identity: identity.name });
  return Array.from({ length: 2 }, () => {
    const e = s.nextEvent();
    return s.writer.append({ ...e, identity: { ...e.identity, ...identity } });
  });
}

async function post(token: string, body: string) {
  const res = await fetch(`${collector.url}/v1/events`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/x-ndjson' },
    body,
  });
  return { status: res.status, body: (await res.json()) as { error?: string; accepted?: number } };
}

describe('the SQLite trail', () => {
  test('is created 0600, with its -wal and -shm files, in a directory created 0700', async () => {
    expect((await post(PLAIN, ndjson(eventsClaiming({ name: 'billing-agent' })))).status).toBe(200);
    const db = join(dir, 'store', 'trail.db');
    for (const file of [db, `${db}-wal`, `${db}-shm`]) {
      expect(existsSync(file), file).toBe(true);
      expect(mode(file).toString(8), file).toBe('600');
    }
    expect(mode(join(dir, 'store')).toString(8)).toBe('700');
  });

  test('an existing database readable by others is narrowed to 0600 when opened', async () => {
    const old = join(dir, 'old');
    mkdirSync(old);
    const db = join(old, 'trail.db');
    writeFileSync(db, '', { mode: 0o644 });
    expect(mode(db).toString(8)).toBe('644');
    const c = await startCollector(
      { listen: '127.0.0.1:0', store: `sqlite:${db}`, auth: { static: [{ token: PLAIN, identity: 'x' }] } },
      { logger },
    );
    try {
      expect(mode(db).toString(8)).toBe('600');
    } finally {
      await c.close();
    }
  });
});

describe('a static writer token', () => {
  test.each<[string, Partial<AuditIdentity>, string]>([
    ['another kind', { kind: 'human' }, 'identity.kind is "human", but this token stands for "agent"'],
    ['a namespace', { namespace: 'payments' }, 'identity.namespace is "payments", but this token stands for null'],
    [
      'a service account',
      { serviceAccount: 'billing' },
      'identity.serviceAccount is "billing", but this token stands for null',
    ],
    ['a pod', { pod: 'billing-7d9f' }, 'identity.pod is "billing-7d9f", but this token stands for null'],
    [
      'an OIDC identity',
      { source: 'oidc' },
      'identity.source is "oidc", but only a gateway\'s service account (RBAC "write" on gatewayevents.byline.dev) may write such events',
    ],
    [
      'a Kubernetes identity',
      { source: 'kubernetes' },
      'only a Kubernetes service-account token may write such events',
    ],
  ])('may not claim %s: 403 naming the field, nothing stored', async (_what, claim, message) => {
    const { status, body } = await post(PLAIN, ndjson(eventsClaiming({ name: 'billing-agent', ...claim })));
    expect(status).toBe(403);
    expect(body.error).toContain(message);
  });

  test('writes exactly the identity its config names', async () => {
    const placed = { name: 'migrator', kind: 'service', namespace: 'payments', pod: 'migrator-0' } as const;
    expect((await post(PLACED, ndjson(eventsClaiming(placed)))).body).toEqual({ accepted: 2, duplicates: 0 });
    const unplaced = await post(PLACED, ndjson(eventsClaiming({ ...placed, pod: null })));
    expect(unplaced.status).toBe(403);
    expect(unplaced.body.error).toContain('identity.pod is null, but this token stands for "migrator-0"');
  });
});
