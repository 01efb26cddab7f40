import type { GatewayConfig, PolicyDocument, PolicyRoute } from '@byline/api';
import { beforeAll, describe, expect, test } from 'vitest';
import { StatementAnalyzer } from '../policy/analyzer.js';
import { PolicyEngine } from '../policy/engine.js';
import { configPolicy, GATEWAY_SOURCE, withGatewayLimits } from './gateway-limits.js';

const IDENTITY = 'AgentIdentity people/ada';
const T0 = Date.parse('2026-12-06T12:00:00Z');

const route = (over: Partial<PolicyRoute> = {}): PolicyRoute => ({
  name: 'orders-db',
  access: 'readWrite',
  accessSource: IDENTITY,
  guardrails: [{ source: 'DatabaseRoute people/orders-db', guardrails: { requireWhere: ['delete'] } }],
  approvals: [],
  ...over,
});
const doc = (routes: PolicyRoute[]): PolicyDocument => ({
  version: 'abc',
  identity: { name: 'ada', namespace: 'people' },
  routes,
});
const gatewayRoute = (access?: 'read' | 'readWrite' | 'admin'): GatewayConfig['routes'][number] => ({
  name: 'orders-db',
  listen: '127.0.0.1:0',
  upstream: { host: '127.0.0.1', port: 5432 },
  credentials: { mode: 'inject', username: 'app', passwordFile: '/pw' },
  ...(access ? { access } : {}),
});

let analyzer: StatementAnalyzer;
beforeAll(async () => {
  analyzer = await StatementAnalyzer.create();
});

describe('the gateway config only tightens an identity policy', () => {
  test('without access or guardrails in the gateway config the identity policy is served unchanged', () => {
    const d = doc([route()]);
    expect(withGatewayLimits(d, [gatewayRoute()], undefined)).toEqual(d);
  });

  test('routes[].access is a ceiling: it lowers a higher access, naming the gateway config, and never raises one', () => {
    const lowered = withGatewayLimits(doc([route({ access: 'admin' })]), [gatewayRoute('read')], undefined);
    expect(lowered.routes[0]).toMatchObject({ access: 'read', accessSource: GATEWAY_SOURCE });
    const kept = withGatewayLimits(doc([route({ access: 'read' })]), [gatewayRoute('admin')], undefined);
    expect(kept.routes[0]).toMatchObject({ access: 'read', accessSource: IDENTITY });
  });

  test('guardrails are one more layer after the identity and route layers', () => {
    const out = withGatewayLimits(doc([route()]), [gatewayRoute()], { deny: { tables: ['secrets.*'] } });
    expect(out.routes[0]!.guardrails.map((l) => l.source)).toEqual(['DatabaseRoute people/orders-db', GATEWAY_SOURCE]);
    const engine = new PolicyEngine();
    engine.setPolicy(out, 'ada@example.com');
    const [d] = engine.decideAll('orders-db', analyzer.analyze('SELECT * FROM secrets.keys'), T0);
    expect(d).toMatchObject({
      allow: false,
      rule: `${GATEWAY_SOURCE} guardrails.deny.tables`,
      message: `byline: SELECT on secrets.keys is denied for ada@example.com by ${GATEWAY_SOURCE} guardrails.deny.tables`,
    });
  });
});

describe('denials name the person, approval hints the identity', () => {
  test('a denial names the actor given with the policy; the HINT asks for an approval for the AgentIdentity', () => {
    const engine = new PolicyEngine();
    engine.setPolicy(
      doc([route({ guardrails: [{ source: IDENTITY, guardrails: { requireApproval: { classes: ['write'] } } }] })]),
      'ada@example.com',
    );
    const [d] = engine.decideAll('orders-db', analyzer.analyze('UPDATE t SET x = 1 WHERE id = 1'), T0);
    expect(d!.message).toBe(
      `byline: UPDATE needs an approval for ada@example.com by ${IDENTITY} guardrails.requireApproval (write); none is active`,
    );
    expect(d!.hint).toContain('byline approval request --namespace people --identity ada --route orders-db');
    const [missing] = engine.decideAll('other-db', analyzer.analyze('SELECT 1'), T0);
    expect(missing!.message).toBe(`byline: route "other-db" is not among the routes of ada@example.com (${IDENTITY})`);
  });
});

describe('a gateway without a collector', () => {
  test('serves its config as the signed-in identity policy; a route without access is read', () => {
    const d = configPolicy(
      { routes: [gatewayRoute()], guardrails: { requireWhere: ['update'] } },
      {
        name: 'ada',
        namespace: 'people',
      },
    );
    expect(d.identity).toEqual({ name: 'ada', namespace: 'people' });
    expect(d.routes).toEqual([
      {
        name: 'orders-db',
        access: 'read',
        accessSource: GATEWAY_SOURCE,
        guardrails: [{ source: GATEWAY_SOURCE, guardrails: { requireWhere: ['update'] } }],
        approvals: [],
      },
    ]);
  });
});
