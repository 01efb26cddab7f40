/**
 * Installs Byline's CRDs from the committed crds/*.yaml (the files users apply, not a fresh
 * rendering) and waits until the API server serves them. Server-side apply, so that test files
 * applying them at the same time, or again, all succeed.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { type Rest, statusMessage } from './rest.js';

const CRD_DIR = join(import.meta.dirname, '..', '..', 'crds');

interface Crd {
  metadata: { name: string };
  status?: { conditions?: { type: string; status: string; message?: string }[] };
}

export function crdFiles(): string[] {
  return readdirSync(CRD_DIR)
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => join(CRD_DIR, f));
}

/** Applies every CRD in crds/ and resolves with their names once each is Established. */
export async function applyCrds(rest: Rest, timeoutMs = 30_000): Promise<string[]> {
  const names: string[] = [];
  for (const file of crdFiles()) {
    const crd = parse(readFileSync(file, 'utf8')) as Crd;
    const path = `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd.metadata.name}`;
    const res = await rest('PATCH', `${path}?fieldManager=byline-tests&force=true`, {
      body: crd,
      contentType: 'application/apply-patch+yaml',
    });
    if (res.status !== 200 && res.status !== 201) {
      throw new Error(`applying ${file}: ${res.status} ${statusMessage(res)}`);
    }
    names.push(crd.metadata.name);
  }
  const deadline = Date.now() + timeoutMs;
  for (const name of names) {
    for (;;) {
      const res = await rest('GET', `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`);
      const conditions = (res.body as Crd).status?.conditions ?? [];
      if (conditions.some((c) => c.type === 'Established' && c.status === 'True')) break;
      if (Date.now() > deadline) throw new Error(`CRD ${name} not Established: ${JSON.stringify(conditions)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return names;
}
