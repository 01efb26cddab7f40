import type { crds } from '@byline/api';
import { describe, expect, it } from 'vitest';
import {
  type ApprovalAdmissionDeps,
  admitApproval,
  handleApprovalHttp,
  parseDuration,
  type UserInfo,
} from './admission.js';
import { approvalAction } from './lifecycle.js';

const NOW = new Date('2026-12-06T12:00:00Z');

const identity: crds.AgentIdentity = {
  apiVersion: 'byline.dev/v1alpha1',
  kind: 'AgentIdentity',
  metadata: { name: 'migrator', namespace: 'payments' },
  spec: {
    kind: 'agent',
    serviceAccounts: ['migrator'],
    routes: [
      { name: 'orders-db', access: 'admin' },
      { name: 'ledger-db', access: 'read' },
    ],
    parameters: 'redacted',
  },
};

const spec = (extra: Record<string, unknown> = {}) => ({
  identity: 'migrator',
  route: 'orders-db',
  scope: { classes: ['ddl'] },
  reason: 'add column',
  ticket: 'CHG-1',
  duration: '2h',
  ...extra,
});

/** Who may approve: a set of user names (the SubjectAccessReview's answer in the real thing). */
function deps(approvers: string[] = ['bob'], asked: UserInfo[] = []): ApprovalAdmissionDeps {
  return {
    now: () => NOW,
    identity: async (ns, name) => (ns === 'payments' && name === 'migrator' ? identity : undefined),
    mayApprove: async (user) => {
      asked.push(user);
      return approvers.includes(user.username) ? { allowed: true } : { allowed: false, reason: 'no RBAC rule' };
    },
  };
}

let n = 0;
function createReview(user: string, body: Record<string, unknown>) {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: `u${++n}`,
      kind: { group: 'byline.dev', version: 'v1alpha1', kind: 'Approval' },
      namespace: 'payments',
      operation: 'CREATE',
      userInfo: { username: user, groups: ['system:authenticated'] },
      object: { apiVersion: 'byline.dev/v1alpha1', kind: 'Approval', metadata: { name: 'a1' }, spec: body },
    },
  };
}

function statusReview(
  user: string,
  oldStatus: Record<string, unknown> | undefined,
  newStatus: Record<string, unknown> | undefined,
  specExtra: Record<string, unknown> = {},
) {
  const s = spec({ requestedBy: 'alice', ...specExtra });
  const obj = (status: unknown) => ({
    apiVersion: 'byline.dev/v1alpha1',
    kind: 'Approval',
    metadata: { name: 'a1', namespace: 'payments' },
    spec: s,
    ...(status ? { status } : {}),
  });
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: `u${++n}`,
      kind: { group: 'byline.dev', version: 'v1alpha1', kind: 'Approval' },
      namespace: 'payments',
      operation: 'UPDATE',
      subResource: 'status',
      userInfo: { username: user },
      object: obj(newStatus),
      oldObject: obj(oldStatus),
    },
  };
}

const patchOf = (r: { response: { patch?: string } }) =>
  r.response.patch ? JSON.parse(Buffer.from(r.response.patch, 'base64').toString()) : undefined;

describe('CREATE: the requester is stamped, identity and route are checked', () => {
  it('stamps spec.requestedBy from userInfo', async () => {
    const r = await admitApproval(createReview('alice', spec()), deps());
    expect(r.response.allowed).toBe(true);
    expect(patchOf(r)).toEqual([{ op: 'add', path: '/spec/requestedBy', value: 'alice' }]);
  });

  it('refuses a forged requestedBy, naming the field', async () => {
    const r = await admitApproval(createReview('alice', spec({ requestedBy: 'bob' })), deps());
    expect(r.response.allowed).toBe(false);
    expect(r.response.status?.message).toMatch(/spec\.requestedBy is stamped by Byline .*you are "alice"/);
    // Sending one's own name is harmless.
    expect((await admitApproval(createReview('alice', spec({ requestedBy: 'alice' })), deps())).response.allowed).toBe(
      true,
    );
  });

  it('refuses an unknown identity and a route the identity does not have, naming the field', async () => {
    const noId = await admitApproval(createReview('alice', spec({ identity: 'ghost' })), deps());
    expect(noId.response.status?.message).toMatch(/^byline: spec\.identity: AgentIdentity "ghost" not found/);
    const noRoute = await admitApproval(createReview('alice', spec({ route: 'hr-db' })), deps());
    expect(noRoute.response.allowed).toBe(false);
    expect(noRoute.response.status?.message).toBe(
      'byline: spec.route: AgentIdentity payments/migrator has no route "hr-db" (its routes: "orders-db", "ledger-db")',
    );
  });
});

