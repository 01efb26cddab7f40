/**
 * Approvals in the operator: the admission handler (served by the webhook server on APPROVAL_PATH),
 * the webhook's registration, and the lifecycle controller over a cache of every Approval.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Approval, crds } from '@byline/api';
import type { Logger } from 'pino';
import { Counter } from 'prom-client';
import { type KubeClient, paths } from '../kube/client.js';
import { httpTransport, WatchCache } from '../kube/watch-cache.js';
import type { OperatorMetrics } from '../metrics.js';
import { ensureWebhookConfiguration, type WebhookTarget } from '../webhook/registration.js';
import { handleApprovalHttp } from './admission.js';
import { ApprovalController } from './controller.js';
import { approveAccessReview, identityLookup } from './kube.js';
import { APPROVAL_PATH, desiredApprovalWebhookConfiguration } from './registration.js';

export { admitApproval, parseDuration } from './admission.js';
export { approvalAction } from './lifecycle.js';
export {
  APPROVAL_PATH,
  APPROVAL_WEBHOOK_CONFIGURATION_NAME,
  desiredApprovalWebhookConfiguration,
} from './registration.js';

/** An Approval's AdmissionReview is a few KiB; etcd caps objects at 1.5 MiB. */
const MAX_BODY_BYTES = 4 * 1024 * 1024;

export interface ApprovalsOptions {
  client: KubeClient;
  identities: WatchCache<crds.AgentIdentity>;
  routes: WatchCache<crds.DatabaseRoute>;
  isLeader: () => boolean;
  logger: Logger;
  metrics: OperatorMetrics;
  watchTimeoutSeconds?: number;
  now?: () => Date;
}

export interface Approvals {
  /** Serves POST APPROVAL_PATH (for the webhook server's `routes`). */
  routes: Map<string, (req: IncomingMessage, res: ServerResponse) => void>;
  cache: WatchCache<Approval & { metadata: { name: string } }>;
  start(): void;
  /** After gaining the lease. */
  resume(): void;
  stop(): void;
  /** Creates or updates the approvals webhook configuration; returns whether it wrote. */
  register(
    target: WebhookTarget,
    caBundlePem: string,
    settings?: Parameters<typeof desiredApprovalWebhookConfiguration>[2],
  ): Promise<boolean>;
}

export function createApprovals(o: ApprovalsOptions): Approvals {
  const now = o.now ?? (() => new Date());
  const admissions = new Counter({
    name: 'byline_operator_approval_admissions_total',
    help: 'Approval admission reviews answered, by outcome (allowed, denied, error).',
    labelNames: ['outcome'],
    registers: [o.metrics.registry],
  });
  const deps = {
    now,
    identity: identityLookup(o.identities, o.client),
    route: (namespace: string, name: string) => o.routes.get(namespace, name),
    mayApprove: approveAccessReview(o.client),
  };
  const cache = new WatchCache<Approval & { metadata: { name: string } }>({
    name: 'approvals',
    transport: httpTransport(o.client, paths.group('byline.dev', 'v1alpha1', 'approvals')),
    ...(o.watchTimeoutSeconds !== undefined ? { timeoutSeconds: o.watchTimeoutSeconds } : {}),
  });
  const controller = new ApprovalController({
    client: o.client,
    approvals: cache,
    isLeader: o.isLeader,
    logger: o.logger,
    now: () => now().getTime(),
  });

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    if (req.method !== 'POST') {
      res.writeHead(405, { allow: 'POST', 'content-type': 'application/json' }).end('{"error":"POST only"}');
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        admissions.inc({ outcome: 'error' });
        res
          .writeHead(413, { 'content-type': 'application/json', connection: 'close' })
          .end(JSON.stringify({ error: `byline: an AdmissionReview above ${MAX_BODY_BYTES} bytes` }));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (size > MAX_BODY_BYTES) return;
      handleApprovalHttp(Buffer.concat(chunks), req.headers['content-type'], deps).then(
        (answer) => {
          admissions.inc({ outcome: answer.outcome });
          if (answer.outcome !== 'allowed')
            o.logger.info({ outcome: answer.outcome, message: answer.message }, 'approval admission');
          res.writeHead(answer.status, { 'content-type': 'application/json' }).end(answer.body);
        },
        (err: Error) => {
          admissions.inc({ outcome: 'error' });
          res
            .writeHead(500, { 'content-type': 'application/json' })
            .end(JSON.stringify({ error: `byline: ${err.message}` }));
        },
      );
    });
    req.on('error', () => res.destroy());
  };

  return {
    routes: new Map([[APPROVAL_PATH, handle]]),
    cache,
    start: () => {
      cache.start();
      controller.start();
    },
    resume: () => controller.resume(),
    stop: () => {
      controller.stop();
      cache.stop();
    },
    register: (target, caBundlePem, settings) =>
      ensureWebhookConfiguration(o.client, desiredApprovalWebhookConfiguration(target, caBundlePem, settings)),
  };
}
