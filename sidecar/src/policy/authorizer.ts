/**
 * The policy as the forward path asks it: per Query, Execute or FunctionCall, the decisions for
 * its statements. A Query's text is analysed (parser cache by exact text); a prepared statement's
 * analysis is made once and kept on it, so every Execute only re-runs the cheap, cached decision
 * (approvals expire and arrive while a statement stays prepared). A route whose policy checks
 * nothing (admin, no guardrails) is answered without parsing.
 */
import type { Prepared } from '../capture/sql-prepared.js';
import type { SidecarMetrics } from '../metrics.js';
import { SCS_OFF } from '../sql/tokenizer.js';
import { type Analysis, NOT_LOADED, type StatementAnalyzer } from './analyzer.js';
import type { Decision, PolicyEngine } from './engine.js';

/** One-element lists of shared decisions, so a cached decision costs no allocation per statement. */
const singles = new WeakMap<Decision, readonly Decision[]>();
function single(decision: Decision): readonly Decision[] {
  let list = singles.get(decision);
  if (list === undefined) {
    list = Object.freeze([decision]);
    singles.set(decision, list);
  }
  return list;
}

const NO_ANALYZER = 'byline: the policy restricts this route, but the SQL parser is not loaded';
/**
 * The parser reads strings as standard_conforming_strings=on does. With it off (a role or database
 * setting), `'x\''; DELETE …; --'` is one string to the parser and a DELETE to Postgres.
 */
const SCS_MISREAD =
  'byline: standard_conforming_strings is off in this session, so byline would misread the statement; it cannot authorize it';

export class Authorizer {
  readonly #unknownStatement = new Map<string, Decision>();

  constructor(
    readonly engine: PolicyEngine,
    private readonly analyzer: StatementAnalyzer | null,
    private readonly metrics: SidecarMetrics | null = null,
  ) {}

  /** `flags`: how Postgres scans the text (tokenizer.ts), as the tracker last heard. */
  query(route: string, text: string, flags: number, now: number): readonly Decision[] {
    const open = this.engine.unrestricted(route);
    if (open !== null) return this.count(route, single(open));
    if (this.analyzer === null) return this.count(route, single(this.#noParser(route)));
    if (flags & SCS_OFF) return this.count(route, single(this.#fixedDenial(`${route}\0scs`, SCS_MISREAD)));
    return this.count(route, this.#decide(route, this.analyzer.analyze(text), now));
  }

  /** `statement` is what the Execute's portal runs; undefined when the sidecar does not know it. */
  execute(route: string, statement: Prepared | undefined, now: number): readonly Decision[] {
    const open = this.engine.unrestricted(route);
    if (open !== null) return this.count(route, single(open));
    if (this.analyzer === null) return this.count(route, single(this.#noParser(route)));
    if (statement === undefined) return this.count(route, single(this.#unknown(route)));
    if (statement.flags & SCS_OFF) return this.count(route, single(this.#fixedDenial(`${route}\0scs`, SCS_MISREAD)));
    const analysis = (statement.analysis as Analysis | undefined) ?? this.analyzer.analyze(statement.text);
    // Kept with the statement for every later Execute, unless the parser was not there yet.
    if (analysis !== NOT_LOADED) statement.analysis = analysis;
    return this.count(route, this.#decide(route, analysis, now));
  }

  functionCall(route: string): readonly Decision[] {
    return this.count(route, single(this.engine.decideFunctionCall(route)));
  }

  #decide(route: string, analysis: Analysis, now: number): readonly Decision[] {
    if (analysis.ok && analysis.statements.length === 1)
      return single(this.engine.decide(route, analysis.statements[0]!, now));
    return this.engine.decideAll(route, analysis, now);
  }

  #noParser(route: string): Decision {
    return this.#fixedDenial(`${route}\0parser`, NO_ANALYZER);
  }

  /** An Execute whose statement the sidecar never saw prepared (e.g. a SQL PREPARE still in flight). */
  #unknown(route: string): Decision {
    return this.#fixedDenial(
      route,
      'byline: this Execute runs a statement byline did not see being prepared, so it cannot be authorized',
      'Wait for the PREPARE (or Parse) to complete before binding and executing it.',
    );
  }

  #fixedDenial(key: string, message: string, hint: string | null = null): Decision {
    let d = this.#unknownStatement.get(key);
    if (d === undefined) {
      d = Object.freeze({ allow: false, rule: 'byline statement tracking', approval: null, message, hint });
      this.#unknownStatement.set(key, d);
    }
    return d;
  }

  private count(route: string, decisions: readonly Decision[]): readonly Decision[] {
    const counts = this.metrics?.decisionCounts;
    if (counts === undefined) return decisions;
    let c = counts.get(route);
    if (c === undefined) {
      c = { allow: 0, deny: 0 };
      counts.set(route, c);
    }
    for (let i = 0; i < decisions.length; i++) {
      if (decisions[i]!.allow) c.allow++;
      else c.deny++;
    }
    return decisions;
  }
}
