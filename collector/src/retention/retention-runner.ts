/** Runs the config's `retention` against the store: once at start, then every `intervalMinutes`. */
import type { CollectorConfig, ReceiptSigner } from '@byline/api';
import type { Logger } from 'pino';
import { comparePositions, type FollowPosition } from '../store/follow-types.js';
import type { RetentionRules } from '../store/retention.js';
import type { EventStore } from '../store/types.js';

export interface RetentionRunner {
  /** One pass now (also what the timer runs). */
  runOnce(): Promise<void>;
  stop(): Promise<void>;
}

export function startRetention(
  retention: NonNullable<CollectorConfig['retention']>,
  store: EventStore,
  logger: Logger,
  /** The configured exporters: retention keeps what any of them has not delivered yet. */
  exporterNames: readonly string[] = [],
  /** The collector's receipt key, when configured: it signs every checkpoint. */
  receipts?: ReceiptSigner,
): RetentionRunner {
  let running: Promise<void> = Promise.resolve();
  const rules: RetentionRules = {
    ...(retention.days !== undefined ? { days: retention.days } : {}),
    ...(retention.namespaces ? { namespaces: retention.namespaces } : {}),
    ...(receipts ? { sign: (stream, checkpoint) => receipts.checkpoint(stream, checkpoint) } : {}),
  };
  const pass = async () => {
    try {
      // Nothing an exporter still owes its receiver is retired.
      let exportedThrough: FollowPosition | undefined;
      for (const name of exporterNames) {
        const at = await store.exportPosition(name);
        if (!at) {
          logger.info({ exporter: name }, 'retention waits: an exporter has not delivered anything yet');
          return;
        }
        if (!exportedThrough || comparePositions(at, exportedThrough) < 0) exportedThrough = at;
      }
      const done = await store.retire({ ...rules, ...(exportedThrough ? { exportedThrough } : {}) }, new Date());
      for (const r of done) {
        logger.info(
          { stream: r.stream, namespace: r.namespace, retired: r.retired, throughSeq: r.checkpoint.throughSeq },
          'retired events past their retention',
        );
      }
    } catch (e) {
      logger.error({ err: e }, 'retention pass failed; trying again at the next interval');
    }
  };
  const runOnce = () => {
    running = running.then(pass);
    return running;
  };
  void runOnce();
  const timer = setInterval(() => void runOnce(), (retention.intervalMinutes ?? 60) * 60_000);
  timer.unref();
  return {
    runOnce,
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
