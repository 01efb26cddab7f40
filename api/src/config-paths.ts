/**
 * Relative paths in a config file mean "next to this file", as in kubeconfig and most tools, not
 * "wherever the process was started from". By convention every path field is named `file`, or ends
 * in `File`, `Path` or `Dir`; new path fields follow it and are resolved without further code.
 */
import { isAbsolute, resolve } from 'node:path';

const PATH_KEY = /^(file|.+(File|Path|Dir))$/;

/** Resolves, in place, every relative path field of a parsed config against `baseDir`. */
export function resolveConfigPaths(value: unknown, baseDir: string): void {
  if (Array.isArray(value)) {
    for (const item of value) resolveConfigPaths(item, baseDir);
    return;
  }
  if (value === null || typeof value !== 'object') return;
  const record = value as Record<string, unknown>;
  for (const [key, v] of Object.entries(record)) {
    if (typeof v === 'string' && PATH_KEY.test(key)) {
      if (v !== '' && !isAbsolute(v)) record[key] = resolve(baseDir, v);
    } else {
      resolveConfigPaths(v, baseDir);
    }
  }
}

/** `sqlite:PATH` with a relative PATH resolved the same way; other store URLs are left alone. */
export function resolveStoreUrl(store: string, baseDir: string): string {
  if (!store.startsWith('sqlite:')) return store;
  const path = store.slice('sqlite:'.length);
  if (path === '' || path === ':memory:' || isAbsolute(path)) return store;
  return `sqlite:${resolve(baseDir, path)}`;
}
