/**
 * The chart's source, read without Helm: its metadata and values parse, every `.Values` path a
 * template uses exists and every value is used, template blocks are closed and helpers defined, and
 * the chart's CRDs are exactly the generated ones in crds/. What Helm makes of it (lint, schema,
 * goldens, names) is in helm.test.ts; the install on a real API server in test/kube/chart.test.ts.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const repo = join(import.meta.dirname, '..', '..');
const chart = join(repo, 'charts', 'byline');
const read = (...p: string[]) => readFileSync(join(...p), 'utf8');

const templateFiles = readdirSync(join(chart, 'templates')).filter((f) => /\.(ya?ml|tpl|txt)$/.test(f));
const templates = new Map(templateFiles.map((f) => [f, read(chart, 'templates', f)]));
const values = parse(read(chart, 'values.yaml')) as Record<string, unknown>;

/** `.Values.a.b` and `$.Values.a.b` in every template, with where they were found. */
function valueRefs(): { path: string; file: string }[] {
  const refs: { path: string; file: string }[] = [];
  for (const [file, text] of templates) {
    for (const action of text.match(/\{\{[\s\S]*?\}\}/g) ?? []) {
      for (const m of action.matchAll(/\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)/g)) {
        refs.push({ path: (m[1] ?? '').slice(1), file });
      }
    }
  }
  return refs;
}

function lookup(path: string): { found: boolean } {
  let node: unknown = values;
  for (const key of path.split('.')) {
    if (node === null || typeof node !== 'object' || Array.isArray(node) || !(key in node)) return { found: false };
    node = (node as Record<string, unknown>)[key];
  }
  return { found: true };
}

/** Dotted paths of values.yaml's leaves (a list or an empty map counts as a leaf). */
function leaves(node: unknown, prefix = ''): string[] {
  if (node === null || typeof node !== 'object' || Array.isArray(node) || Object.keys(node).length === 0) {
    return [prefix];
  }
  return Object.entries(node).flatMap(([k, v]) => leaves(v, prefix ? `${prefix}.${k}` : k));
}

describe('charts/byline', () => {
  it('has a v2 Chart.yaml with a semantic version and an appVersion', () => {
    const meta = parse(read(chart, 'Chart.yaml')) as Record<string, unknown>;
    expect(meta).toMatchObject({ apiVersion: 'v2', name: 'byline', type: 'application' });
    expect(meta.version).toMatch(/^\d+\.\d+\.\d+$/);
    expect(typeof meta.appVersion).toBe('string');
  });

  it('has values.yaml with the settings the operator and collector need', () => {
    expect(values).toMatchObject({
      operator: { replicas: 2, webhook: { port: 9443, failurePolicy: 'Fail' }, antiAffinity: true },
      collector: { store: '', auth: { audience: 'byline.dev' } },
    });
    const webhook = (values.operator as { webhook: { namespaceLabel: string; timeoutSeconds: number } }).webhook;
    // Empty: the operator's own selector (byline.dev/injection in enabled, required).
    expect(webhook.namespaceLabel).toMatch(/^$|^[a-z0-9.-]+\/[a-z0-9.-]+=[a-z0-9.-]+$/);
    // The API server refuses webhook timeouts outside 1–30 s.
    expect(webhook.timeoutSeconds).toBeGreaterThanOrEqual(1);
    expect(webhook.timeoutSeconds).toBeLessThanOrEqual(30);
  });

  it('uses only values that values.yaml defines', () => {
    const refs = valueRefs();
    expect(refs.length).toBeGreaterThan(10);
    const missing = refs.filter((r) => !lookup(r.path).found).map((r) => `${r.file}: .Values.${r.path}`);
    expect(missing, 'templates use values that values.yaml does not define').toEqual([]);
  });

  it('uses every value values.yaml defines', () => {
    const used = valueRefs().map((r) => r.path);
    const unused = leaves(values).filter((leaf) => !used.some((u) => leaf === u || leaf.startsWith(`${u}.`)));
    expect(unused, 'values.yaml defines values no template uses').toEqual([]);
  });

  it('closes every template block and defines every helper it includes', () => {
    const helpers = new Set([...(templates.get('_helpers.tpl') ?? '').matchAll(/define "([^"]+)"/g)].map((m) => m[1]));
    for (const [file, text] of templates) {
      const opened = text.match(/\{\{-?\s*(if|range|with|define)\b/g)?.length ?? 0;
      const closed = text.match(/\{\{-?\s*end\s*-?\}\}/g)?.length ?? 0;
      expect(closed, `${file}: blocks opened and ended`).toBe(opened);
      for (const m of text.matchAll(/include "([^"]+)"/g)) expect(helpers, file).toContain(m[1]);
    }
  });

  it('ships the generated CRDs unchanged', () => {
    const generated = readdirSync(join(repo, 'crds')).filter((f) => f.endsWith('.yaml'));
    expect(generated.sort()).toEqual([
      'byline.dev_agentidentities.yaml',
      'byline.dev_approvals.yaml',
      'byline.dev_databaseroutes.yaml',
    ]);
    expect(readdirSync(join(chart, 'crds')).sort()).toEqual(generated);
    for (const f of generated) {
      expect(read(chart, 'crds', f) === read(repo, 'crds', f), `charts/byline/crds/${f}: run \`npm run crds\``).toBe(
        true,
      );
    }
  });

  it('has no template actions in its CRDs (Helm installs crds/ verbatim)', () => {
    for (const f of readdirSync(join(chart, 'crds'))) expect(read(chart, 'crds', f)).not.toContain('{{');
  });
});
