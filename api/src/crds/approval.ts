/**
 * Approval: a person's request that an identity may, for a while, run what its guardrails'
 * `requireApproval` gates on one route, and another person's decision.
 *
 * Who asked (`spec.requestedBy`) and who decided (`status.approvedBy` / `status.deniedBy`) are stamped
 * by the operator's admission webhook from the API server's authenticated user; a value a client sends
 * is refused. The spec is immutable. A decision is a write of `status.phase` (Approved or Denied)
 * through the status subresource, which the webhook allows only to holders of the `approve` verb on
 * approvals.byline.dev who are not the requester; it then stamps the decider, `decidedAt` and
 * `expiresAt`. The operator moves an approval to Expired at `expiresAt`.
 */
import { type Static, Type as T } from '@sinclair/typebox';
import {
  type CrdSource,
  type CustomObject,
  cel,
  DnsLabel,
  GROUP,
  K8sName,
  type ResourceKind,
  VERSION,
} from './common.js';
import { ClassesAndTables } from './guardrails.js';

export const ApprovalKind: ResourceKind = {
  group: GROUP,
  version: VERSION,
  kind: 'Approval',
  plural: 'approvals',
  singular: 'approval',
  shortNames: ['bapproval'],
  listKind: 'ApprovalList',
  categories: ['byline'],
};

/** The custom verb that lets a user decide approvals (checked with a SubjectAccessReview). */
export const APPROVE_VERB = 'approve';

/** A Go-style duration of hours, minutes and seconds, e.g. 2h, 90m, 1h30m. */
export const DURATION_REGEX = '^([0-9]{1,4}h)?([0-9]{1,5}m)?([0-9]{1,6}s)?$';

export const APPROVAL_PHASES = ['Pending', 'Approved', 'Denied', 'Expired'] as const;
export type ApprovalPhase = (typeof APPROVAL_PHASES)[number];

export const ApprovalSpec = T.Object(
  {
    identity: K8sName('The AgentIdentity (same namespace) this approval is for.'),
    route: DnsLabel('The route of that identity it applies to.'),
    scope: T.Object(ClassesAndTables('this approval unlocks').properties, {
      additionalProperties: false,
      description: 'What it unlocks: statement classes and/or table patterns gated by requireApproval.',
      'x-kubernetes-validations': [
        cel(
          '(has(self.classes) && size(self.classes) > 0) || (has(self.tables) && size(self.tables) > 0)',
          'scope must name at least one class or table',
        ),
      ],
    }),
    reason: T.String({ minLength: 1, maxLength: 1024, description: 'Why it is needed.' }),
    ticket: T.Optional(T.String({ maxLength: 253, description: 'A change or incident ticket, e.g. CHG-1234.' })),
    duration: T.Optional(
      T.String({
        minLength: 2,
        maxLength: 16,
        pattern: DURATION_REGEX,
        description: 'How long it lasts once approved, e.g. 2h or 30m.',
        'x-kubernetes-validations': [
          cel(
            `self != '' && self.matches('${DURATION_REGEX}')`,
            'duration must be hours, minutes and/or seconds like 2h, 30m or 1h30m',
          ),
        ],
      }),
    ),
    notAfter: T.Optional(T.String({ format: 'date-time', description: 'It ends at this time at the latest.' })),
    requestedBy: T.Optional(
      T.String({
        maxLength: 512,
        description: 'Who asked: stamped by Byline from the authenticated user; never set it.',
      }),
    ),
  },
  {
    additionalProperties: false,
    'x-kubernetes-validations': [
      cel('has(self.duration) != has(self.notAfter)', 'give spec.duration or spec.notAfter (exactly one)'),
      cel('self == oldSelf', 'spec is immutable: create a new Approval instead'),
    ],
  },
);

export const ApprovalStatus = T.Object(
  {
    phase: T.Optional(
      T.Union(
        APPROVAL_PHASES.map((p) => T.Literal(p)),
        { description: 'Pending until decided; Approved until expiresAt, then Expired; or Denied.' },
      ),
    ),
    requestedBy: T.Optional(T.String({ maxLength: 512, description: 'Who asked (a copy of spec.requestedBy).' })),
    approvedBy: T.Optional(T.String({ maxLength: 512, description: 'Who approved (stamped).' })),
    deniedBy: T.Optional(T.String({ maxLength: 512, description: 'Who denied or revoked it (stamped).' })),
    decisionReason: T.Optional(T.String({ maxLength: 1024, description: 'What the decider said.' })),
    decidedAt: T.Optional(T.String({ format: 'date-time' })),
    expiresAt: T.Optional(T.String({ format: 'date-time' })),
  },
  { additionalProperties: false },
);

export type ApprovalSpec = Static<typeof ApprovalSpec>;
export type ApprovalStatus = Static<typeof ApprovalStatus>;
export type Approval = CustomObject<ApprovalSpec, ApprovalStatus>;

export const ApprovalCrd: CrdSource = {
  resource: ApprovalKind,
  description:
    'Approval: a request that an AgentIdentity may run what its guardrails gate behind approval on one route, ' +
    'for a limited time, and the decision of another person holding the approve verb.',
  spec: ApprovalSpec,
  status: ApprovalStatus,
  printerColumns: [
    { name: 'Identity', type: 'string', jsonPath: '.spec.identity' },
    { name: 'Route', type: 'string', jsonPath: '.spec.route' },
    { name: 'Phase', type: 'string', jsonPath: '.status.phase' },
    { name: 'Requested By', type: 'string', jsonPath: '.spec.requestedBy' },
    { name: 'Approved By', type: 'string', jsonPath: '.status.approvedBy' },
    { name: 'Expires', type: 'string', jsonPath: '.status.expiresAt' },
    { name: 'Reason', type: 'string', jsonPath: '.spec.reason', priority: 1 },
    { name: 'Ticket', type: 'string', jsonPath: '.spec.ticket', priority: 1 },
    { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
  ],
  sourceFile: 'api/src/crds/approval.ts',
};
