/**
 * Statement facts from the real parser, cached by exact text. Exact, not normalized: the facts
 * depend on literals (`WHERE 1=1`, `set_config('default_transaction_read_only', 'off', …)`), so
 * two statements differing only in a literal may not share an answer. A prepared statement is
 * analysed once, at Parse; the session keeps the facts with it and every Execute reuses them.
 */
import type { ParseResult } from 'libpg-query';
import { Lru } from '../sql/lru.js';
import { factsOf, type StatementFacts } from './facts.js';

type Parse = (sql: string) => ParseResult;

/** What the parser says about one text: facts per statement, or why there are none. */
export type Analysis = { ok: true; statements: readonly StatementFacts[] } | { ok: false; error: string };

let loading: Promise<Parse> | undefined;

// libpg-query instantiates its WASM (~19 MiB RSS) when imported, so only a sidecar with a policy loads it.
function loadParser(): Promise<Parse> {
  loading ??= import('libpg-query').then(async (lib) => {
    await lib.loadModule();
    return lib.parseSync;
  });
  return loading;
}

export interface StatementAnalyzerOptions {
  /** Distinct texts to remember (default 10 000). */
  cacheSize?: number;
  /** Longer texts are analysed every time rather than kept (default 16 KiB), so the cache's memory stays bounded. */
  maxCachedLength?: number;
}

export class StatementAnalyzer {
  readonly stats = { hits: 0, misses: 0 };
  readonly #cache: Lru<string, Analysis>;
  readonly #maxCachedLength: number;

  private constructor(
    private readonly parse: Parse,
    options: StatementAnalyzerOptions,
  ) {
    this.#cache = new Lru(options.cacheSize ?? 10_000);
    this.#maxCachedLength = options.maxCachedLength ?? 16 * 1024;
  }

  static async create(options: StatementAnalyzerOptions = {}): Promise<StatementAnalyzer> {
    return new StatementAnalyzer(await loadParser(), options);
  }

  /** Facts for every statement in `sql` (a Query may hold several). The result is shared: do not edit it. */
  analyze(sql: string): Analysis {
    const cached = this.#cache.get(sql);
    if (cached !== undefined) {
      this.stats.hits++;
      return cached;
    }
    this.stats.misses++;
    const analysis = this.fresh(sql);
    if (sql.length <= this.#maxCachedLength) this.#cache.set(sql, analysis);
    return analysis;
  }

  private fresh(sql: string): Analysis {
    let tree: ParseResult;
    try {
      tree = this.parse(sql);
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
}
