/**
 * The webhook's TLS material, kept in the Secret `byline-webhook-tls` of the operator's namespace
 * (type kubernetes.io/tls: tls.crt, tls.key, plus ca.crt — the bundle for the caBundle — and ca.key).
 * Every replica calls ensureTlsSecret on start and periodically: it creates the Secret when missing,
 * reissues the serving certificate within 30 days of expiry or when the names change, and replaces
 * the CA within 30 days of its expiry (keeping the old CA in ca.crt while it is valid). Writes are
 * conditional (create, or update at the read resourceVersion): when two replicas race, one wins and
 * the other re-reads and uses the winner's certificates.
 *
 * The alternative, for cert-manager users: `--webhook-cert-dir DIR` with its mounted tls.crt, tls.key
 * and ca.crt (loadCertDir); the Secret is then neither read nor written.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isConflict, isNotFound, type KubeClient, paths } from '../kube/client.js';
import {
  caBundleAfterRotation,
  caProblem,
  createCA,
  issueServing,
  type KeyPairPem,
  servingProblem,
} from './certificates.js';

export const TLS_SECRET_NAME = 'byline-webhook-tls';

/** Which Secret holds the material, and the name its CA is issued under. */
export interface TlsSecretTarget {
  secretName: string;
  caCommonName: string;
}

export const WEBHOOK_TLS: TlsSecretTarget = { secretName: TLS_SECRET_NAME, caCommonName: 'byline-webhook-ca' };

export interface ServingMaterial {
  certPem: string;
  keyPem: string;
  /** PEM bundle for the MutatingWebhookConfiguration's caBundle. */
  caBundlePem: string;
}

interface Secret {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace: string; resourceVersion?: string; labels?: Record<string, string> };
  type?: string;
  data?: Record<string, string>;
}

const b64 = (s: string) => Buffer.from(s).toString('base64');
const unb64 = (s: string | undefined) => (s === undefined ? undefined : Buffer.from(s, 'base64').toString('utf8'));

export function materialOf(secret: Pick<Secret, 'data'>): ServingMaterial & { caKeyPem?: string } {
  const d = secret.data ?? {};
  const caKeyPem = unb64(d['ca.key']);
  return {
    certPem: unb64(d['tls.crt']) ?? '',
    keyPem: unb64(d['tls.key']) ?? '',
    caBundlePem: unb64(d['ca.crt']) ?? '',
    ...(caKeyPem ? { caKeyPem } : {}),
  };
}

/** What must change in the stored material: nothing, the serving certificate, or the CA too. */
export function planRotation(
  stored: (ServingMaterial & { caKeyPem?: string }) | undefined,
  names: string[],
  now: Date,
): { action: 'keep' | 'serving' | 'ca'; why?: string } {
  if (!stored) return { action: 'ca', why: 'no Secret yet' };
  const ca: Partial<KeyPairPem> = {
    certPem: stored.caBundlePem,
    ...(stored.caKeyPem ? { keyPem: stored.caKeyPem } : {}),
  };
  const caWhy = caProblem(ca, now);
  if (caWhy) return { action: 'ca', why: caWhy };
  const servingWhy = servingProblem({ certPem: stored.certPem, keyPem: stored.keyPem }, stored.caBundlePem, names, now);
  if (servingWhy) return { action: 'serving', why: servingWhy };
  return { action: 'keep' };
}

export interface EnsureResult {
  material: ServingMaterial;
  /** What this call issued, if anything. */
  issued: 'none' | 'serving' | 'ca';
  why?: string;
}

export async function ensureTlsSecret(
  client: KubeClient,
  namespace: string,
  names: string[],
  now: () => Date = () => new Date(),
  target: TlsSecretTarget = WEBHOOK_TLS,
): Promise<EnsureResult> {
  const { secretName } = target;
  const path = paths.core('secrets', namespace, secretName);
  for (let attempt = 0; attempt < 5; attempt++) {
    let existing: Secret | undefined;
    try {
      existing = await client.get<Secret>(path);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    const stored = existing ? materialOf(existing) : undefined;
    const plan = planRotation(stored, names, now());
    if (plan.action === 'keep' && stored) return { material: stored, issued: 'none' };

    let ca: KeyPairPem;
    let caBundlePem: string;
    if (plan.action === 'ca') {
      ca = await createCA(now(), target.caCommonName);
      caBundlePem = caBundleAfterRotation(ca.certPem, stored?.caBundlePem, now());
    } else {
      ca = { certPem: stored!.caBundlePem, keyPem: stored!.caKeyPem! };
      caBundlePem = stored!.caBundlePem;
    }
    const serving = await issueServing(ca, names, now());
    const body: Secret = {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {
        name: secretName,
        namespace,
        labels: { 'app.kubernetes.io/managed-by': 'byline-operator' },
        ...(existing?.metadata.resourceVersion ? { resourceVersion: existing.metadata.resourceVersion } : {}),
      },
      type: 'kubernetes.io/tls',
      data: {
        'tls.crt': b64(serving.certPem),
        'tls.key': b64(serving.keyPem),
        'ca.crt': b64(caBundlePem),
        'ca.key': b64(plan.action === 'ca' ? ca.keyPem : stored!.caKeyPem!),
      },
    };
    try {
      if (existing) await client.replace(path, body);
      else await client.create(paths.core('secrets', namespace), body);
      return {
        material: { certPem: serving.certPem, keyPem: serving.keyPem, caBundlePem },
        issued: plan.action === 'ca' ? 'ca' : 'serving',
        ...(plan.why ? { why: plan.why } : {}),
      };
    } catch (err) {
      // Another replica wrote first: read its version and judge that instead.
      if (isConflict(err)) continue;
      throw err;
    }
  }
  throw new Error(`Secret ${namespace}/${secretName} kept changing under us; giving up for now`);
}

/** cert-manager (or any other issuer) mode: tls.crt, tls.key and ca.crt from a mounted directory. */
export function loadCertDir(dir: string): ServingMaterial {
  const read = (f: string) => {
    try {
      return readFileSync(join(dir, f), 'utf8');
    } catch (err) {
      throw new Error(`--webhook-cert-dir ${dir}: cannot read ${f}: ${(err as Error).message}`);
    }
  };
  return { certPem: read('tls.crt'), keyPem: read('tls.key'), caBundlePem: read('ca.crt') };
}
