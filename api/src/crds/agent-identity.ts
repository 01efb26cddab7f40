/** AgentIdentity: a named agent, human or service, the service accounts it runs as, and its routes. */
import { type Static, Type as T } from '@sinclair/typebox';
import {
  type CrdSource,
  type CustomObject,
  DnsLabel,
  GROUP,
  K8sName,
  READY_COLUMNS,
  type ResourceKind,
  Status,
  VERSION,
} from './common.js';
import { AccessWithDefault, Guardrails } from './guardrails.js';

export const AgentIdentityKind: ResourceKind = {
  group: GROUP,
  version: VERSION,
  kind: 'AgentIdentity',
  plural: 'agentidentities',
  singular: 'agentidentity',
  shortNames: ['agentid'],
  listKind: 'AgentIdentityList',
  categories: ['byline'],
};

export const RouteAccess = T.Object(
  {
    name: DnsLabel('A DatabaseRoute in the same namespace.'),
    access: AccessWithDefault('readWrite'),
  },
  { additionalProperties: false },
);

export const AgentIdentitySpec = T.Object(
  {
    kind: T.Union([T.Literal('agent'), T.Literal('human'), T.Literal('service')], {
      description: 'What acts under this identity.',
    }),
    owner: T.Optional(T.String({ maxLength: 253, description: 'Who answers for it, e.g. team-payments@example.com.' })),
    serviceAccounts: T.Array(K8sName('A ServiceAccount in the same namespace.'), {
      minItems: 1,
      maxItems: 64,
      'x-kubernetes-list-type': 'set',
      description: 'The service accounts whose pods act as this identity. Each may be claimed by one identity only.',
    }),
    routes: T.Array(RouteAccess, {
      minItems: 1,
      maxItems: 32,
      'x-kubernetes-list-type': 'map',
      'x-kubernetes-list-map-keys': ['name'],
      description: 'The DatabaseRoutes its pods get, and with what access.',
    }),
    parameters: T.Union([T.Literal('none'), T.Literal('redacted'), T.Literal('full')], {
      default: 'redacted',
      description: 'How bound parameters are recorded.',
    }),
    guardrails: T.Optional(
      T.Object(Guardrails.properties, {
        additionalProperties: false,
        description:
          "This identity's guardrails, added to each route's defaults (DatabaseRoute spec.guardrails): they can tighten them, never loosen them.",
      }),
    ),
  },
  { additionalProperties: false },
);

export type AgentIdentitySpec = Static<typeof AgentIdentitySpec>;
export const AgentIdentityStatus = Status;
export type AgentIdentity = CustomObject<AgentIdentitySpec>;

export const AgentIdentityCrd: CrdSource = {
  resource: AgentIdentityKind,
  description:
    'AgentIdentity: a named agent, human or service, the service accounts its pods run as, and the DatabaseRoutes ' +
    'they get. Every statement those pods run is attributed to this name.',
  spec: AgentIdentitySpec,
  status: AgentIdentityStatus,
  printerColumns: [
    { name: 'Kind', type: 'string', jsonPath: '.spec.kind' },
    { name: 'Service Accounts', type: 'string', jsonPath: '.spec.serviceAccounts' },
    ...READY_COLUMNS,
  ],
  sourceFile: 'api/src/crds/agent-identity.ts',
};
