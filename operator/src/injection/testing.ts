/**
 * Test helpers: a strict RFC 6902 applier (add, replace, remove — the operations the injector
 * emits), so the tests check that a patch applies to the pod it was made for, the way the API
 * server applies it. Strict on purpose: a missing parent, an index out of range or a replace of a
 * missing member is an error, as in the RFC.
 */
import type { JsonPatchOperation } from './json-patch.js';

type Container = Record<string, unknown> | unknown[];

function tokensOf(path: string): string[] {
  if (!path.startsWith('/')) throw new Error(`${JSON.stringify(path)}: a JSON Pointer starts with "/"`);
  // RFC 6901: decode ~1 before ~0, so "~01" is "~1" and not "/".
  return path
    .slice(1)
    .split('/')
    .map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function index(token: string, max: number, path: string): number {
  if (!/^(0|[1-9][0-9]*)$/.test(token) || Number(token) > max) throw new Error(`${path}: bad array index ${token}`);
  return Number(token);
}

const isContainer = (v: unknown): v is Container => typeof v === 'object' && v !== null;

export function applyPatch<T>(document: T, patch: JsonPatchOperation[]): T {
  const root = structuredClone(document) as unknown;
  for (const op of patch) {
    const tokens = tokensOf(op.path);
    const last = tokens.pop()!;
    let parent: unknown = root;
    for (const t of tokens) {
      const next: unknown = Array.isArray(parent)
        ? parent[index(t, parent.length - 1, op.path)]
        : isContainer(parent)
          ? (parent as Record<string, unknown>)[t]
          : undefined;
      if (!isContainer(next)) throw new Error(`${op.path}: ${t} does not exist`);
      parent = next;
    }
    if (Array.isArray(parent)) {
      if (op.op === 'add') {
        parent.splice(last === '-' ? parent.length : index(last, parent.length, op.path), 0, structuredClone(op.value));
      } else {
        const i = index(last, parent.length - 1, op.path);
        if (op.op === 'replace') parent[i] = structuredClone(op.value);
        else parent.splice(i, 1);
      }
    } else if (isContainer(parent)) {
      const object = parent as Record<string, unknown>;
      if (op.op !== 'add' && !Object.hasOwn(object, last)) throw new Error(`${op.path}: ${last} does not exist`);
      if (op.op === 'remove') delete object[last];
      else object[last] = structuredClone(op.value);
    } else {
      throw new Error(`${op.path}: the parent is not an object or array`);
    }
  }
  return root as T;
}
