/**
 * A renewed certificate without a restart: the kubelet updates a mounted Secret in place (the
 * operator or cert-manager reissues it before expiry), so the files are re-read every interval and,
 * when they changed and the new key matches the new certificate, the server's context is replaced.
 * A half-written pair (certificate and key from different issues) is skipped until the next read.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Server as HttpsServer } from 'node:https';
import type { Logger } from 'pino';

export interface TlsFiles {
  certFile: string;
  keyFile: string;
}

/** Why this pair cannot be served (unreadable, unparsable, mismatched), or the pair. Pure apart from the reads. */
export function readServingPair(files: TlsFiles): { cert: Buffer; key: Buffer } | { problem: string } {
  let cert: Buffer;
  let key: Buffer;
  try {
    cert = readFileSync(files.certFile);
    key = readFileSync(files.keyFile);
  } catch (e) {
    return { problem: `cannot read the certificate or key: ${(e as Error).message}` };
  }
  try {
    if (!new X509Certificate(cert).checkPrivateKey(createPrivateKey(key)))
      return { problem: `${files.keyFile} is not the key of ${files.certFile}` };
  } catch (e) {
    return { problem: `cannot parse the certificate or key: ${(e as Error).message}` };
  }
  return { cert, key };
}

/** Starts re-reading; returns the stop function. */
export function reloadTlsEvery(
  server: HttpsServer,
  files: TlsFiles,
  current: { cert: Buffer; key: Buffer },
  intervalMs: number,
  logger: Logger,
): () => void {
  let served = current;
  let lastProblem = '';
  const timer = setInterval(() => {
    const pair = readServingPair(files);
    if ('problem' in pair) {
      if (pair.problem !== lastProblem) logger.warn({ problem: pair.problem }, 'keeping the served certificate');
      lastProblem = pair.problem;
      return;
    }
    lastProblem = '';
    if (pair.cert.equals(served.cert) && pair.key.equals(served.key)) return;
    server.setSecureContext({ cert: pair.cert, key: pair.key });
    served = pair;
    logger.info({ validTo: new X509Certificate(pair.cert).validTo }, 'serving the renewed certificate');
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
