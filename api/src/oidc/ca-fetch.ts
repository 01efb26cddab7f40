/**
 * A `fetch` that trusts a given CA bundle, for the customFetch hooks of openid-client and jose: an
 * issuer with a private CA (a cluster's API server, a company IdP) without touching the process's
 * trust store. Node's global fetch takes no CA, so this speaks https.request and answers a Response.
 * `bearerTokenFile` (read per request, so a rotated token applies) authenticates to issuers whose
 * discovery needs it, like the Kubernetes API server's service-account issuer.
 */
import { readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';

const MAX_BODY_BYTES = 1024 * 1024;

export type FetchLike = (url: string, init?: RequestInit) => Promise<Response>;

export function caFetch(ca: string | Buffer | undefined, options: { bearerTokenFile?: string } = {}): FetchLike {
  return (url, init = {}) =>
    new Promise<Response>((resolve, reject) => {
      const target = new URL(url);
      if (target.protocol !== 'https:') {
        reject(new Error(`refusing ${target.protocol} URL ${target.origin}: only https is fetched with a CA`));
        return;
      }
      const headers: Record<string, string> = {};
      new Headers(init.headers).forEach((v, k) => {
        headers[k] = v;
      });
      if (options.bearerTokenFile !== undefined) {
        try {
          headers.authorization = `Bearer ${readFileSync(options.bearerTokenFile, 'utf8').trim()}`;
        } catch (e) {
          reject(new Error(`cannot read bearerTokenFile ${options.bearerTokenFile}: ${(e as Error).message}`));
          return;
        }
      }
      // No keep-alive: these fetches are rare, and a pooled socket the issuer has since closed would fail one.
      const req = httpsRequest(target, {
        method: init.method ?? 'GET',
        headers,
        ...(ca === undefined ? {} : { ca }),
        agent: false,
        signal: init.signal ?? undefined,
      });
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          // Discovery documents and key sets are a few KiB: a huge answer is an attack or a mistake.
          if (size > MAX_BODY_BYTES) {
            req.destroy(new Error(`${target.origin}${target.pathname} answered more than ${MAX_BODY_BYTES} bytes`));
            return;
          }
          chunks.push(c);
        });
        res.on('error', reject);
        res.on('end', () => {
          const out = new Headers();
          for (const [k, v] of Object.entries(res.headers)) {
            if (Array.isArray(v)) for (const x of v) out.append(k, x);
            else if (v !== undefined) out.set(k, v);
          }
          const status = res.statusCode ?? 500;
          const body = status === 204 || status === 304 ? null : Buffer.concat(chunks);
          resolve(new Response(body, { status, statusText: res.statusMessage ?? '', headers: out }));
        });
      });
      req.on('error', reject);
      if (init.body !== undefined && init.body !== null)
        req.end(typeof init.body === 'string' ? init.body : String(init.body));
      else req.end();
    });
}
