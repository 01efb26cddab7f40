/**
 * The decision engine: one statement's facts against the effective policy of one route → allow or
 * deny, the rule that decided, and the approval it ran under. Pure (the clock is an argument).
 *
 * Order, first match wins:
 *   1. no policy, or a route the policy does not list              → deny
 *   2. the route's access level (read / readWrite / admin)          → deny above it; a change to
 *      how text is read (standard_conforming_strings, client_encoding) is denied unless admin
 *      without guardrails, since the parser would then misread what follows
 *   3. every guardrail layer: deny.classes, deny.tables, requireWhere → deny
 *   4. requireApproval (classes, tables) of every layer              → allow under one unexpired
 *      Approval whose scope covers all of them, else deny with a HINT on how to ask for one
 *   5. allow, naming the access rule.
 * A layer can only add denials, so merging the DatabaseRoute's defaults with the identity's own
 * guardrails tightens and never loosens. An approval unlocks requireApproval only: never a deny rule,
 * never more than the access level.
 */
import type { PolicyApproval, PolicyDocument, PolicyGuardrails, PolicyRoute } from '@byline/api';
import type { Analysis } from './analyzer.js';
import type { StatementFacts } from './facts.js';
import { firstMatch, tableMatches } from './glob.js';

export interface Decision {
  readonly allow: boolean;
  /** The rule that decided, e.g. `AgentIdentity payments/billing-reconciler routes[orders-db].access=readWrite`. */
  readonly rule: string;
  readonly approval: PolicyApproval | null;
  /** For a denial: the ErrorResponse message (SQLSTATE 42501) and hint. */
  readonly message: string | null;
  readonly hint: string | null;
}

export const DENIED_SQLSTATE = '42501';

/** Classes each access level may run (admin: all). */
const READ_CLASSES = new Set(['read', 'tcl', 'misc']);
const READ_WRITE_CLASSES = new Set(['read', 'tcl', 'misc', 'write']);

interface Cached {
  decision: Decision;
  /** The decision may change at this time (an approval it depends on expires); Infinity if never. */
  validUntil: number;
}

/** One route of the current policy, with its decisions cached per statement. */
class RoutePolicy {
  readonly access: string;
  /** Who denials name: the identity, or the person acting under it (a gateway's sign-in). */
  readonly actor: string;
  readonly cache = new WeakMap<StatementFacts, Cached>();
  /** The shared allow of an unrestricted route (see PolicyEngine.unrestricted). */
  allowAll: Decision | undefined;
  constructor(
    readonly identity: string,
    readonly namespace: string | null,
    readonly route: PolicyRoute,
    actor: string | undefined,
  ) {
    this.actor = actor ?? identity;
    this.access = `${route.accessSource} routes[${route.name}].access=${route.access}`;
  }
}

const deny = (rule: string, message: string, hint: string | null = null): Decision =>
  Object.freeze({ allow: false, rule, approval: null, message, hint });

export class PolicyEngine {
  #document: PolicyDocument | null = null;
  #actor: string | undefined;
  #routes = new Map<string, RoutePolicy>();
  /** Why there is no policy (shown in denials until one arrives). */
  #missing = 'byline has no policy yet (the sidecar is waiting for the collector)';

  get document(): PolicyDocument | null {
    return this.#document;
  }

  /**
   * Replaces the policy; every cached decision goes with the old one. `actor`: who denials name when
   * not the document's identity (the gateway: the person signed in under that AgentIdentity); the
   * approval HINT still names the identity, since Approvals are for AgentIdentities.
   */
  setPolicy(document: PolicyDocument, actor?: string): void {
    const routes = new Map<string, RoutePolicy>();
    for (const route of document.routes)
      routes.set(route.name, new RoutePolicy(document.identity.name, document.identity.namespace, route, actor));
    this.#document = document;
    this.#actor = actor;
    this.#routes = routes;
  }

  /**
   * The one decision for every statement on a route whose policy checks nothing (admin, no
   * guardrails): the forward path then needs no parsing at all. Null when statements must be analysed.
   */
  unrestricted(routeName: string): Decision | null {
    const route = this.#routes.get(routeName);
    if (route === undefined || route.route.access !== 'admin') return null;
    if (!route.route.guardrails.every((l) => isEmpty(l.guardrails))) return null;
    route.allowAll ??= Object.freeze({ allow: true, rule: route.access, approval: null, message: null, hint: null });
    return route.allowAll;
  }

