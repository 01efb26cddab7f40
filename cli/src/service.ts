/** What the long-running commands share: their logger from the flags, and a logged shutdown on a signal. */
import type { Logger } from 'pino';
import type { OptionValues } from './command-table.js';
import type { LogFormat } from './log-settings.js';
import { createLogger } from './logging.js';

export function serviceLogger(values: OptionValues, component: string, configLevel: string | undefined): Logger {
  return createLogger({
    format: (values['log-format'] as LogFormat | undefined) ?? 'json',
    level: (values['log-level'] as string | undefined) ?? configLevel ?? 'info',
    component,
  });
}

/**
 * Runs until SIGTERM or SIGINT, then shuts down: exit 0 when that went well, 1 when it did not.
 * The shutdown is logged in the same format as the start, so a log pipeline sees both.
 */
export function untilSignal(logger: Logger, doing: string, close: () => Promise<void>): Promise<number> {
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals) => {
      // Once per signal name: a second Ctrl-C while closing kills the process, as people expect.
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, `stopping: ${doing}`);
      close().then(
        () => {
          logger.info('stopped');
          resolve(0);
        },
        (err: Error) => {
          logger.error({ err }, 'shutdown failed');
          resolve(1);
        },
      );
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
}
