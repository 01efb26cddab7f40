import { Type as T } from '@sinclair/typebox';
import { describe, expect, it } from 'vitest';
import { AgentIdentityCrd } from './agent-identity.js';
import { cel } from './common.js';
import { DatabaseRouteCrd } from './database-route.js';
import { crdFor, type StructuralSchema, toStructural } from './generate.js';

describe('toStructural', () => {
  it('turns a union of literals into type + enum and keeps its default and description', () => {
    const schema = T.Union([T.Literal('a'), T.Literal('b')], { default: 'a', description: 'one of two' });
    expect(toStructural(schema)).toEqual({ description: 'one of two', type: 'string', enum: ['a', 'b'], default: 'a' });
  });

  it('leaves Optional and defaulted properties out of required, and drops additionalProperties: false and $id', () => {
    const schema = T.Object(
      { must: T.String(), may: T.Optional(T.Integer()), defaulted: T.Integer({ default: 3 }) },
      { additionalProperties: false, $id: 'Thing' },
    );
    const out = toStructural(schema);
    expect(out).toEqual({
      type: 'object',
      properties: { must: { type: 'string' }, may: { type: 'integer' }, defaulted: { type: 'integer', default: 3 } },
      required: ['must'],
    });
    // No TypeBox symbols survive (they would otherwise be invisible in toEqual).
    const symbols = (o: unknown): symbol[] =>
      o && typeof o === 'object'
        ? [...Object.getOwnPropertySymbols(o), ...Object.values(o as object).flatMap((v) => symbols(v))]
        : [];
    expect(symbols(out)).toEqual([]);
  });

  it('keeps constraints, formats and every x-kubernetes-* key', () => {
    const schema = T.Array(
      T.Object({ name: T.String({ pattern: '^[a-z]+$', minLength: 1, maxLength: 9, format: 'hostname' }) }),
      {
        minItems: 1,
        maxItems: 4,
        'x-kubernetes-list-type': 'map',
        'x-kubernetes-list-map-keys': ['name'],
        'x-kubernetes-validations': [cel('size(self) < 4', 'too many')],
      },
    );
    const out = toStructural(schema);
    expect(out).toMatchObject({
      type: 'array',
      minItems: 1,
      maxItems: 4,
      'x-kubernetes-list-type': 'map',
      'x-kubernetes-list-map-keys': ['name'],
      'x-kubernetes-validations': [{ rule: 'size(self) < 4', message: 'too many' }],
    });
    expect((out.items as StructuralSchema).properties).toEqual({
      name: { type: 'string', format: 'hostname', pattern: '^[a-z]+$', minLength: 1, maxLength: 9 },
    });
  });

  it('refuses what it cannot say structurally, naming where', () => {
    expect(() => toStructural(T.Object({ a: T.Object({ b: T.Union([T.String(), T.Integer()]) }) }), 'spec')).toThrow(
      /spec\.a\.b .*unions of literals of one type/,
    );
    expect(() => toStructural(T.Object({ a: T.Any() }), 'spec')).toThrow(/spec\.a .*needs one type/);
    expect(() => toStructural(T.Object({ a: T.String({ title: 'A' }) }), 'spec')).toThrow(/spec\.a .*"title"/);
    expect(() => toStructural(T.Array(T.String(), { uniqueItems: true }), 'spec.xs')).toThrow(/"uniqueItems"/);
  });

  it('turns a map (additionalProperties schema) into a structural map', () => {
    const schema = T.Object({}, { additionalProperties: T.String() });
    expect(toStructural(schema)).toEqual({ type: 'object', additionalProperties: { type: 'string' } });
  });
});

describe('crdFor', () => {
  it('names, scope, subresource, categories and the Ready columns', () => {
    const crd = crdFor(AgentIdentityCrd);
    expect(crd.metadata.name).toBe('agentidentities.byline.dev');
    expect(crd.spec.scope).toBe('Namespaced');
    expect(crd.spec.names).toEqual({
      kind: 'AgentIdentity',
      listKind: 'AgentIdentityList',
      plural: 'agentidentities',
      singular: 'agentidentity',
      shortNames: ['agentid'],
      categories: ['byline'],
    });
    const version = crd.spec.versions[0];
    expect(version?.subresources).toEqual({ status: {} });
    expect(version?.additionalPrinterColumns.map((c) => c.name)).toEqual([
      'Kind',
      'Service Accounts',
      'OIDC',
      'Ready',
      'Reason',
      'Age',
    ]);
    const root = version?.schema.openAPIV3Schema;
    expect(root?.required).toEqual(['spec']);
    expect(Object.keys(root?.properties as object)).toEqual(['apiVersion', 'kind', 'metadata', 'spec', 'status']);
  });

  it('puts whole-object rules on the root, where self.metadata.name is visible', () => {
    const root = crdFor(DatabaseRouteCrd).spec.versions[0]?.schema.openAPIV3Schema;
    expect(root?.['x-kubernetes-validations']).toEqual([
      expect.objectContaining({ rule: expect.stringMatching(/^self\.metadata\.name/) }),
    ]);
    expect(crdFor(DatabaseRouteCrd).spec.versions[0]?.additionalPrinterColumns.map((c) => c.name)).toEqual([
      'Host',
      'Database',
      'Port',
      'Ready',
      'Reason',
      'Age',
    ]);
  });
});
