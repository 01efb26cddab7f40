/**
 * The authenticator's decisions and caching, with an in-memory KubeReviewer in place of the API
 * calls (the real API server is exercised in test/kube/identity.test.ts).
 */
import pino from 'pino';
import { beforeEach, describe, expect, test } from 'vitest';
import type { RefusalReason } from './authenticator.js';
import type { ListedIdentity } from './identity-claims.js';
import type { KubeReviewer, ReviewedUser, TokenReviewResult } from './kube-reviewer.js';
import { KubernetesAuthenticator } from './kubernetes-authenticator.js';

const NOW = Date.UTC(2026, 0, 1);
const jwt = (exp: number) =>
  ['{}', JSON.stringify({ exp }), 'sig'].map((p) => Buffer.from(p).toString('base64url')).join('.');
const TOKEN = jwt(NOW / 1000 + 3600);

class Reviewer implements KubeReviewer {
  users = new Map<string, { user: ReviewedUser; audiences: string[] }>();
  identities: ListedIdentity[] = [];
  readers = new Set<string>();
  /** Users RBAC lets `write` gatewayevents.byline.dev. */
  gateways = new Set<string>();
  calls = { review: 0, list: 0, access: 0 };
  failing = false;

  async reviewToken(token: string, audiences?: string[]): Promise<TokenReviewResult> {
    this.calls.review++;
    if (this.failing) throw new Error('TokenReview: connect ECONNREFUSED');
    const known = this.users.get(token);
    const wanted = audiences ?? ['api'];
    if (!known || !wanted.some((a) => known.audiences.includes(a))) return { authenticated: false, error: 'invalid' };
    return { authenticated: true, user: known.user, audiences: audiences ?? [] };
  }
  /** `readers` holds "alice" (cluster-wide) or "alice@payments" (that namespace only). */
  async allowed(user: ReviewedUser, verb: string, group: string, resource: string, namespace?: string) {
    this.calls.access++;
    if (resource === 'gatewayevents') {
      const ok = verb === 'write' && group === 'byline.dev' && namespace === undefined;
      return { allowed: ok && this.gateways.has(user.username), reason: '' };
    }
    const key = namespace === undefined ? user.username : `${user.username}@${namespace}`;
    return { allowed: this.readers.has(key), reason: '' };
  }
  async listAgentIdentities(namespace: string) {
    this.calls.list++;
    return this.identities.filter((i) => i.metadata?.namespace === namespace);
  }
}

let now: number;
let reviewer: Reviewer;
let refusals: RefusalReason[];
let logs: string;
let auth: KubernetesAuthenticator;

beforeEach(() => {
  now = NOW;
  reviewer = new Reviewer();
  refusals = [];
  logs = '';
  const logger = pino(
    { level: 'debug' },
    {
      write: (line: string) => {
        logs += line;
      },
    },
  );
  auth = new KubernetesAuthenticator(reviewer, {
    audience: 'byline.dev',
    cacheSeconds: 30,
    logger,
    onRefusal: (r) => refusals.push(r),
    now: () => now,
  });
  reviewer.users.set(TOKEN, {
    audiences: ['byline.dev'],
    user: {
      username: 'system:serviceaccount:payments:billing',
      groups: [],
      extra: { 'authentication.kubernetes.io/pod-name': ['billing-0'] },
    },
  });
  reviewer.identities = [
    {
      metadata: { name: 'billing-reconciler', namespace: 'payments' },
      spec: { kind: 'agent', serviceAccounts: ['billing'] },
    },
  ];
});

