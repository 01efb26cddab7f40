/**
 * The real Postgres parser (libpg-query, WASM), loaded once, on first need. Instantiating it costs
 * about 19 MiB of resident memory and a few hundred milliseconds, so the sidecar does not pay for
 * it at start: it loads it when the first client connects (sidecar.ts), before that client's
 * first statement can need it.
 */
import type { ParseResult } from 'libpg-query';

export type Parse = (sql: string) => ParseResult;

let parse: Parse | undefined;
let loading: Promise<Parse> | undefined;

/** Loads the parser (once; later calls share the first load). */
export function loadParser(): Promise<Parse> {
  loading ??= import('libpg-query').then(
    async (lib) => {
      await lib.loadModule();
      // The first parse compiles the parser's WASM functions (tens of ms): do it here, in the
      // load the first connection waits for, not in that client's first statement.
      lib.parseSync('SELECT a FROM t WHERE b = 1');
      parse = lib.parseSync;
      return lib.parseSync;
    },
    (e: unknown) => {
      loading = undefined; // a later call may try again
      throw e;
    },
  );
  return loading;
}

/** The parser if it is loaded, else undefined (callers that cannot wait fail closed). */
export function loadedParser(): Parse | undefined {
  return parse;
}
