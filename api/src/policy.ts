/**
 * The effective policy document the collector serves a sidecar on `GET /v1/policy`: per route, the
 * access level, the guardrail layers that apply (the DatabaseRoute's defaults and the identity's
 * own: a statement must pass every layer, so a layer can only tighten) and the Approved,
 * unexpired Approvals. The sidecar decides every statement from this document alone.
 */
import { type Static, Type as T } from '@sinclair/typebox';
import { StatementClass } from './audit-event.js';
import { validate } from './validate.js';

export const ACCESS_LEVELS = ['read', 'readWrite', 'admin'] as const;
export const PolicyAccess = T.Union([T.Literal('read'), T.Literal('readWrite'), T.Literal('admin')]);
export type PolicyAccess = Static<typeof PolicyAccess>;

/**
 * A table pattern: `name` or `schema.name`, where `*` matches any run of characters within one
 * part and `?` one character (`public.payroll*`, `*.secrets`, `audit_?`). An unqualified pattern
 * matches the name in any schema.
 */
export const PolicyTablePattern = T.String({ minLength: 1, maxLength: 256, pattern: '^[^.\\s"]+(\\.[^.\\s"]+)?$' });

const ClassList = T.Array(StatementClass, { maxItems: 6, uniqueItems: true });
const TableList = T.Array(PolicyTablePattern, { maxItems: 256, uniqueItems: true });

/** The guardrails shape, the same in the CRDs, the sidecar config and this document. */
export const PolicyGuardrails = T.Object(
  {
    deny: T.Optional(
      T.Object({ classes: T.Optional(ClassList), tables: T.Optional(TableList) }, { additionalProperties: false }),
    ),
    requireWhere: T.Optional(
      T.Array(T.Union([T.Literal('update'), T.Literal('delete')]), { maxItems: 2, uniqueItems: true }),
    ),
    requireApproval: T.Optional(
      T.Object({ classes: T.Optional(ClassList), tables: T.Optional(TableList) }, { additionalProperties: false }),
    ),
  },
  { additionalProperties: false },
);
export type PolicyGuardrails = Static<typeof PolicyGuardrails>;

/** One source of guardrails; `source` names it in rules, e.g. `DatabaseRoute payments/orders-db`. */
export const PolicyGuardrailLayer = T.Object(
  { source: T.String({ minLength: 1, maxLength: 512 }), guardrails: PolicyGuardrails },
  { additionalProperties: false },
);
export type PolicyGuardrailLayer = Static<typeof PolicyGuardrailLayer>;

export const PolicyApprovalScope = T.Object(
  { classes: T.Optional(ClassList), tables: T.Optional(TableList) },
  { additionalProperties: false },
);

/** An Approved Approval as the sidecar needs it; it stops counting at `expiresAt` by the sidecar's clock. */
export const PolicyApproval = T.Object(
  {
    name: T.String({ minLength: 1, maxLength: 253 }),
    scope: PolicyApprovalScope,
    approvedBy: T.String({ minLength: 1, maxLength: 512 }),
    reason: T.Union([T.String({ maxLength: 4096 }), T.Null()]),
    ticket: T.Union([T.String({ maxLength: 512 }), T.Null()]),
    expiresAt: T.String({ minLength: 20, maxLength: 40 }),
  },
  { additionalProperties: false },
);
export type PolicyApproval = Static<typeof PolicyApproval>;

export const PolicyRoute = T.Object(
  {
    name: T.String({ minLength: 1, maxLength: 63 }),
    access: PolicyAccess,
    /** Names where the access level comes from, e.g. `AgentIdentity payments/billing-reconciler`. */
    accessSource: T.String({ minLength: 1, maxLength: 512 }),
    guardrails: T.Array(PolicyGuardrailLayer, { maxItems: 8 }),
    approvals: T.Array(PolicyApproval, { maxItems: 1024 }),
  },
  { additionalProperties: false },
);
export type PolicyRoute = Static<typeof PolicyRoute>;

export const PolicyDocument = T.Object(
  {
    /**
     * A digest of the rest of the document: the same policy has the same version on every collector
     * replica. `GET /v1/policy?after=<version>` answers at once when the policy is no longer that one.
     */
    version: T.String({ minLength: 1, maxLength: 64, pattern: '^[0-9a-f]+$' }),
    identity: T.Object(
      {
        name: T.String({ minLength: 1, maxLength: 253 }),
        namespace: T.Union([T.String({ maxLength: 63 }), T.Null()]),
      },
      { additionalProperties: false },
    ),
    routes: T.Array(PolicyRoute, { maxItems: 64 }),
  },
  { additionalProperties: false },
);
export type PolicyDocument = Static<typeof PolicyDocument>;

/** Parses and checks a policy document; throws a ValidationError naming every bad field. */
export function parsePolicyDocument(value: unknown): PolicyDocument {
  return validate(PolicyDocument, value, 'policy document', (doc) => {
    const problems: string[] = [];
    const names = new Set<string>();
    for (const [i, route] of doc.routes.entries()) {
      if (names.has(route.name)) problems.push(`routes[${i}].name: "${route.name}" is listed twice`);
      names.add(route.name);
      for (const [j, a] of route.approvals.entries()) {
        if (Number.isNaN(Date.parse(a.expiresAt)))
          problems.push(`routes[${i}].approvals[${j}].expiresAt: "${a.expiresAt}" is not a date-time`);
        if ((a.scope.classes?.length ?? 0) + (a.scope.tables?.length ?? 0) === 0)
          problems.push(`routes[${i}].approvals[${j}].scope: unlocks nothing (no classes, no tables)`);
      }
    }
    return problems;
  });
}
