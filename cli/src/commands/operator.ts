/** `byline operator`: the control plane, from flags, until a signal. */
import { BYLINE_VERSION } from '@byline/api';
import { type RunningOperator, startOperator } from '@byline/operator';
import { type OptionValues, UsageError } from '../command-table.js';
import { serviceLogger, untilSignal } from '../service.js';

export async function run(values: OptionValues): Promise<number> {
  const str = (k: string) => values[k] as string | undefined;
  const label = str('webhook-namespace-label');
  if (label !== undefined && !/^[^=\s]+=[^=\s]*$/.test(label)) {
    throw new UsageError(`--webhook-namespace-label: expected KEY=VALUE, got ${JSON.stringify(label)}`);
  }
  const [labelKey, labelValue] = (label ?? '').split('=');
  const timeout = str('webhook-timeout-seconds');
  const failurePolicy = str('webhook-failure-policy');
  const metricsListen = str('metrics-listen') ?? str('http-listen');
  const logger = serviceLogger(values, 'operator', undefined);
  let running: RunningOperator;
  try {
    running = await startOperator({
      namespace: str('namespace')!,
      webhookListen: str('webhook-listen')!,
      image: str('image') ?? str('sidecar-image') ?? 'ghcr.io/byline-dev/byline:0.1.0',
      collectorUrl: str('collector-url')!,
      leaderElection: values['no-leader-election'] !== true,
      webhookCaOnly: values['webhook-ca-only'] === true,
      ...(str('webhook-configuration') ? { webhookConfigurationName: str('webhook-configuration') } : {}),
      sidecarFlags: {
        cpuRequest: str('sidecar-cpu-request'),
        cpuLimit: str('sidecar-cpu-limit'),
        memoryRequest: str('sidecar-memory-request'),
        memoryLimit: str('sidecar-memory-limit'),
        spoolSize: str('sidecar-spool-size'),
        nodeOptions: str('sidecar-node-options'),
      },
      sidecarImagePullSecrets: (values['sidecar-image-pull-secret'] as string[] | undefined) ?? [],
      logger,
      ...(str('kubeconfig') ? { kubeconfig: str('kubeconfig') } : {}),
      ...(str('webhook-url') ? { webhookUrl: str('webhook-url') } : {}),
      ...(str('webhook-service') ? { webhookService: str('webhook-service') } : {}),
      ...(str('webhook-cert-dir') ? { webhookCertDir: str('webhook-cert-dir') } : {}),
      ...(str('collector-tls-secret') ? { collectorTlsSecret: str('collector-tls-secret') } : {}),
      ...(str('collector-ca-file') ? { collectorCaFile: str('collector-ca-file') } : {}),
      ...(metricsListen ? { metricsListen } : {}),
      ...(labelKey ? { webhookNamespaceLabels: { [labelKey]: labelValue ?? '' } } : {}),
      ...(timeout ? { webhookTimeoutSeconds: Number(timeout) } : {}),
      ...(failurePolicy ? { webhookFailurePolicy: failurePolicy as 'Fail' | 'Ignore' } : {}),
    });
  } catch (e) {
    process.stderr.write(`byline operator: ${(e as Error).message}\n`);
    return 1;
  }
  logger.info(
    {
      version: BYLINE_VERSION,
      node: process.versions.node,
      webhook: running.webhookUrl,
      metrics: running.metricsUrl,
      identity: running.identity,
      collector: str('collector-url'),
    },
    `byline ${BYLINE_VERSION} operator started`,
  );
  return untilSignal(logger, 'releasing the lease and stopping', () => running.close());
}
