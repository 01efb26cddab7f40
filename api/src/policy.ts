/**
 * The effective policy document the collector serves a sidecar on `GET /v1/policy`: per route, the
 * access level, the guardrail layers that apply (the DatabaseRoute's defaults and the identity's
 * own: a statement must pass every layer, so a layer can only tighten) and the Approved,
 * unexpired Approvals. The sidecar decides every statement from this document alone.
 */
import { type Static, Type as T } from '@sinclair/typebox';
import { Access, ClassesAndTables, Guardrails, TablePattern } from './crds/guardrails.js';
import { validate } from './validate.js';

// One source of truth: access levels, guardrails, table patterns and approval scopes are the CRDs'
// (crds/guardrails.ts), so the document cannot accept what an AgentIdentity or Approval would refuse.
export const PolicyAccess = Access;
export type PolicyAccess = Static<typeof PolicyAccess>;

/** A table pattern (crds/guardrails.ts TablePattern): `name` or `schema.name`, with `*` and `?`. */
export const PolicyTablePattern = TablePattern;

/** The guardrails shape, the same in the CRDs, the sidecar config and this document. */
export const PolicyGuardrails = Guardrails;
export type PolicyGuardrails = Static<typeof PolicyGuardrails>;

/** One source of guardrails; `source` names it in rules, e.g. `DatabaseRoute payments/orders-db`. */
export const PolicyGuardrailLayer = T.Object(
  { source: T.String({ minLength: 1, maxLength: 512 }), guardrails: PolicyGuardrails },
  { additionalProperties: false },
);
export type PolicyGuardrailLayer = Static<typeof PolicyGuardrailLayer>;

export const PolicyApprovalScope = ClassesAndTables('this approval unlocks');

/** An Approved Approval as the sidecar needs it; it stops counting at `expiresAt` by the sidecar's clock. */
export const PolicyApproval = T.Object(
  {
    name: T.String({ minLength: 1, maxLength: 253 }),
    scope: PolicyApprovalScope,
    approvedBy: T.String({ minLength: 1, maxLength: 512 }),
    /**
     * Who asked (`spec.requestedBy`). Served only to sidecars that say they read it
     * (POLICY_FIELDS_HEADER): an older sidecar refuses a document with a field it does not know.
     */
    requestedBy: T.Optional(T.String({ minLength: 1, maxLength: 512 })),
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

/**
 * The request header in which a sidecar names the optional document fields it reads, comma
 * separated. A collector leaves out those not named; an older collector ignores the header.
 */
export const POLICY_FIELDS_HEADER = 'byline-policy-fields';
/** The optional fields this build reads. */
export const POLICY_FIELDS: readonly string[] = ['requestedBy'];

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
