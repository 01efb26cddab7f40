/** `helm template` of charts/byline, parsed: shared by the chart tests and the kube install test. */
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { helm } from './helm.js';

export const CHART_DIR = join(import.meta.dirname, '..', '..', 'charts', 'byline');
export const VALUES_DIR = join(import.meta.dirname, 'values');
/** What `helm template` assumes of the cluster (its default, 1.20, is below the chart's kubeVersion). */
export const KUBE_VERSION = '1.37.2';

export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: unknown;
}

export interface RenderOptions {
  release: string;
  namespace: string;
  /** Files under test/chart/values/. */
  valuesFiles?: string[];
  set?: string[];
}

export function renderText(helmBin: string, o: RenderOptions): string {
  return helm(helmBin, [
    'template',
    o.release,
    CHART_DIR,
    '--namespace',
    o.namespace,
    '--kube-version',
    KUBE_VERSION,
    ...(o.valuesFiles ?? []).flatMap((f) => ['--values', join(VALUES_DIR, f)]),
    ...(o.set ?? []).flatMap((s) => ['--set', s]),
  ]);
}

export function parseManifests(text: string): Manifest[] {
  return parseAllDocuments(text)
    .map((d) => {
      if (d.errors.length > 0) throw new Error(`rendered YAML does not parse: ${d.errors[0]?.message}`);
      return d.toJS() as Manifest | null;
    })
    .filter((m): m is Manifest => m !== null);
}

export function render(helmBin: string, o: RenderOptions): Manifest[] {
  return parseManifests(renderText(helmBin, o));
}

export function find(manifests: Manifest[], kind: string, name?: string): Manifest[] {
  return manifests.filter((m) => m.kind === kind && (name === undefined || m.metadata.name === name));
}
