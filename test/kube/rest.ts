/**
 * Plain HTTPS requests to the test API server as its admin, for what the typed client hides: the
 * Table API's Accept header, `fieldValidation`, server-side apply, and the Status body of a refusal.
 */
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import type { ProvidedControlPlane } from './global-setup.js';

export interface KubeResponse {
  status: number;
  /** Parsed JSON when the body is JSON, else the text. */
  body: unknown;
}

export interface KubeRequest {
  body?: unknown;
  /** Default application/json. */
  contentType?: string;
  accept?: string;
}

export type Rest = (method: string, path: string, options?: KubeRequest) => Promise<KubeResponse>;

export function kubeRest(plane: ProvidedControlPlane): Rest {
  const tls = {
    ca: readFileSync(plane.caFile),
    cert: readFileSync(plane.adminCertFile),
    key: readFileSync(plane.adminKeyFile),
  };
  return (method, path, options = {}) =>
    new Promise((resolve, reject) => {
      const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
      const req = request(
        `${plane.server}${path}`,
        {
          ...tls,
          method,
          timeout: 30_000,
          headers: {
            accept: options.accept ?? 'application/json',
            ...(payload === undefined
              ? {}
              : {
                  'content-type': options.contentType ?? 'application/json',
                  'content-length': Buffer.byteLength(payload),
                }),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (d: Buffer) => chunks.push(d));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString();
            let body: unknown = text;
            try {
              body = JSON.parse(text);
            } catch {}
            resolve({ status: res.statusCode ?? 0, body });
          });
        },
      );
      req.on('error', reject);
      req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timeout`)));
      req.end(payload);
    });
}

/** The `message` of a Status body (what kubectl prints after "Error from server"). */
export function statusMessage(res: KubeResponse): string {
  const body = res.body as { message?: unknown } | string;
  return typeof body === 'object' && typeof body.message === 'string' ? body.message : String(body);
}
