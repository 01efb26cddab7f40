/** The collector config's `exporters` and `retention` sections. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { CollectorConfigSchema, loadCollectorConfig } from './collector-config.js';
import { problemsOf } from './validate.js';

const dir = mkdtempSync(join(tmpdir(), 'byline-collector-config-export-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const base = {
  listen: '127.0.0.1:8443',
  store: 'sqlite:/tmp/t.db',
  auth: { static: [{ token: 'r'.repeat(20), reader: true as const }] },
};

describe('exporters and retention', () => {
  test('the documented example loads', () => {
    const path = join(dir, 'ok.yaml');
    writeFileSync(
      path,
      `listen: 127.0.0.1:8443
store: sqlite:trail.db
auth: { static: [ { token: "${'r'.repeat(20)}", reader: true } ] }
exporters:
  otlp: [ { name: otel, url: "http://otel:4318/v1/logs" } ]
  webhook:
    - { name: splunk, url: "https://splunk:8088/raw", format: ndjson, batchSize: 500, startAt: start, maxBackoffSeconds: 30, timeoutSeconds: 10, headers: { X-Source: byline } }
retention: { days: 365, namespaces: { payments: 2555 }, intervalMinutes: 60 }
`,
    );
    const { config } = loadCollectorConfig(path);
    expect(config.exporters?.webhook?.[0]?.name).toBe('splunk');
    expect(config.retention?.namespaces).toEqual({ payments: 2555 });
  });

  test('two exporters with one name are refused: each name is a cursor', () => {
    const path = join(dir, 'dup.yaml');
    writeFileSync(
      path,
      `listen: 127.0.0.1:8443
store: sqlite:trail.db
auth: { static: [ { token: "${'r'.repeat(20)}", reader: true } ] }
exporters:
  otlp: [ { name: siem, url: "http://otel:4318/v1/logs" } ]
  webhook: [ { name: siem, url: "https://splunk:8088/raw" } ]
`,
    );
    expect(() => loadCollectorConfig(path)).toThrow(
      /exporters\.webhook\[0\]\.name: "siem" is also the name of exporters\.otlp\[0\]/,
    );
  });

  test.each([
    [{ exporters: { webhook: [{ name: 'x', url: 'ftp://siem' }] } }, 'url'],
    [{ exporters: { webhook: [{ name: 'Bad Name', url: 'http://siem' }] } }, 'name'],
    [{ exporters: { otlp: [{ name: 'x', url: 'http://o', batchSize: 0 }] } }, 'batchSize'],
    [{ exporters: { otlp: [{ name: 'x', url: 'http://o', format: 'json' }] } }, 'format'],
    [{ exporters: { kafka: [] } }, 'kafka'],
    [{ retention: { days: 0 } }, 'days'],
    [{ retention: { namespaces: { payments: -1 } } }, 'payments'],
    [{ retention: { keep: 3 } }, 'keep'],
  ])('%j is refused naming %s', (extra, field) => {
    expect(problemsOf(CollectorConfigSchema, { ...base, ...extra }).join('\n')).toContain(field);
  });
});
