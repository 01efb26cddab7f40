/** AgentIdentity: a named agent, human or service, the service accounts it runs as, and its routes. */
import { type Static, Type as T } from '@sinclair/typebox';
import {
  type CrdSource,
  type CustomObject,
  cel,
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

/**
 * One OIDC claim an identity stands for: tokens from `issuer` whose subject, email or group matches.
 * Exactly one of the three per entry (CEL), so an entry never means two things at once.
 */
export const OidcClaim = T.Object(
  {
    issuer: T.String({
      minLength: 1,
      maxLength: 512,
      pattern: '^https://[^\\s]+$',
      description: "The token issuer's URL, exactly as its tokens' iss claim says (https).",
    }),
    subject: T.Optional(T.String({ minLength: 1, maxLength: 255, description: 'The sub claim.' })),
    email: T.Optional(
      T.String({
        minLength: 3,
        maxLength: 254,
        pattern: '^[^@\\s]+@[^@\\s]+$',
        description: 'A verified email claim.',
      }),
    ),
    group: T.Optional(
      T.String({ minLength: 1, maxLength: 255, description: 'A member of this group (groups claim).' }),
    ),
  },
  {
    additionalProperties: false,
    'x-kubernetes-validations': [
      cel(
        '[has(self.subject), has(self.email), has(self.group)].filter(x, x).size() == 1',
        'each oidc entry names exactly one of subject, email or group',
      ),
    ],
  },
);
export type OidcClaim = Static<typeof OidcClaim>;

export const AgentIdentitySpec = T.Object(
  {
    kind: T.Union([T.Literal('agent'), T.Literal('human'), T.Literal('service')], {
      description: 'What acts under this identity.',
    }),
    owner: T.Optional(T.String({ maxLength: 253, description: 'Who answers for it, e.g. team-payments@example.com.' })),
    serviceAccounts: T.Optional(
      T.Array(K8sName('A ServiceAccount in the same namespace.'), {
        minItems: 1,
        maxItems: 64,
        'x-kubernetes-list-type': 'set',
        description: 'The service accounts whose pods act as this identity. Each may be claimed by one identity only.',
      }),
    ),
    oidc: T.Optional(
      T.Array(OidcClaim, {
        minItems: 1,
        maxItems: 64,
        description:
          'Instead of service accounts (usually kind human or service): the OIDC subjects, emails or groups that connect ' +
          'through byline gateway as this identity.',
      }),
    ),
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
  {
    additionalProperties: false,
    'x-kubernetes-validations': [
      cel(
        'has(self.serviceAccounts) != has(self.oidc)',
        'an identity names either serviceAccounts (pods) or oidc (people and off-cluster workloads), exactly one of them',
      ),
    ],
  },
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
    { name: 'OIDC', type: 'string', jsonPath: '.spec.oidc[*].issuer', priority: 1 },
    ...READY_COLUMNS,
  ],
  sourceFile: 'api/src/crds/agent-identity.ts',
};
