/**
 * TLS for the collector inside the cluster. The CA that signed the collector's serving certificate
 * reaches every injected sidecar inline (caPem in its config), so nothing is mounted into agent
 * namespaces. Two sources:
 * - operator: the operator issues the serving certificate into a Secret of its own namespace (the
 *   collector Deployment mounts it) and keeps it current, like the webhook's (tls-secret.ts);
 * - caFile: someone else issues it (cert-manager, an existing Secret); the operator only reads the
 *   CA bundle from a mounted file, re-read on every check so a renewed CA is picked up.
 */
import { readFileSync } from 'node:fs';
import type { KubeClient } from '../kube/client.js';
import { parseBundle, webhookNames } from '../webhook/certificates.js';
import { type EnsureResult, ensureTlsSecret } from '../webhook/tls-secret.js';

export type CollectorTlsSource = { secretName: string } | { caFile: string };

export interface CollectorTlsFlags {
  collectorUrl: string;
  /** The operator's namespace, where the Secret is written (the collector must run there to mount it). */
  namespace: string;
  /** --collector-tls-secret: the operator issues the collector's certificate into this Secret. */
  collectorTlsSecret?: string;
  /** --collector-ca-file: the collector's CA bundle, issued elsewhere. */
  collectorCaFile?: string;
}

/** Which source the flags name (none: sidecars use the system trust store or plain HTTP), or why they conflict. */
export function collectorTlsSource(flags: CollectorTlsFlags): CollectorTlsSource | undefined | { problem: string } {
  const { collectorUrl, namespace, collectorTlsSecret, collectorCaFile } = flags;
  if (collectorTlsSecret !== undefined && collectorCaFile !== undefined)
    return { problem: 'give --collector-tls-secret or --collector-ca-file, not both' };
  if (collectorTlsSecret === undefined && collectorCaFile === undefined) return undefined;
  let protocol: string;
  try {
    protocol = new URL(collectorUrl).protocol;
  } catch {
    return { problem: `--collector-url is not a URL: ${collectorUrl}` };
  }
  const flag = collectorTlsSecret !== undefined ? '--collector-tls-secret' : '--collector-ca-file';
  if (protocol !== 'https:')
    return { problem: `${flag} needs an https:// --collector-url (sidecars would not use TLS), got ${collectorUrl}` };
  if (collectorTlsSecret !== undefined) {
    if (!/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(collectorTlsSecret))
      return { problem: `--collector-tls-secret: not a valid Secret name: ${JSON.stringify(collectorTlsSecret)}` };
    const other = serviceOf(collectorUrl)?.namespace;
    if (other !== undefined && other !== namespace)
      return {
        problem: `--collector-tls-secret: the Secret is written in ${namespace}, but --collector-url names a Service in ${other}, where the collector could not mount it`,
      };
    return { secretName: collectorTlsSecret };
  }
  return { caFile: collectorCaFile! };
}

/**
 * The names the collector's certificate covers: for a Service host (`svc.ns.svc[.cluster.local]`,
 * `svc.ns`) all of that Service's names, else the URL's host alone.
 */
export function collectorNames(collectorUrl: string): string[] {
  const service = serviceOf(collectorUrl);
  if (service) return webhookNames(service);
  return [new URL(collectorUrl).hostname.replace(/^\[(.*)\]$/, '$1')];
}

/** The Service a URL's host names (`svc.ns`, `svc.ns.svc`, `svc.ns.svc.cluster.local`), if it names one. */
function serviceOf(url: string): { service: string; namespace: string } | undefined {
  const match = /^([a-z0-9-]+)\.([a-z0-9-]+)(\.svc(\.cluster\.local)?)?$/.exec(new URL(url).hostname);
  return match ? { service: match[1]!, namespace: match[2]! } : undefined;
}

/** A CA bundle as sidecars get it: only whole certificates, or the reason it is unusable. */
export function caBundleProblem(pem: string, where: string): string | undefined {
  const certs = parseBundle(pem);
  if (certs.length === 0) return `${where}: no PEM certificate in it`;
  const notCa = certs.find((c) => !c.ca);
  if (notCa) return `${where}: ${notCa.subject.replace(/\n/g, ', ')} is not a CA certificate`;
  return undefined;
}

export const COLLECTOR_TLS = { caCommonName: 'byline-collector-ca' };

/**
 * The collector's CA bundle now: issued or renewed in the Secret (source secretName; the collector
 * must live in `namespace`, the operator's), or read from the file. Throws with the reason.
 */
export async function currentCollectorCa(
  client: KubeClient,
  namespace: string,
  collectorUrl: string,
  source: CollectorTlsSource,
  now: () => Date = () => new Date(),
): Promise<{ caPem: string; issued?: EnsureResult['issued']; why?: string }> {
  if ('caFile' in source) {
    let pem: string;
    try {
      pem = readFileSync(source.caFile, 'utf8');
    } catch (err) {
      throw new Error(`--collector-ca-file ${source.caFile}: cannot read it: ${(err as Error).message}`);
    }
    const problem = caBundleProblem(pem, `--collector-ca-file ${source.caFile}`);
    if (problem) throw new Error(problem);
    return { caPem: pem };
  }
  const result = await ensureTlsSecret(client, namespace, collectorNames(collectorUrl), now, {
    secretName: source.secretName,
    caCommonName: COLLECTOR_TLS.caCommonName,
  });
  return {
    caPem: result.material.caBundlePem,
    issued: result.issued,
    ...(result.why ? { why: result.why } : {}),
  };
}
