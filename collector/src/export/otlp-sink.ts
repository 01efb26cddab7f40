/**
 * The OTLP sink: each batch as OpenTelemetry log records through the official OTLP/HTTP logs
 * exporter (`@opentelemetry/exporter-logs-otlp-http`), so the wire format, its encoding and its
 * own short retries for 429/502/503/504 are OpenTelemetry's. Records are built from stored events
 * by `toOtelLog` and handed to the exporter directly, not through a LoggerProvider: the runner
 * needs to know that a batch was acknowledged before it moves its cursor.
 */
import type { AuditEvent } from '@byline/api';
import { BYLINE_VERSION } from '@byline/api';
import type { HrTime } from '@opentelemetry/api';
import type { LogAttributes } from '@opentelemetry/api-logs';
import { ExportResultCode } from '@opentelemetry/core';
import { OTLPLogExporter } from '@opentelemetry/exporter-logs-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import type { StoredEvent } from '../store/types.js';
import { toOtelLog } from './otel-log.js';
import { DeliveryError, isPermanentStatus, type Sink } from './sink.js';

export interface OtlpSinkOptions {
  url: string;
  headers: Record<string, string>;
  timeoutMs: number;
}

const hr = (ms: number): HrTime => [Math.floor(ms / 1000), (ms % 1000) * 1e6];

export class OtlpSink implements Sink {
  private readonly exporter: OTLPLogExporter;
  private readonly resource = resourceFromAttributes({ 'service.name': 'byline-collector' });
  private readonly scope = { name: '@byline/collector', version: BYLINE_VERSION };

  constructor(o: OtlpSinkOptions) {
    this.exporter = new OTLPLogExporter({ url: o.url, headers: o.headers, timeoutMillis: o.timeoutMs });
  }

  async deliver(events: readonly StoredEvent[]): Promise<void> {
    const records = events.map((e) => this.record(e));
    const result = await new Promise<{ code: ExportResultCode; error?: Error }>((resolve) =>
      this.exporter.export(records, resolve),
    );
    if (result.code === ExportResultCode.SUCCESS) return;
    const error = result.error as (Error & { code?: number }) | undefined;
    const status = typeof error?.code === 'number' ? error.code : undefined;
    throw new DeliveryError(
      `OTLP export failed${status ? ` (HTTP ${status})` : ''}: ${error?.message ?? 'no reason given'}`,
      status !== undefined && isPermanentStatus(status),
    );
  }

  private record(e: StoredEvent): ReadableLogRecord {
    const log = toOtelLog(JSON.parse(e.json) as AuditEvent, e.json, e.receivedAt);
    return {
      hrTime: hr(log.timeMs),
      hrTimeObserved: hr(log.observedMs),
      severityNumber: log.severityNumber,
      severityText: log.severityText,
      eventName: log.eventName,
      body: log.body,
      attributes: log.attributes as LogAttributes,
      droppedAttributesCount: 0,
      resource: this.resource,
      instrumentationScope: this.scope,
      ...(log.trace ? { spanContext: { ...log.trace, isRemote: true } } : {}),
    };
  }

  async close(): Promise<void> {
    await this.exporter.shutdown();
  }
}