describe('CREATE warnings, and a decision after the route is gone', () => {
  it('warns when the scope unlocks nothing the guardrails gate (route defaults and identity together)', async () => {
    const gatedRoute = {
      ...deps(),
      route: () => ({ spec: { guardrails: { requireApproval: { tables: ['public.payroll*'] } } } }) as never,
      identity: async () => ({
        ...identity,
        spec: { ...identity.spec, guardrails: { requireApproval: { classes: ['ddl'] } } },
      }),
    } as ApprovalAdmissionDeps;
    const r = await admitApproval(
      createReview('alice', spec({ scope: { classes: ['ddl', 'write'], tables: ['public.payroll*', 'hr.*'] } })),
      gatedRoute,
    );
    expect(r.response.allowed).toBe(true);
    expect(r.response.warnings).toEqual([
      'byline: class "write" is not approval-gated for migrator on route orders-db (guardrails.requireApproval): this approval unlocks nothing for it',
      'byline: table "hr.*" is not approval-gated for migrator on route orders-db (guardrails.requireApproval): this approval unlocks nothing for it',
    ]);
  });

  it('refuses to approve an Approval nobody stamped (created before the webhook was registered)', async () => {
    const review = statusReview('bob', undefined, { phase: 'Approved' });
    for (const o of [review.request.object, review.request.oldObject])
      delete (o.spec as { requestedBy?: string }).requestedBy;
    const r = await admitApproval(review, deps());
    expect(r.response.allowed).toBe(false);
    expect(r.response.status?.message).toMatch(/has no spec\.requestedBy .* cannot be approved/);
  });

  it('refuses to approve once the identity no longer has the route, naming spec.route', async () => {
    const gone = { ...deps(), identity: async () => ({ ...identity, spec: { ...identity.spec, routes: [] } }) };
    const r = await admitApproval(statusReview('bob', undefined, { phase: 'Approved' }), gone);
    expect(r.response.allowed).toBe(false);
    expect(r.response.status?.message).toMatch(
      /^byline: spec\.route: AgentIdentity payments\/migrator no longer has route "orders-db"/,
    );
    // Denying it is still possible.
    expect((await admitApproval(statusReview('bob', undefined, { phase: 'Denied' }), gone)).response.allowed).toBe(
      true,
    );
  });
});

