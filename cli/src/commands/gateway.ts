/** `byline gateway`: the config, the AgentIdentity watch, then the proxy until a signal. */
import { BYLINE_VERSION, type GatewayConfig, loadGatewayConfig } from '@byline/api';
import { type RunningSidecar, startGateway } from '@byline/sidecar';
import type { OptionValues } from '../command-table.js';
import { type IdentityWatch, watchIdentities } from '../gateway.js';
import { serviceLogger, untilSignal } from '../service.js';

export async function run(values: OptionValues): Promise<number> {
  let config: GatewayConfig;
  try {
    config = loadGatewayConfig(values.config as string);
  } catch (e) {
    process.stderr.write(`byline gateway: ${(e as Error).message}\n`);
    return 2;
  }
  const logger = serviceLogger(values, 'gateway', config.log?.level);
  let identities: IdentityWatch | undefined;
  let running: RunningSidecar;
  try {
    identities = await watchIdentities(values.kubeconfig as string | undefined, (m) => logger.warn(m));
    const watch = identities;
    running = await startGateway(config, { logger, identities: () => watch.list() });
  } catch (e) {
    identities?.stop();
    process.stderr.write(`byline gateway: ${(e as Error).message}\n`);
    return 1;
  }
  logger.info(
    {
      version: BYLINE_VERSION,
      routes: running.routes.map((r) => `${r.name} ${r.host}:${r.port}`),
      issuers: config.oidc.issuers.map((i) => i.issuer),
    },
    `byline ${BYLINE_VERSION} gateway started`,
  );
  return untilSignal(logger, 'closing sessions and flushing the audit trail', async () => {
    identities?.stop();
    await running.close();
  });
}
