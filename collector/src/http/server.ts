/**
 * The collector's HTTP server: a fixed table of endpoints and methods (404 for other paths, 405
 * with `Allow` for other methods), every answer timed, every error answered as JSON. Nothing a
 * client sends can take the process down: handler errors become 4xx/5xx, malformed HTTP gets a
 * JSON 400 on a closing connection.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import type { ReceiptSigner } from '@byline/api';
import type { Logger } from 'pino';
import type { Authenticator } from '../auth/authenticator.js';
import { type FollowDeps, handleFollow } from '../follow/follow-handler.js';
import { handleIngest } from '../ingest/ingest-handler.js';
import type { VerifyBatch } from '../ingest/verify-protocol.js';
import type { CollectorMetrics } from '../metrics.js';
import { handlePolicy, type PolicyDeps } from '../policy/policy-handler.js';
import { handleEventQuery, handleStreams } from '../query/query-handlers.js';
import type { EventStore } from '../store/types.js';
import { handleEvidence } from './evidence.js';
import { HttpError, sendError, sendJson, sendText } from './respond.js';
import { handleUi, isUiPath } from './ui-assets.js';
import type { UiSettings } from './ui-sign-in.js';
import { handleVerify } from './verify.js';
import { handleWhoami } from './whoami.js';

export interface ServerDeps extends PolicyDeps, Pick<FollowDeps, 'followPollMs' | 'shutdown'> {
  auth: Authenticator;
  store: EventStore;
  metrics: CollectorMetrics;
  logger: Logger;
  maxBatchBytes: number;
  maxBatchEvents: number;
  /** Signs a receipt for every key a sidecar registers (config `receipts`). */
  receipts?: ReceiptSigner;
  /** Verifies ingest batches off the event loop (VerifyPool); without it, on the event loop. */
  verify?: VerifyBatch;
  /** The viewer's OIDC sign-in and CSP (none without `auth.oidc`). */
  ui?: UiSettings;
}

type Handler = (req: IncomingMessage, res: ServerResponse, url: URL, deps: ServerDeps) => Promise<void>;

const ROUTES: Record<string, Record<string, Handler>> = {
  '/v1/events': {
    POST: (req, res, _url, deps) => handleIngest(req, res, deps),
    GET: handleEventQuery,
  },
  '/v1/events/follow': { GET: handleFollow },
  '/v1/streams': { GET: handleStreams },
  '/v1/evidence': { GET: handleEvidence },
  '/v1/verify': { GET: handleVerify },
  '/v1/whoami': { GET: handleWhoami },
  '/v1/policy': { GET: handlePolicy },
  '/metrics': {
    GET: async (_req, res, _url, deps) => {
      sendText(res, 200, await deps.metrics.registry.metrics(), {}, deps.metrics.registry.contentType);
    },
  },
  '/healthz': { GET: async (_req, res) => sendJson(res, 200, { status: 'ok' }) },
  '/readyz': {
    GET: async (_req, res, _url, deps) => {
      try {
        await deps.store.ping();
      } catch (e) {
        deps.metrics.storeErrors.inc({ operation: 'ping' });
        throw new HttpError(503, `the store is not reachable: ${(e as Error).message}`);
      }
      sendJson(res, 200, { status: 'ready' });
    },
  },
};

/** The trail viewer: every path under /ui/ (one route label in the metrics). */
const UI_ROUTE: Record<string, Handler> = {
  GET: (req, res, url, deps) => handleUi(req, res, url, deps.ui),
  HEAD: (req, res, url, deps) => handleUi(req, res, url, deps.ui),
};

export function createCollectorServer(deps: ServerDeps, tls?: { cert: Buffer; key: Buffer }): Server {
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    void handle(req, res, deps);
  };
  // An https.Server is an http.Server as far as the handlers and shutdown are concerned.
  const server = tls
    ? (createHttpsServer({ cert: tls.cert, key: tls.key }, handler) as unknown as Server)
    : createServer(handler);
  server.on('clientError', (error: Error & { code?: string }, socket: Socket) => {
    if (!socket.writable || error.code === 'ECONNRESET') {
      socket.destroy();
      return;
    }
    const [status, reason] =
      error.code === 'HPE_HEADER_OVERFLOW' ? [431, 'Request Header Fields Too Large'] : [400, 'Bad Request'];
    const body = JSON.stringify({ error: `malformed HTTP request (${error.code ?? error.message})` });
    socket.end(
      `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  });
  return server;
}

async function handle(req: IncomingMessage, res: ServerResponse, deps: ServerDeps): Promise<void> {
  const started = process.hrtime.bigint();
  let route = 'unknown';
  try {
    const url = new URL(req.url ?? '/', 'http://collector');
    const ui = isUiPath(url.pathname);
    const methods = ui ? UI_ROUTE : ROUTES[url.pathname];
    if (!methods) {
      throw new HttpError(404, `no such endpoint: ${req.method} ${url.pathname}`, {
        endpoints: [...Object.keys(ROUTES), '/ui/'],
      });
    }
    route = ui ? '/ui/' : url.pathname;
    const handler = methods[req.method ?? ''];
    if (!handler) {
      const allow = Object.keys(methods).join(', ');
      throw new HttpError(405, `${req.method} is not allowed on ${url.pathname}; use ${allow}`, {}, { Allow: allow });
    }
    await handler(req, res, url, deps);
  } catch (e) {
    if (e instanceof HttpError) {
      sendError(req, res, e);
    } else {
      deps.logger.error({ err: e, method: req.method, url: req.url }, 'request failed');
      sendError(req, res, new HttpError(500, 'internal error; the collector logged the details'));
    }
  } finally {
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    deps.metrics.requestDuration.observe({ method: req.method ?? '', route, status: String(res.statusCode) }, seconds);
  }
}
