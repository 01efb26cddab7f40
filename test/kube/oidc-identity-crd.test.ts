/**
 * AgentIdentity spec.oidc on the real API server: an identity for people (kind human) claims OIDC
 * subjects, emails or groups instead of service accounts; the schema's CEL rules refuse an entry
 * naming two claim forms or none, and an identity naming both serviceAccounts and oidc, or neither.
 */
import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { applyCrds } from './apply-crds.js';
import { controlPlane } from './control-plane.js';
import { kubeRest, type Rest, statusMessage } from './rest.js';

const namespace = `oidc-crd-${randomBytes(4).toString('hex')}`;
const COLLECTION = `/apis/byline.dev/v1alpha1/namespaces/${namespace}/agentidentities`;
const ISSUER = 'https://login.example.com';

let rest: Rest;
let n = 0;

function identity(spec: Record<string, unknown>) {
  return {
    apiVersion: 'byline.dev/v1alpha1',
    kind: 'AgentIdentity',
    metadata: { name: `person-${++n}`, namespace },
    spec: { kind: 'human', routes: [{ name: 'orders-db', access: 'read' }], ...spec },
  };
}

const create = (o: unknown) => rest('POST', `${COLLECTION}?fieldValidation=Strict`, { body: o });

beforeAll(async () => {
  rest = kubeRest(controlPlane());
  await applyCrds(rest);
  const res = await rest('POST', '/api/v1/namespaces', { body: { metadata: { name: namespace } } });
  expect(res.status, statusMessage(res)).toBe(201);
});

describe('AgentIdentity spec.oidc', () => {
  it('accepts a person claimed by subject, email and group entries, without service accounts', async () => {
    const res = await create(
      identity({
        oidc: [
          { issuer: ISSUER, subject: 'ada-0001' },
          { issuer: ISSUER, email: 'ada@example.com' },
          { issuer: ISSUER, group: 'dba' },
        ],
      }),
    );
    expect(res.status, statusMessage(res)).toBe(201);
    expect((res.body as { spec: { oidc: unknown[] } }).spec.oidc).toHaveLength(3);
  });

  it('shows the issuers in the wide table', async () => {
    const created = await create(identity({ oidc: [{ issuer: ISSUER, email: 'grace@example.com' }] }));
    expect(created.status, statusMessage(created)).toBe(201);
    const name = (created.body as { metadata: { name: string } }).metadata.name;
    const res = await rest('GET', `${COLLECTION}/${name}?includeObject=None`, {
      accept: 'application/json;as=Table;g=meta.k8s.io;v=v1',
    });
    expect(res.status, statusMessage(res)).toBe(200);
    const table = res.body as { columnDefinitions: { name: string }[]; rows: { cells: unknown[] }[] };
    const at = table.columnDefinitions.findIndex((c) => c.name === 'OIDC');
    expect(at).toBeGreaterThan(0);
    expect(String(table.rows[0]?.cells[at])).toContain(ISSUER);
  });

  const refused: [string, Record<string, unknown>, RegExp][] = [
    [
      'an entry with two claim forms',
      { oidc: [{ issuer: ISSUER, subject: 'ada-0001', email: 'ada@example.com' }] },
      /exactly one of subject, email or group/,
    ],
    ['an entry with no claim form', { oidc: [{ issuer: ISSUER }] }, /exactly one of subject, email or group/],
    [
      'both service accounts and oidc',
      { serviceAccounts: ['ci'], oidc: [{ issuer: ISSUER, subject: 'x' }] },
      /either serviceAccounts .* or oidc/,
    ],
    ['neither service accounts nor oidc', {}, /either serviceAccounts .* or oidc/],
    ['a plain-http issuer', { oidc: [{ issuer: 'http://login.example.com', subject: 'x' }] }, /issuer/],
    ['an empty oidc list', { oidc: [] }, /oidc/],
  ];
  for (const [what, spec, message] of refused) {
    it(`refuses ${what}, naming the problem`, async () => {
      const res = await create(identity(spec));
      expect(res.status, statusMessage(res)).toBe(422);
      expect(statusMessage(res)).toMatch(message);
    });
  }
});