  /** The access level of a route, or null when the policy does not list it (or there is none yet). */
  accessOf(routeName: string): PolicyRoute['access'] | null {
    return this.#routes.get(routeName)?.route.access ?? null;
  }

  /**
   * A FunctionCall message names a function by OID with opaque arguments, so nothing about it can be
   * analysed: it runs only where the policy checks no more than "not read" (readWrite or admin
   * without guardrails); for read it is refused, since the function may write.
   */
  decideFunctionCall(routeName: string): Decision {
    const route = this.#routes.get(routeName);
    if (route === undefined) return this.noRoute(routeName);
    const r = route.route;
    const unguarded = r.guardrails.every((l) => isEmpty(l.guardrails));
    if (r.access !== 'read' && unguarded)
      return Object.freeze({ allow: true, rule: route.access, approval: null, message: null, hint: null });
    const why =
      r.access === 'read'
        ? 'a function called by OID may write'
        : 'a function called by OID cannot be checked against guardrails';
    return deny(
      route.access,
      `byline: FunctionCall is denied for ${route.actor} by ${route.access} (${why})`,
      'Call the function with SELECT instead, so that byline can see what it is.',
    );
  }

  /** Decisions for every statement of an analysed text, in order (one denial when it does not parse). */
  decideAll(routeName: string, analysis: Analysis, now: number): Decision[] {
    if (!analysis.ok) return [this.unparsed(routeName, analysis.error)];
    return analysis.statements.map((facts) => this.decide(routeName, facts, now));
  }

  decide(routeName: string, facts: StatementFacts, now: number): Decision {
    const route = this.#routes.get(routeName);
    if (route === undefined) return this.noRoute(routeName);
    const cached = route.cache.get(facts);
    if (cached !== undefined && now < cached.validUntil) return cached.decision;
    const fresh = decideFresh(route, facts, now);
    route.cache.set(facts, fresh);
    return fresh.decision;
  }

  private noRoute(routeName: string): Decision {
    const doc = this.#document;
    if (doc === null) return deny('byline: no policy', `byline: ${this.#missing}`);
    const who = doc.routes[0]?.accessSource ?? `identity ${doc.identity.name}`;
    return deny(
      `${who} routes`,
      `byline: route "${routeName}" is not among the routes of ${this.#actor ?? doc.identity.name} (${who})`,
      `Add the route to the identity's routes.`,
    );
  }

  /** A text the parser cannot read passes only where nothing would be checked: admin with no guardrails. */
  private unparsed(routeName: string, error: string): Decision {
    const route = this.#routes.get(routeName);
    if (route === undefined) return this.noRoute(routeName);
    const r = route.route;
    if (r.access === 'admin' && r.guardrails.every((l) => isEmpty(l.guardrails)))
      return Object.freeze({ allow: true, rule: route.access, approval: null, message: null, hint: null });
    return deny(route.access, `byline: ${error}; byline cannot authorize it for ${route.actor} (${route.access})`);
  }
}

function isEmpty(g: PolicyGuardrails): boolean {
  return (
    !g.deny?.classes?.length &&
    !g.deny?.tables?.length &&
    !g.requireWhere?.length &&
    !g.requireApproval?.classes?.length &&
    !g.requireApproval?.tables?.length
  );
}