describe('status UPDATE: decisions', () => {
  it('another person with the verb approves: approvedBy, decidedAt, expiresAt stamped', async () => {
    const asked: UserInfo[] = [];
    const r = await admitApproval(
      statusReview('bob', { phase: 'Pending', requestedBy: 'alice' }, { phase: 'Approved', decisionReason: 'ok' }),
      deps(['bob'], asked),
    );
    expect(r.response.allowed).toBe(true);
    expect(patchOf(r)).toEqual([
      {
        op: 'add',
        path: '/status',
        value: {
          phase: 'Approved',
          requestedBy: 'alice',
          approvedBy: 'bob',
          decidedAt: '2026-12-06T12:00:00Z',
          expiresAt: '2026-12-06T14:00:00Z',
          decisionReason: 'ok',
        },
      },
    ]);
    expect(asked.map((u) => u.username)).toEqual(['bob']);
  });

  it('the requester cannot approve their own request, even holding the verb', async () => {
    const asked: UserInfo[] = [];
    const r = await admitApproval(statusReview('alice', undefined, { phase: 'Approved' }), deps(['alice'], asked));
    expect(r.response.allowed).toBe(false);
    expect(r.response.status?.message).toMatch(/"alice" requested Approval payments\/a1 and cannot approve it/);
  });

  it('without the approve verb: refused, saying which permission is missing', async () => {
    const r = await admitApproval(statusReview('carol', undefined, { phase: 'Approved' }), deps(['bob']));
    expect(r.response.allowed).toBe(false);
    expect(r.response.status?.message).toMatch(
      /"carol" may not decide .* needs the "approve" verb on approvals\.byline\.dev/,
    );
    const d = await admitApproval(statusReview('carol', undefined, { phase: 'Denied' }), deps(['bob']));
    expect(d.response.allowed).toBe(false);
  });

  it('a client cannot forge or edit approvedBy, decidedAt, expiresAt or requestedBy', async () => {
    const forged = await admitApproval(
      statusReview('bob', undefined, { phase: 'Approved', approvedBy: 'the-ciso' }),
      deps(),
    );
    expect(forged.response.status?.message).toMatch(/^byline: status\.approvedBy is stamped by Byline/);
    const approved = {
      phase: 'Approved',
      requestedBy: 'alice',
      approvedBy: 'bob',
      decidedAt: '2026-12-06T11:00:00Z',
      expiresAt: '2026-12-06T13:00:00Z',
    };
    for (const [field, value] of [
      ['approvedBy', 'mallory'],
      ['expiresAt', '2027-01-01T00:00:00Z'],
      ['requestedBy', 'bob'],
      ['decidedAt', '2026-12-06T11:30:00Z'],
    ] as const) {
      const r = await admitApproval(statusReview('alice', approved, { ...approved, [field]: value }), deps());
      expect(r.response.allowed, field).toBe(false);
      expect(r.response.status?.message).toContain(`status.${field} is stamped by Byline`);
    }
    // Leaving them out of a write puts them back as they were.
    const same = await admitApproval(statusReview('alice', approved, { phase: 'Approved' }), deps());
    expect(same.response.allowed).toBe(true);
    expect(patchOf(same)[0].value).toEqual(approved);
  });

  it('phases move only forward: no un-denying, no un-expiring, no Approved → Pending', async () => {
    for (const [from, to] of [
      ['Denied', 'Approved'],
      ['Expired', 'Approved'],
      ['Approved', 'Pending'],
      ['Denied', 'Pending'],
    ]) {
      const r = await admitApproval(
        statusReview('bob', { phase: from }, to === 'Pending' ? {} : { phase: to }),
        deps(),
      );
      expect(r.response.allowed, `${from} → ${to}`).toBe(false);
      expect(r.response.status?.message).toMatch(new RegExp(`status\\.phase cannot change from ${from} to ${to}`));
    }
  });

  it('expiry only once expiresAt (or a pending notAfter) has passed', async () => {
    const live = { phase: 'Approved', requestedBy: 'alice', approvedBy: 'bob', expiresAt: '2026-12-06T12:30:00Z' };
    const early = await admitApproval(statusReview('anyone', live, { ...live, phase: 'Expired' }), deps());
    expect(early.response.status?.message).toMatch(/cannot expire before 2026-12-06T12:30:00Z/);
    const due = { ...live, expiresAt: '2026-12-06T11:59:59Z' };
    const ok = await admitApproval(statusReview('anyone', due, { ...due, phase: 'Expired' }), deps());
    expect(ok.response.allowed).toBe(true);
    expect(patchOf(ok)[0].value).toEqual({ ...due, phase: 'Expired' });
    const pending = await admitApproval(
      statusReview(
        'anyone',
        { phase: 'Pending' },
        { phase: 'Expired' },
        { duration: undefined, notAfter: '2026-12-06T11:00:00Z' },
      ),
      deps(),
    );
    expect(pending.response.allowed).toBe(true);
  });

  it('notAfter sets expiresAt; a notAfter already past cannot be approved', async () => {
    const r = await admitApproval(
      statusReview('bob', undefined, { phase: 'Approved' }, { duration: undefined, notAfter: '2026-12-06T18:00:00Z' }),
      deps(),
    );
    expect(patchOf(r)[0].value.expiresAt).toBe('2026-12-06T18:00:00Z');
    const late = await admitApproval(
      statusReview('bob', undefined, { phase: 'Approved' }, { duration: undefined, notAfter: '2026-12-06T10:00:00Z' }),
      deps(),
    );
    expect(late.response.status?.message).toMatch(/spec\.notAfter .* has passed/);
  });

  it('revoking an approved approval stamps deniedBy and ends it now', async () => {
    const live = { phase: 'Approved', requestedBy: 'alice', approvedBy: 'bob', expiresAt: '2026-12-06T13:00:00Z' };
    const r = await admitApproval(statusReview('bob', live, { ...live, phase: 'Denied' }), deps());
    expect(patchOf(r)[0].value).toMatchObject({
      phase: 'Denied',
      approvedBy: 'bob',
      deniedBy: 'bob',
      expiresAt: '2026-12-06T12:00:00Z',
    });
  });

  it('decisionReason only with a decision', async () => {
    const r = await admitApproval(
      statusReview('alice', { phase: 'Pending' }, { phase: 'Pending', decisionReason: 'x' }),
      deps(),
    );
    expect(r.response.status?.message).toMatch(/status\.decisionReason is set only with a decision/);
  });
});

