/**
 * The chart's monitoring against the code: every PromQL expression in the PrometheusRule and the
 * Grafana dashboard names metrics the sidecar, collector or operator registers (read from their
 * registries, not a hand list) with labels those metrics have, and the rule covers the alerts
 * that matter for an audit trail.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CollectorMetrics } from '@byline/collector';
import { OperatorMetrics } from '@byline/operator';
import { Histogram, type Registry } from 'prom-client';
import { beforeAll, describe, expect, it } from 'vitest';
import { SidecarMetrics } from '../../sidecar/src/metrics.js';
import { buildHelm, findHelm } from './helm.js';
import { find, type Manifest, render } from './render.js';

/** Labels Prometheus adds to every scraped series (target labels from the ServiceMonitor/PodMonitor). */
const TARGET_LABELS = new Set(['namespace', 'pod', 'container', 'instance', 'job', 'service', 'endpoint']);

interface Known {
  labels: Set<string>;
  histogram: boolean;
}

function knownMetrics(): Map<string, Known> {
  const known = new Map<string, Known>();
  const registries: Registry[] = [
    new SidecarMetrics().registry,
    new CollectorMetrics().registry,
    new OperatorMetrics().registry,
  ];
  for (const registry of registries) {
    for (const metric of registry.getMetricsAsArray()) {
      const m = metric as unknown as { name: string; labelNames?: string[] };
      known.set(m.name, { labels: new Set(m.labelNames ?? []), histogram: metric instanceof Histogram });
    }
  }
  return known;
}

/** Problems with one PromQL expression: unknown metrics, labels a metric does not have. */
function checkExpression(expr: string, known: Map<string, Known>): string[] {
  const problems: string[] = [];
  const used: Known[] = [];
  let bucket = false;
  // Label values are strings; blank them so their contents are never read as names.
  const code = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  for (const m of code.matchAll(/\b(byline_[a-z0-9_]+)\s*(\{([^}]*)\})?/g)) {
    const name = m[1] ?? '';
    let metric = known.get(name);
    const base = /^(.*)_(bucket|sum|count)$/.exec(name);
    if (!metric && base && known.get(base[1] ?? '')?.histogram) {
      metric = known.get(base[1] ?? '');
      if (base[2] === 'bucket') bucket = true;
    }
    if (!metric) {
      problems.push(`${name}: no such metric in the code's registries`);
      continue;
    }
    used.push(metric);
    for (const matcher of (m[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)/g)) {
      const label = matcher[1] ?? '';
      const ok = metric.labels.has(label) || TARGET_LABELS.has(label) || (label === 'le' && base?.[2] === 'bucket');
      if (!ok) problems.push(`${name}: has no label "${label}"`);
    }
  }
  if (used.length === 0) problems.push('names no byline metric');
  for (const group of code.matchAll(/\b(?:by|without)\s*\(([^)]*)\)/g)) {
    for (const label of (group[1] ?? '')
      .split(',')
      .map((l) => l.trim())
      .filter(Boolean)) {
      const ok = TARGET_LABELS.has(label) || (label === 'le' && bucket) || used.some((u) => u.labels.has(label));
      if (!ok) problems.push(`by (${label}): no metric in the expression has that label`);
    }
  }
  return problems;
}

let manifests: Manifest[];
const known = knownMetrics();
beforeAll(async () => {
  const helmBin = findHelm() ?? (await buildHelm());
  manifests = render(helmBin, { release: 'byline', namespace: 'byline', valuesFiles: ['ha-monitoring.yaml'] });
}, 20 * 60_000);

interface Rule {
  alert: string;
  expr: string;
}
function rules(): Rule[] {
  const rule = find(manifests, 'PrometheusRule')[0] as unknown as { spec: { groups: { rules: Rule[] }[] } };
  return rule.spec.groups.flatMap((g) => g.rules);
}
interface Dashboard {
  panels: { title: string; targets: { expr: string }[] }[];
  templating: { list: { name: string; query: unknown }[] };
}
function dashboard(): Dashboard {
  const map = find(manifests, 'ConfigMap').find((c) => c.metadata.name.endsWith('-dashboard')) as unknown as {
    data: Record<string, string>;
  };
  return JSON.parse(map.data['byline.json'] ?? '') as Dashboard;
}

