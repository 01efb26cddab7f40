/** `byline sidecar`: the config from a file or an environment variable, then the proxy until a signal. */
import {
  adminAccessWarnings,
  BYLINE_VERSION,
  loadConfigFile,
  loadConfigText,
  parseListen,
  type SidecarConfig,
  SidecarConfigSchema,
  sidecarConfigRules,
  ValidationError,
} from '@byline/api';
// The sidecar's own module, not the package index: that also carries the gateway and its OIDC
// libraries (jose, openid-client), which an ES import evaluates whether used or not.
import { type RunningSidecar, startSidecar } from '@byline/sidecar/sidecar';
import type { OptionValues } from '../command-table.js';
import { serviceLogger, untilSignal } from '../service.js';

export async function run(values: OptionValues): Promise<number> {
  let config: SidecarConfig;
  try {
    config = loadConfig(values);
  } catch (e) {
    process.stderr.write(`byline sidecar: ${(e as Error).message}\n`);
    return 2;
  }
  const logger = serviceLogger(values, 'sidecar', config.log?.level);
  let running: RunningSidecar;
  try {
    running = await startSidecar(config, { logger });
  } catch (e) {
    process.stderr.write(`byline sidecar: ${(e as Error).message}\n`);
    return 1;
  }
  logger.info(startFields(config, running), `byline ${BYLINE_VERSION} sidecar started`);
  for (const warning of adminAccessWarnings(config)) logger.warn(warning);
  return untilSignal(logger, 'closing sessions and flushing the audit trail', () => running.close());
}

function loadConfig(values: OptionValues): SidecarConfig {
  const file = values.config as string | undefined;
  const env = values['config-env'] as string | undefined;
  if (file && env) throw new ValidationError('arguments', ['give --config FILE or --config-env NAME, not both']);
  if (env) {
    // In a pod the injector renders the config into an environment variable of the sidecar.
    const text = process.env[env];
    if (text === undefined) throw new ValidationError('arguments', [`environment variable ${env} is not set`]);
    return loadConfigText(text, `$${env}`, SidecarConfigSchema, 'sidecar config', sidecarConfigRules);
  }
  if (!file) throw new ValidationError('arguments', ['--config FILE (or --config-env NAME) is required']);
  return loadConfigFile(file, SidecarConfigSchema, 'sidecar config', sidecarConfigRules);
}

/** The start line: what listens where, where the trail goes, and as whom. */
function startFields(config: SidecarConfig, running: RunningSidecar): Record<string, unknown> {
  const identity = running.identity();
  return {
    version: BYLINE_VERSION,
    node: process.versions.node,
    routes: running.routes.map((r) => {
      const route = config.routes.find((c) => c.name === r.name)!;
      return {
        name: r.name,
        listen: `${r.host}:${r.port}`,
        upstream: `${route.upstream.host}:${route.upstream.port}/${route.upstream.database}`,
      };
    }),
    metrics: config.metrics ? `${parseListen(config.metrics.listen).host}:${running.metricsPort}` : null,
    sinks: config.audit.sinks.map((s) => ('file' in s ? `file:${s.file}` : s.collector.url)),
    spool: config.audit.spoolDir ?? null,
    durability: config.audit.durability ?? 'batch',
    identity: { name: identity.name, kind: identity.kind, source: identity.source },
  };
}
