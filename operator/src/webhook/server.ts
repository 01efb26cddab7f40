/**
 * The webhook's HTTPS server: POST /mutate-pods answered by the pure admission core
 * (handleAdmissionHttp) from this replica's caches, plus GET /healthz. Stateless, so every replica
 * serves it, leader or not. The certificate can be swapped while running (setSecureContext) when the
 * Secret rotates.
 */

import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { type HttpAnswer, handleAdmissionHttp, type NamespaceLookup } from '../injection/admission.js';
import type { InjectionOptions } from '../injection/types.js';
import type { OperatorMetrics } from '../metrics.js';
import { MUTATE_PATH } from './registration.js';

/** An AdmissionReview of a pod is far below this (etcd caps objects at 1.5 MiB). */
const MAX_BODY_BYTES = 4 * 1024 * 1024;

export interface WebhookServerOptions {
  listen: { host: string; port: number };
  tls: { certPem: string; keyPem: string };
  lookup: NamespaceLookup;
  injection: InjectionOptions;
  metrics: OperatorMetrics;
  log?: (level: 'info' | 'warn', fields: Record<string, unknown>, message: string) => void;
  /** More webhooks on the same server, by path (the Approval webhook). */
  routes?: Map<string, (req: IncomingMessage, res: ServerResponse) => void>;
}

export interface WebhookServer {
  /** https://host:port */
  url: string;
  port: number;
  setCertificate(tls: { certPem: string; keyPem: string }): void;
  close(): Promise<void>;
}

/** outcome and reason labels for byline_operator_admissions_total. */
export function admissionLabels(answer: HttpAnswer): { outcome: string; reason: string } {
  if (answer.result) return { outcome: answer.result.outcome, reason: answer.result.reason };
  if (answer.status !== 200) return { outcome: 'error', reason: `HTTP${answer.status}` };
  try {
    const review = JSON.parse(answer.body) as { response?: { status?: { reason?: string } } };
    return { outcome: 'error', reason: review.response?.status?.reason ?? 'Unknown' };
  } catch {
    return { outcome: 'error', reason: 'Unknown' };
  }
}

export async function startWebhookServer(o: WebhookServerOptions): Promise<WebhookServer> {
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz' && req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      return;
    }
    const route = o.routes?.get(path ?? '');
    if (route) {
      route(req, res);
      return;
    }
    if (path !== MUTATE_PATH) {
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'not found' }));
      return;
    }
    if (req.method !== 'POST') {
      res
        .writeHead(405, { allow: 'POST', 'content-type': 'application/json' })
        .end(JSON.stringify({ error: 'POST only' }));
      return;
    }
    const end = o.metrics.admissionDuration.startTimer();
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk: Buffer) => {
      if (tooLarge) return;
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        tooLarge = true;
        o.metrics.admissions.inc({ outcome: 'error', reason: 'TooLarge' });
        end({ outcome: 'error' });
        res
          .writeHead(413, { 'content-type': 'application/json', connection: 'close' })
          .end(JSON.stringify({ error: `byline: an AdmissionReview above ${MAX_BODY_BYTES} bytes` }));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (tooLarge) return;
      let answer: HttpAnswer;
      try {
        answer = handleAdmissionHttp(Buffer.concat(chunks), req.headers['content-type'], o.lookup, o.injection);
      } catch (err) {
        // The core promises not to throw; if it ever does, the API server still gets an answer.
        answer = { status: 500, body: JSON.stringify({ error: `byline: ${(err as Error).message}` }), result: null };
      }
      const labels = admissionLabels(answer);
      o.metrics.admissions.inc(labels);
      end({ outcome: labels.outcome });
      if (answer.result && answer.result.outcome !== 'skipped') {
        o.log?.('info', { ...labels, message: answer.result.message, identity: answer.result.identity }, 'admission');
      }
      res.writeHead(answer.status, { 'content-type': 'application/json' }).end(answer.body);
    });
    req.on('error', () => res.destroy());
  };

  const server: Server = createServer({ cert: o.tls.certPem, key: o.tls.keyPem, minVersion: 'TLSv1.2' }, handle);
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.listen.port, o.listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `https://${host}:${address.port}`,
    port: address.port,
    setCertificate: (tls) => server.setSecureContext({ cert: tls.certPem, key: tls.keyPem, minVersion: 'TLSv1.2' }),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