describe('bad input gets a clear answer', () => {
  it.each([
    ['not an object', 42, /expected an AdmissionReview object/],
    [
      'a pod review',
      {
        ...createReview('a', spec()),
        request: { ...createReview('a', spec()).request, kind: { group: '', kind: 'Pod' } },
      },
      /Approvals only/,
    ],
    [
      'a DELETE',
      { ...createReview('a', spec()), request: { ...createReview('a', spec()).request, operation: 'DELETE' } },
      /CREATE of approvals and UPDATE of approvals\/status/,
    ],
    [
      'no user',
      { ...createReview('a', spec()), request: { ...createReview('a', spec()).request, userInfo: {} } },
      /userInfo\.username is missing/,
    ],
  ])('%s', async (_, value, message) => {
    const r = await admitApproval(value, deps());
    expect(r.response.allowed).toBe(false);
    expect(r.response.status?.code).toBe(400);
    expect(r.response.status?.message).toMatch(message);
  });

  it('HTTP: content type and JSON', async () => {
    expect((await handleApprovalHttp(Buffer.from('{}'), 'text/plain', deps())).status).toBe(415);
    expect((await handleApprovalHttp(Buffer.from('{'), 'application/json', deps())).status).toBe(400);
    const ok = await handleApprovalHttp(
      Buffer.from(JSON.stringify(createReview('alice', spec()))),
      'application/json',
      deps(),
    );
    expect(ok.outcome).toBe('allowed');
  });

  it('a failing SubjectAccessReview is an error answer, not a crash or an approval', async () => {
    const broken = { ...deps(), mayApprove: async () => Promise.reject(new Error('API server away')) };
    const r = await admitApproval(statusReview('bob', undefined, { phase: 'Approved' }), broken);
    expect(r.response.allowed).toBe(false);
    expect(r.response.status?.message).toMatch(/API server away/);
  });
});

describe('parseDuration and the lifecycle', () => {
  it('parses h/m/s durations', () => {
    expect(parseDuration('2h')).toBe(7_200_000);
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration('45s')).toBe(45_000);
    expect(parseDuration('')).toBeUndefined();
    expect(parseDuration('2d')).toBeUndefined();
  });

  it('initializes, expires when due, otherwise says when to look again', () => {
    const base = {
      apiVersion: 'byline.dev/v1alpha1' as const,
      kind: 'Approval',
      metadata: { name: 'a1', namespace: 'payments' },
      spec: { ...spec(), requestedBy: 'alice' } as never,
    };
    const t = NOW.getTime();
    expect(approvalAction(base, t)).toEqual({
      action: 'write',
      why: 'initialize',
      status: { phase: 'Pending', requestedBy: 'alice' },
    });
    const approved = { ...base, status: { phase: 'Approved' as const, expiresAt: '2026-12-06T12:00:01Z' } };
    expect(approvalAction(approved, t)).toEqual({ action: 'none', nextAt: t + 1000 });
    expect(approvalAction(approved, t + 1000)).toMatchObject({
      action: 'write',
      why: 'expire',
      status: { phase: 'Expired' },
    });
    expect(approvalAction({ ...base, status: { phase: 'Denied' } }, t)).toEqual({ action: 'none' });
  });
});
