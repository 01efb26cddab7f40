/** The exporters of the collector config (`exporters.otlp`, `exporters.webhook`), started against the store. */
import { readFileSync } from 'node:fs';
import { type CollectorConfig, checkExporterNames } from '@byline/api';
import type { Logger } from 'pino';
import type { CollectorMetrics } from '../metrics.js';
import type { EventStore } from '../store/types.js';
import { ExportRunner } from './export-runner.js';
import type { Sink } from './sink.js';
import { WebhookSink } from './webhook-sink.js';

export interface ExportTuning {
  /** Pause when the store has nothing new (default 500 ms). */
  idleMs?: number;
  /** First retry pause (default 500 ms). */
  initialBackoffMs?: number;
}

type Common = NonNullable<NonNullable<CollectorConfig['exporters']>['webhook']>[number];

export async function startExporters(
  config: CollectorConfig,
  store: EventStore,
  metrics: CollectorMetrics,
  logger: Logger,
  tuning: ExportTuning = {},
): Promise<ExportRunner[]> {
  checkExporterNames(config);
  const made: { settings: Common; sink: Sink }[] = [];
  const otlp = config.exporters?.otlp ?? [];
  // OpenTelemetry's exporter is loaded only when one is configured.
  const { OtlpSink } = otlp.length > 0 ? await import('./otlp-sink.js') : { OtlpSink: undefined };
  for (const [i, e] of otlp.entries()) {
    if (!OtlpSink) break;
    made.push({
      settings: e,
      sink: new OtlpSink({ url: e.url, headers: headers(e, `exporters.otlp[${i}]`), timeoutMs: timeout(e) }),
    });
  }
  for (const [i, e] of (config.exporters?.webhook ?? []).entries()) {
    const sink = new WebhookSink({
      url: e.url,
      headers: headers(e, `exporters.webhook[${i}]`),
      format: e.format ?? 'ndjson',
      timeoutMs: timeout(e),
    });
    made.push({ settings: e, sink });
  }
  return made.map(({ settings: e, sink }) => {
    const log = logger.child({ exporter: e.name });
    log.info({ url: redactUrl(e.url) }, 'exporter starting');
    return new ExportRunner({
      name: e.name,
      store,
      sink,
      logger: log,
      batchSize: e.batchSize ?? 500,
      startAt: e.startAt ?? 'start',
      maxBackoffMs: (e.maxBackoffSeconds ?? 30) * 1000,
      ...(tuning.idleMs !== undefined ? { idleMs: tuning.idleMs } : {}),
      ...(tuning.initialBackoffMs !== undefined ? { initialBackoffMs: tuning.initialBackoffMs } : {}),
      onDelivered: (n) => metrics.exported.inc({ exporter: e.name, outcome: 'delivered' }, n),
      onDeadLetters: (n) => metrics.exported.inc({ exporter: e.name, outcome: 'dead_letter' }, n),
      onFailure: () => metrics.exportFailures.inc({ exporter: e.name }),
    }).start();
  });
}

function headers(e: Common, field: string): Record<string, string> {
  const out = { ...(e.headers ?? {}) };
  if (e.authorizationFile !== undefined) {
    try {
      out.authorization = readFileSync(e.authorizationFile, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      throw new Error(`${field}.authorizationFile: cannot read ${e.authorizationFile}: ${(err as Error).message}`);
    }
  }
  return out;
}

const timeout = (e: Common) => (e.timeoutSeconds ?? 10) * 1000;

/** Credentials in a URL stay out of the log. */
function redactUrl(url: string): string {
  const u = new URL(url);
  if (u.password) u.password = '***';
  return u.toString();
}
