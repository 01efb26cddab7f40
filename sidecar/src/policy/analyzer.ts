/**
 * Statement facts from the real parser, cached two ways:
 * - by template (sql/template.ts: literals as parameters), the fast path: every simple-protocol
 *   statement with a literal is a new text, but most share a template with one seen before. A
 *   template's facts are used only where they hold for any literal values (`factsHoldForAnyLiterals`):
 *   facts that read literals (`WHERE 1=1`, `set_config('default_transaction_read_only', 'off', …)`)
 *   make the template unusable, and such a text is parsed itself;
 * - by exact text, for everything else.
 * A prepared statement is analysed once, at Parse; the session keeps the facts with it and every
 * Execute reuses them.
 */
import type { ParseResult } from 'libpg-query';
import { Lru } from '../sql/lru.js';
import { loadedParser, loadParser, type Parse } from '../sql/parser.js';
import { type StatementTemplate, statementTemplate } from '../sql/template.js';
import { factsHoldForAnyLiterals, factsOf, type StatementFacts } from './facts.js';

/** What the parser says about one text: facts per statement, or why there are none. */
export type Analysis = { ok: true; statements: readonly StatementFacts[] } | { ok: false; error: string };

/** Until the parser is loaded nothing can be analysed, so nothing is allowed (not cached: it passes). */
export const NOT_LOADED: Analysis = Object.freeze({ ok: false as const, error: 'the SQL parser is not loaded yet' });

/** A template whose facts depend on its literals: its texts are parsed one by one. */
const UNUSABLE = Object.freeze({ ok: false as const, error: 'template unusable' });

export interface StatementAnalyzerOptions {
  /** Distinct texts, and distinct templates, to remember (default 10 000 each). */
  cacheSize?: number;
  /** Longer texts are analysed every time rather than kept (default 16 KiB), so the cache's memory stays bounded. */
  maxCachedLength?: number;
  /** Answer from a statement's template where that is exact (default true; false parses every new text). */
  templates?: boolean;
}

export class StatementAnalyzer {
  /**
   * hits: answered without parsing (exact text or template known); misses: a parse was needed;
   * templated: answered from a template (the fast path), whether its parse was needed or not.
   */
  readonly stats = { hits: 0, misses: 0, templated: 0 };
  readonly #cache: Lru<string, Analysis>;
  readonly #templates: Lru<string, Analysis>;
  readonly #maxCachedLength: number;
  readonly #useTemplates: boolean;

  /** Answers NOT_LOADED until the parser is loaded (sql/parser.ts); `create()` waits for it. */
  constructor(options: StatementAnalyzerOptions = {}) {
    this.#cache = new Lru(options.cacheSize ?? 10_000);
    this.#templates = new Lru(options.cacheSize ?? 10_000);
    this.#maxCachedLength = options.maxCachedLength ?? 16 * 1024;
    this.#useTemplates = options.templates ?? true;
  }

  static async create(options: StatementAnalyzerOptions = {}): Promise<StatementAnalyzer> {
    await loadParser();
    return new StatementAnalyzer(options);
  }

  /** Facts for every statement in `sql` (a Query may hold several). The result is shared: do not edit it. */
  analyze(sql: string): Analysis {
    const cached = this.#cache.get(sql);
    if (cached !== undefined) {
      this.stats.hits++;
      return cached;
    }
    const parse = loadedParser();
    if (parse === undefined) return NOT_LOADED;
    // A text too long to cache has a template too long to cache: parse the text once, not both.
    const template = this.#useTemplates && sql.length <= this.#maxCachedLength ? statementTemplate(sql) : null;
    if (template !== null) {
      const fast = this.#fromTemplate(template, parse);
      if (fast !== UNUSABLE) {
        this.stats.templated++;
        return fast;
      }
    }
    this.stats.misses++;
    const analysis = fresh(sql, parse);
    if (sql.length <= this.#maxCachedLength) this.#cache.set(sql, analysis);
    return analysis;
  }

  /** The template's analysis (shared by all its texts), or UNUSABLE. */
  #fromTemplate(template: StatementTemplate, parse: Parse): Analysis {
    const known = this.#templates.get(template.text);
    if (known !== undefined) {
      if (known !== UNUSABLE) this.stats.hits++;
      return known;
    }
    this.stats.misses++;
    let analysis: Analysis = UNUSABLE;
    try {
      const tree = parse(template.text);
      // With no literal replaced, the template is the text with comments as spaces: the same tree.
      if (template.literals === 0 || factsHoldForAnyLiterals(tree))
        analysis = Object.freeze({ ok: true as const, statements: Object.freeze(factsOf(tree)) });
    } catch {
      // Does not parse (the text may, where a literal stands that a parameter cannot), or too deep: the text decides.
    }
    if (template.text.length <= this.#maxCachedLength) this.#templates.set(template.text, analysis);
    return analysis;
  }
}

function fresh(sql: string, parse: Parse): Analysis {
  let tree: ParseResult;
  try {
    tree = parse(sql);
  } catch (e) {
    return Object.freeze({ ok: false as const, error: `the statement does not parse: ${(e as Error).message}` });
  }
  try {
    return Object.freeze({ ok: true as const, statements: Object.freeze(factsOf(tree)) });
  } catch {
    // A tree deeper than the stack: nothing can be said about it, so nothing is allowed on it.
    return Object.freeze({ ok: false as const, error: 'the statement is nested too deeply to analyse' });
  }
}
