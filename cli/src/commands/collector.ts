/** `byline collector`: validates the config, then receives and serves the trail until a signal. */
import { BYLINE_VERSION, type CollectorConfig, loadCollectorConfig } from '@byline/api';
import { type RunningCollector, redact, startCollector } from '@byline/collector';
import type { OptionValues } from '../command-table.js';
import { serviceLogger, untilSignal } from '../service.js';

export async function run(values: OptionValues): Promise<number> {
  let config: CollectorConfig;
  try {
    config = loadCollectorConfig(values.config as string).config;
  } catch (e) {
    process.stderr.write(`byline collector: ${(e as Error).message}\n`);
    return 2;
  }
  const logger = serviceLogger(values, 'collector', config.log?.level);
  let running: RunningCollector;
  try {
    // Its authenticator from the config: static tokens (validated above), then auth.kubernetes.
    running = await startCollector(config, { logger });
  } catch (e) {
    process.stderr.write(`byline collector: ${(e as Error).message}\n`);
    return 1;
  }
  logger.info(
    {
      version: BYLINE_VERSION,
      node: process.versions.node,
      url: running.url,
      store: redact(config.store),
      auth: [...(config.auth.static ? ['static'] : []), ...(config.auth.kubernetes ? ['kubernetes'] : [])],
      metrics: `${running.url}/metrics`,
    },
    `byline ${BYLINE_VERSION} collector started`,
  );
  return untilSignal(logger, 'finishing requests in flight and closing the store', () => running.close());
}
