import { parsePolicyDocument, type SidecarConfig } from '@byline/api';
import { expect, test } from 'vitest';
import { PolicyEngine } from './engine.js';
import { staticPolicy } from './static-policy.js';

const config = (over: Partial<SidecarConfig>): SidecarConfig =>
  ({ routes: [{ name: 'a' }, { name: 'b', access: 'read' }], ...over }) as unknown as SidecarConfig;

test('each route’s access (admin when none is named) and the top-level guardrails, as a valid document', () => {
  const doc = staticPolicy(config({ guardrails: { requireWhere: ['delete'] } }), 'reporter', 'analytics');
  expect(parsePolicyDocument(doc)).toBe(doc);
  expect(doc.identity).toEqual({ name: 'reporter', namespace: 'analytics' });
  expect(doc.routes).toEqual([
    {
      name: 'a',
      access: 'admin',
      accessSource: 'sidecar config',
      guardrails: [{ source: 'sidecar config', guardrails: { requireWhere: ['delete'] } }],
      approvals: [],
    },
    {
      name: 'b',
      access: 'read',
      accessSource: 'sidecar config',
      guardrails: [{ source: 'sidecar config', guardrails: { requireWhere: ['delete'] } }],
      approvals: [],
    },
  ]);
});

test('a route that is admin without guardrails checks nothing (no parsing on the forward path); any guardrail changes that', () => {
  const open = new PolicyEngine();
  open.setPolicy(staticPolicy(config({}), 'reporter', null));
  expect(open.unrestricted('a')).toMatchObject({ allow: true, rule: 'sidecar config routes[a].access=admin' });
  expect(open.unrestricted('b')).toBeNull();
  const guarded = new PolicyEngine();
  guarded.setPolicy(staticPolicy(config({ guardrails: { deny: { classes: ['role'] } } }), 'reporter', null));
  expect(guarded.unrestricted('a')).toBeNull();
});

test('the version follows the content', () => {
  const a = staticPolicy(config({}), 'reporter', null);
  expect(staticPolicy(config({}), 'reporter', null).version).toBe(a.version);
  expect(staticPolicy(config({ guardrails: { requireWhere: ['update'] } }), 'reporter', null).version).not.toBe(
    a.version,
  );
});