function decideFresh(route: RoutePolicy, facts: StatementFacts, now: number): Cached {
  const forever = (decision: Decision): Cached => ({ decision, validUntil: Number.POSITIVE_INFINITY });
  const { identity, actor } = route;
  const r = route.route;
  const what = facts.command;

  // 2. Access level.
  if (facts.scannerChange && (r.access !== 'admin' || r.guardrails.length > 0))
    return forever(
      deny(
        route.access,
        `byline: ${what} is denied for ${actor} by ${route.access} (${facts.scannerChange} would make byline misread the statements after it)`,
      ),
    );
  const accessDenial = (why: string) =>
    forever(deny(route.access, `byline: ${what} is denied for ${actor} by ${route.access} (${why})`));
  if (r.access === 'read') {
    if (facts.readOnlyChange) return accessDenial(`${facts.readOnlyChange} would end read-only mode`);
    if (!READ_CLASSES.has(facts.class)) return accessDenial(`a ${facts.class} statement`);
    if (facts.writes.length > 0) return accessDenial(facts.writes[0] ?? 'it writes');
    if (facts.adminOnly) return accessDenial(`${facts.adminOnly}: admin only`);
  } else if (r.access === 'readWrite') {
    if (!READ_WRITE_CLASSES.has(facts.class)) return accessDenial(`a ${facts.class} statement needs admin`);
    if (facts.adminOnly) return accessDenial(`${facts.adminOnly}: admin only`);
  }

  // 3. Deny rules of every layer.
  for (const layer of r.guardrails) {
    const g = layer.guardrails;
    if (g.deny?.classes?.includes(facts.class))
      return forever(
        deny(
          `${layer.source} guardrails.deny.classes`,
          `byline: ${what} (class ${facts.class}) is denied for ${actor} by ${layer.source} guardrails.deny.classes`,
        ),
      );
    const table = firstMatch(g.deny?.tables, facts.tables);
    if (table !== null)
      return forever(
        deny(
          `${layer.source} guardrails.deny.tables`,
          `byline: ${what} on ${table} is denied for ${actor} by ${layer.source} guardrails.deny.tables`,
        ),
      );
    if (facts.unfiltered !== null && g.requireWhere?.includes(facts.unfiltered))
      return forever(
        deny(
          `${layer.source} guardrails.requireWhere`,
          `byline: ${facts.unfiltered.toUpperCase()} without WHERE is denied for ${actor} by ${layer.source} guardrails.requireWhere`,
          'Add a WHERE clause that selects the rows to change (WHERE true and the like count as none).',
        ),
      );
  }

  // 4. Approval gates.
  const classes: string[] = [];
  const tables: string[] = [];
  let gate = '';
  for (const layer of r.guardrails) {
    const g = layer.guardrails.requireApproval;
    if (g?.classes?.includes(facts.class) && !classes.includes(facts.class)) {
      classes.push(facts.class);
      gate ||= `${layer.source} guardrails.requireApproval`;
    }
    for (const table of facts.tables) {
      if (!tables.includes(table) && g?.tables?.some((p) => tableMatches(p, table))) {
        tables.push(table);
        gate ||= `${layer.source} guardrails.requireApproval`;
      }
    }
  }
  if (gate === '')
    return forever(Object.freeze({ allow: true, rule: route.access, approval: null, message: null, hint: null }));

  // The answer changes when an approval expires, so it holds until the earliest expiry still ahead.
  let validUntil = Number.POSITIVE_INFINITY;
  let chosen: PolicyApproval | null = null;
  for (const approval of r.approvals) {
    const expires = Date.parse(approval.expiresAt);
    if (!(expires > now)) continue;
    validUntil = Math.min(validUntil, expires);
    if (chosen === null && covers(approval, classes, tables)) chosen = approval;
  }
  if (chosen !== null)
    return {
      decision: Object.freeze({ allow: true, rule: gate, approval: chosen, message: null, hint: null }),
      validUntil,
    };
  const scope = [...classes, ...tables.map((t) => `table ${t}`)];
  // The exact `byline approval request` command line (cli/src/approval.ts): --scope takes classes
  // comma-separated, --table one pattern each.
  const ns = route.namespace ? ` --namespace ${route.namespace}` : '';
  const flags = [
    ...(classes.length > 0 ? [`--scope ${classes.join(',')}`] : []),
    ...tables.map((t) => `--table ${t}`),
  ].join(' ');
  return {
    decision: deny(
      gate,
      `byline: ${what} needs an approval for ${actor} by ${gate} (${scope.join(', ')}); none is active`,
      `Ask for one: byline approval request${ns} --identity ${identity} --route ${r.name} ${flags} ` +
        `--reason "<why>" --ticket <ticket> --for 1h, and retry once someone else has approved it (byline approve NAME).`,
    ),
    validUntil,
  };
}

/** One approval must cover every gated class and table of the statement. */
function covers(approval: PolicyApproval, classes: readonly string[], tables: readonly string[]): boolean {
  const scope = approval.scope;
  for (const c of classes) if (!scope.classes?.some((allowed) => allowed === c)) return false;
  for (const t of tables) if (!scope.tables?.some((p) => tableMatches(p, t))) return false;
  return true;
}
