/**
 * A small raw client for the Kubernetes API: JSON requests and line-delimited watch streams over
 * node:https, with credentials from a KubeConfig (client certificate, token, exec plugin). Raw
 * rather than the generated clients so that one code path serves every resource (custom ones
 * included), patches carry the content type we choose, and a watch's socket is ours to time out.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent, request as httpsRequest, type RequestOptions } from 'node:https';
import { createInterface } from 'node:readline';
import type { KubeCredentials } from './credentials.js';

/** A non-2xx answer: `status` is the HTTP status, `reason` the Status object's reason (e.g. NotFound). */
export class KubeError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
    readonly body?: unknown,
  ) {
    super(message);
    this.name = 'KubeError';
  }
}

export const isNotFound = (e: unknown): boolean => e instanceof KubeError && e.status === 404;
export const isConflict = (e: unknown): boolean => e instanceof KubeError && e.status === 409;
export const isGone = (e: unknown): boolean => e instanceof KubeError && e.status === 410;

export type PatchType = 'merge' | 'json' | 'strategic';
const PATCH_CONTENT_TYPES: Record<PatchType, string> = {
  merge: 'application/merge-patch+json',
  json: 'application/json-patch+json',
  strategic: 'application/strategic-merge-patch+json',
};

/** A running watch stream; `stop()` closes it (the `onClose` callback then runs once). */
export interface StreamHandle {
  stop(): void;
}

export interface KubeRequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  patch?: PatchType;
  timeoutMs?: number;
}

export class KubeClient {
  private readonly server: URL;
  // Keep-alive for ordinary requests; watches get sockets of their own (agent: false).
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 16 });

  /** A KubeConfig of @kubernetes/client-node, or credentials read without it (credentials.ts). */
  constructor(private readonly config: KubeCredentials) {
    const cluster = config.getCurrentCluster();
    if (!cluster) throw new Error('kubeconfig has no current cluster');
    this.server = new URL(cluster.server);
  }

  get<T>(path: string, options?: KubeRequestOptions): Promise<T> {
    return this.request<T>('GET', path, undefined, options);
  }
  create<T>(path: string, body: unknown, options?: KubeRequestOptions): Promise<T> {
    return this.request<T>('POST', path, body, options);
  }
  replace<T>(path: string, body: unknown, options?: KubeRequestOptions): Promise<T> {
    return this.request<T>('PUT', path, body, options);
  }
  patch<T>(path: string, body: unknown, options: KubeRequestOptions = {}): Promise<T> {
    return this.request<T>('PATCH', path, body, { patch: 'merge', ...options });
  }
  delete<T>(path: string, options?: KubeRequestOptions): Promise<T> {
    return this.request<T>('DELETE', path, undefined, options);
  }

  async request<T>(method: string, path: string, body?: unknown, options: KubeRequestOptions = {}): Promise<T> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: Record<string, string> = { accept: 'application/json' };
    if (payload) {
      headers['content-type'] = options.patch ? PATCH_CONTENT_TYPES[options.patch] : 'application/json';
      headers['content-length'] = String(payload.length);
    }
    const res = await this.send(method, this.url(path, options.query), headers, payload, options.timeoutMs ?? 30_000);
    const text = await readAll(res);
    const status = res.statusCode ?? 0;
    const parsed = parseJson(text);
    if (status < 200 || status >= 300) throw toKubeError(status, parsed, text, `${method} ${path}`);
    return parsed as T;
  }

  /**
   * Opens a streaming GET and hands each JSON line to `onLine`. `onClose` runs exactly once: with
   * no error when the server ended the stream, with a KubeError for a non-200 answer, or with the
   * socket's error. Nothing is retried here: the caller owns the state machine.
   */
  stream(
    path: string,
    query: KubeRequestOptions['query'],
    onLine: (value: unknown) => void,
    onClose: (err?: Error) => void,
  ): StreamHandle {
    let closed = false;
    let req: ReturnType<typeof httpsRequest> | undefined;
    const close = (err?: Error) => {
      if (closed) return;
      closed = true;
      req?.destroy();
      onClose(err);
    };
    const url = this.url(path, query);
    this.requestOptions(url, 'GET', { accept: 'application/json' }, false).then(
      (options) => {
        if (closed) return;
        req = (url.protocol === 'http:' ? httpRequest : httpsRequest)(url, options, (res) => {
          if (res.statusCode !== 200) {
            readAll(res).then(
              (text) => close(toKubeError(res.statusCode ?? 0, parseJson(text), text, `watch ${path}`)),
              (err: Error) => close(err),
            );
            return;
          }
          const lines = createInterface({ input: res, crlfDelay: Number.POSITIVE_INFINITY });
          lines.on('line', (line) => {
            if (closed || line.trim() === '') return;
            const value = parseJson(line);
            if (value === undefined) close(new Error(`watch ${path}: malformed line: ${line.slice(0, 200)}`));
            else onLine(value);
          });
          // readline re-emits its input's errors (e.g. "aborted" when the socket drops): handle both.
          lines.on('error', (err) => close(err));
          res.on('error', (err) => close(err));
          res.on('end', () => close());
          res.on('close', () => close());
        });
        req.on('error', (err) => close(err));
        req.end();
      },
      (err: Error) => close(err),
    );
    return { stop: () => close() };
  }

  close(): void {
    this.agent.destroy();
  }

  private url(path: string, query: KubeRequestOptions['query']): URL {
    const url = new URL(path, this.server);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    return url;
  }

  private async requestOptions(
    url: URL,
    method: string,
    headers: Record<string, string>,
    pooled: boolean,
  ): Promise<RequestOptions> {
    const options: RequestOptions = { method, headers: { ...headers } };
    // Adds the CA, the client certificate or the bearer token (re-read each time: tokens rotate).
    await this.config.applyToHTTPSOptions(options);
    options.headers = { ...(options.headers as Record<string, string>), ...headers };
    options.agent = pooled && url.protocol === 'https:' ? this.agent : false;
    return options;
  }

  private async send(
    method: string,
    url: URL,
    headers: Record<string, string>,
    payload: Buffer | undefined,
    timeoutMs: number,
  ): Promise<IncomingMessage> {
    const options = await this.requestOptions(url, method, headers, true);
    return new Promise((resolve, reject) => {
      const req = (url.protocol === 'http:' ? httpRequest : httpsRequest)(url, options, resolve);
      req.setTimeout(timeoutMs, () =>
        req.destroy(new Error(`${method} ${url.pathname}: no answer in ${timeoutMs} ms`)),
      );
      req.on('error', reject);
      req.end(payload);
    });
  }
}

function readAll(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.on('error', reject);
  });
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function toKubeError(status: number, parsed: unknown, text: string, what: string): KubeError {
  const s = (parsed ?? {}) as { reason?: string; message?: string };
  return new KubeError(status, s.reason ?? '', `${what}: ${status} ${s.message ?? text.slice(0, 300)}`, parsed);
}

/** API paths for the resources the operator touches. */
export const paths = {
  namespaces: () => '/api/v1/namespaces',
  namespace: (name: string) => `/api/v1/namespaces/${name}`,
  core: (plural: string, namespace?: string, name?: string) =>
    `/api/v1${namespace ? `/namespaces/${namespace}` : ''}/${plural}${name ? `/${name}` : ''}`,
  group: (group: string, version: string, plural: string, namespace?: string, name?: string) =>
    `/apis/${group}/${version}${namespace ? `/namespaces/${namespace}` : ''}/${plural}${name ? `/${name}` : ''}`,
};