describe('KubernetesAuthenticator', () => {
  test('an unclaimed service account RBAC lets write gatewayevents is a gateway writer; without it, unclaimed', async () => {
    reviewer.identities = [];
    const refused = await auth.authenticate(TOKEN, 'write');
    expect(refused).toMatchObject({
      status: 403,
      reason: 'unclaimed',
      message: expect.stringContaining('needs RBAC "write" on gatewayevents.byline.dev'),
    });
    reviewer.gateways.add('system:serviceaccount:payments:billing');
    const gateway = await auth.authenticate(TOKEN, 'write');
    expect(gateway).toMatchObject({
      kind: 'writer',
      identity: {
        name: 'system:serviceaccount:payments:billing',
        kind: 'service',
        namespace: 'payments',
        serviceAccount: 'billing',
        pod: 'billing-0',
        source: 'kubernetes',
        gateway: true,
      },
    });
    expect(gateway && 'identitiesIn' in gateway && typeof gateway.identitiesIn).toBe('function');
    const asked = reviewer.calls.access;
    await auth.authenticate(TOKEN, 'write'); // reused within cacheSeconds
    expect(reviewer.calls.access).toBe(asked);
  });

  test('a claimed service account stays an agent writer even if RBAC would let it write gatewayevents', async () => {
    reviewer.gateways.add('system:serviceaccount:payments:billing');
    const writer = await auth.authenticate(TOKEN, 'write');
    expect(writer).toMatchObject({ kind: 'writer', identity: { name: 'billing-reconciler' } });
    expect(writer && 'identity' in writer && writer.identity.gateway).toBeUndefined();
  });

  test('a claimed service account writes as its AgentIdentity; the review is reused for cacheSeconds', async () => {
    const writer = {
      kind: 'writer',
      identity: {
        name: 'billing-reconciler',
        kind: 'agent',
        namespace: 'payments',
        serviceAccount: 'billing',
        pod: 'billing-0',
        source: 'kubernetes',
      },
    };
    expect(await auth.authenticate(TOKEN, 'write')).toEqual(writer);
    now += 29_000;
    expect(await auth.authenticate(TOKEN, 'write')).toEqual(writer);
    expect(reviewer.calls).toMatchObject({ review: 1, list: 1 });
    now += 1_000;
    expect(await auth.authenticate(TOKEN, 'write')).toEqual(writer);
    expect(reviewer.calls).toMatchObject({ review: 2, list: 2 });
  });

  test('a review is not reused past the token’s expiry', async () => {
    const short = jwt(NOW / 1000 + 15);
    reviewer.users.set(short, reviewer.users.get(TOKEN)!);
    await auth.authenticate(short, 'write');
    now += 5_000; // 10 s before expiry: asked again
    await auth.authenticate(short, 'write');
    expect(reviewer.calls.review).toBe(2);
  });

  test('unclaimed: 403 with the reason, counted, not cached (a new AgentIdentity takes effect)', async () => {
    reviewer.identities = [];
    expect(await auth.authenticate(TOKEN, 'write')).toMatchObject({
      kind: 'refused',
      status: 403,
      reason: 'unclaimed',
      message: expect.stringContaining('claimed by no AgentIdentity'),
    });
    expect(refusals).toEqual(['unclaimed']);
    reviewer.identities = [
      { metadata: { name: 'late', namespace: 'payments' }, spec: { kind: 'service', serviceAccounts: ['billing'] } },
    ];
    now += 30_000; // the namespace's (empty) list has expired
    expect(await auth.authenticate(TOKEN, 'write')).toMatchObject({ kind: 'writer', identity: { name: 'late' } });
  });

  test('a token for another audience: 401, and never reviewed without the audience for writing', async () => {
    reviewer.users.set('default-token', { ...reviewer.users.get(TOKEN)!, audiences: ['api'] });
    expect(await auth.authenticate('default-token', 'write')).toMatchObject({
      status: 401,
      reason: 'unauthenticated',
      message: 'the token is not valid for audience "byline.dev": invalid',
    });
    expect(reviewer.calls.review).toBe(1);
  });

  test('an API server that does not echo the audience is not trusted', async () => {
    reviewer.reviewToken = async () => ({
      authenticated: true,
      audiences: [],
      user: { username: 'system:serviceaccount:payments:billing', groups: [], extra: {} },
    });
    expect(await auth.authenticate(TOKEN, 'write')).toMatchObject({ status: 401, reason: 'unauthenticated' });
  });

  test('a person cannot write', async () => {
    reviewer.users.set('alice', { audiences: ['byline.dev'], user: { username: 'alice', groups: [], extra: {} } });
    expect(await auth.authenticate('alice', 'write')).toMatchObject({ status: 403, reason: 'not-a-service-account' });
  });

  test('readers: a default-audience token is reviewed as such; RBAC decides, and only a grant is cached', async () => {
    reviewer.users.set('alice', { audiences: ['api'], user: { username: 'alice', groups: ['sre'], extra: {} } });
    // Not allowed cluster-wide: a reader limited to the namespaces RBAC allows, asked per namespace.
    const limited = await auth.authenticate('alice', 'read');
    expect(limited).toMatchObject({ kind: 'reader', subject: 'alice', namespaces: expect.any(Function) });
    const access = (limited as { namespaces: (ns: string) => Promise<{ allowed: boolean }> }).namespaces;
    expect(await access('payments')).toMatchObject({ allowed: false });
    reviewer.readers.add('alice@payments');
    expect(await access('payments')).toMatchObject({ allowed: true });
    expect(await access('billing')).toMatchObject({ allowed: false });
    reviewer.readers.add('alice');
    expect(await auth.authenticate('alice', 'read')).toEqual({ kind: 'reader', subject: 'alice' });
    expect(await auth.authenticate('alice', 'read')).toEqual({ kind: 'reader', subject: 'alice' });
    expect(reviewer.calls.access).toBe(5);
    expect(await auth.authenticate('nobody', 'read')).toMatchObject({ status: 401, reason: 'unauthenticated' });
  });

  test('an API server that cannot be asked: 503, nothing cached', async () => {
    reviewer.failing = true;
    expect(await auth.authenticate(TOKEN, 'write')).toMatchObject({
      status: 503,
      reason: 'review-failed',
      message: expect.stringContaining('ECONNREFUSED'),
    });
    reviewer.failing = false;
    expect(await auth.authenticate(TOKEN, 'write')).toMatchObject({ kind: 'writer' });
  });

  test('no token ever reaches the log', async () => {
    reviewer.identities = [];
    await auth.authenticate(TOKEN, 'write');
    await auth.authenticate('secret-token-123', 'read');
    expect(logs).toContain('token refused');
    expect(logs).not.toContain(TOKEN.split('.')[1]);
    expect(logs).not.toContain('secret-token-123');
  });
});