describe('every component', () => {
  it('exports the standard process_* and nodejs_* metrics and byline_build_info{version}', async () => {
    const components = {
      sidecar: new SidecarMetrics().registry,
      collector: new CollectorMetrics().registry,
      operator: new OperatorMetrics().registry,
    };
    const version = (
      JSON.parse(readFileSync(join(import.meta.dirname, '../../api/package.json'), 'utf8')) as {
        version: string;
      }
    ).version;
    for (const [component, registry] of Object.entries(components)) {
      const text = await registry.metrics();
      expect(text, component).toMatch(/^process_cpu_seconds_total \d/m);
      expect(text, component).toMatch(/^process_resident_memory_bytes \d/m);
      expect(text, component).toMatch(/^nodejs_heap_size_used_bytes \d/m);
      expect(text, component).toContain(`byline_build_info{version="${version}",nodejs="${process.versions.node}"} 1`);
    }
  });
});

describe('the metric checker itself', () => {
  it('refuses unknown metrics, labels a metric lacks, and groupings by them', () => {
    expect(checkExpression('rate(byline_statments_total[5m])', known)).toEqual([
      "byline_statments_total: no such metric in the code's registries",
      'names no byline metric',
    ]);
    expect(checkExpression('byline_spool_bytes{route="x"}', known)).toEqual([
      'byline_spool_bytes: has no label "route"',
    ]);
    expect(checkExpression('sum by (identity) (byline_statements_total)', known)).toEqual([
      'by (identity): no metric in the expression has that label',
    ]);
    expect(checkExpression('sum by (le) (rate(byline_operator_admission_duration_seconds_bucket[5m]))', known)).toEqual(
      [],
    );
    // The route label the dashboard filters by.
    expect(checkExpression('byline_statements_total{route=~"$route", class="read"}', known)).toEqual([]);
  });
});

describe('PrometheusRule', () => {
  it('names only metrics and labels the code exports', () => {
    const problems = rules().flatMap((r) => checkExpression(r.expr, known).map((p) => `${r.alert}: ${p}`));
    expect(problems).toEqual([]);
  });

  it('alerts on spool, shipping, refusals, chains, the webhook and leadership', () => {
    const byMetric = (metric: string) =>
      rules()
        .filter((r) => r.expr.includes(metric))
        .map((r) => r.alert);
    expect(byMetric('byline_spool_max_bytes')).toContain('BylineSpoolNearFull');
    expect(byMetric('deriv(byline_spool_bytes')).toContain('BylineSpoolBacklogGrowing');
    expect(byMetric('byline_spool_oldest_unshipped_seconds')).toContain('BylineShippingLag');
    expect(byMetric('byline_ship_failures_total')).toContain('BylineShippingFailing');
    expect(byMetric('byline_statements_refused_total')).toContain('BylineStatementsRefused');
    expect(byMetric('byline_collector_chain_problems_total')).toContain('BylineChainProblems');
    expect(byMetric('byline_operator_admissions_total')).toContain('BylineWebhookFailures');
    expect(byMetric('byline_operator_admission_duration_seconds_bucket')).toContain('BylineWebhookSlow');
    expect(byMetric('byline_operator_leader')).toContain('BylineOperatorNotLeading');
    // The threshold comes from values (600 in ha-monitoring.yaml).
    expect(rules().find((r) => r.alert === 'BylineShippingLag')?.expr).toMatch(/> 600$/);
  });
});

describe('Grafana dashboard', () => {
  it('names only metrics and labels the code exports, in every panel and variable', () => {
    const d = dashboard();
    const problems = d.panels.flatMap((p) =>
      p.targets.flatMap((t) => checkExpression(t.expr, known).map((x) => `${p.title}: ${x}`)),
    );
    for (const v of d.templating.list) {
      if (typeof v.query !== 'string' || !v.query.startsWith('label_values(')) continue;
      // label_values(selector, label): the label must be one the metric has.
      const m = /^label_values\((.*),\s*([a-zA-Z_]+)\)$/.exec(v.query);
      expect(m, v.query).not.toBeNull();
      problems.push(...checkExpression(`sum by (${m?.[2]}) (${m?.[1]})`, known).map((x) => `variable ${v.name}: ${x}`));
    }
    expect(problems).toEqual([]);
  });

  it('shows statements by class and status per route, denials, spool, shipping, ingest and the webhook', () => {
    const exprs = dashboard().panels.flatMap((p) => p.targets.map((t) => t.expr));
    const has = (re: RegExp) => exprs.some((e) => re.test(e));
    expect(has(/by \([^)]*route[^)]*class[^)]*\) \(rate\(byline_statements_total/)).toBe(true);
    expect(has(/by \([^)]*route[^)]*status[^)]*\) \(rate\(byline_statements_total/)).toBe(true);
    expect(has(/byline_statements_total\{[^}]*status="denied"/)).toBe(true);
    expect(has(/byline_spool_bytes/)).toBe(true);
    expect(has(/byline_spool_oldest_unshipped_seconds/)).toBe(true);
    expect(has(/byline_collector_events_stored_total/)).toBe(true);
    expect(has(/byline_operator_admissions_total/)).toBe(true);
  });
});
