/**
 * The webhook's certificates: a self-signed CA and a serving certificate it signs for the webhook's
 * DNS names and IP addresses. Keys come from node:crypto (native RSA key generation); node-forge
 * builds and signs the certificates (Node has no API for issuing them); node:crypto's
 * X509Certificate reads them back. All pure apart from key generation: no Kubernetes here.
 */
import { createPrivateKey, generateKeyPair, randomBytes, X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { promisify } from 'node:util';
import type forgeModule from 'node-forge';

type Forge = typeof forgeModule;
/** node-forge (~10 MiB resident) is needed only to issue certificates, not by an operator whose Secret holds valid ones. */
const loadForge = async (): Promise<Forge> => (await import('node-forge')).default;

export const DAY_MS = 24 * 60 * 60 * 1000;
/** Rotate a certificate this long before it expires. */
export const RENEW_BEFORE_MS = 30 * DAY_MS;
export const CA_VALIDITY_MS = 5 * 365 * DAY_MS;
export const SERVING_VALIDITY_MS = 365 * DAY_MS;

export interface KeyPairPem {
  certPem: string;
  keyPem: string;
}

export interface WebhookCertificates {
  ca: KeyPairPem;
  serving: KeyPairPem;
  /** The PEM bundle clients trust: the current CA, then a previous one that may still sign live serving certs. */
  caBundle: string;
}

const generate = promisify(generateKeyPair);

async function rsaKey(): Promise<{ publicPem: string; privatePem: string }> {
  const { publicKey, privateKey } = await generate('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
  });
  return { publicPem: publicKey, privatePem: privateKey };
}

/** A positive serial of 16 random bytes (RFC 5280: at most 20 octets, non-negative). */
const serial = () => `01${randomBytes(15).toString('hex')}`;

function build(
  forge: Forge,
  subjectCN: string,
  publicPem: string,
  notBefore: Date,
  notAfter: Date,
  extensions: object[],
): forgeModule.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicPem);
  cert.serialNumber = serial();
  // Back-dated a little: a replica or API server whose clock lags must not see a certificate from the future.
  cert.validity.notBefore = new Date(notBefore.getTime() - 5 * 60_000);
  cert.validity.notAfter = notAfter;
  cert.setSubject([{ name: 'commonName', value: subjectCN }]);
  cert.setExtensions(extensions);
  return cert;
}

export async function createCA(now: Date, commonName = 'byline-webhook-ca'): Promise<KeyPairPem> {
  const [key, forge] = await Promise.all([rsaKey(), loadForge()]);
  const cert = build(forge, commonName, key.publicPem, now, new Date(now.getTime() + CA_VALIDITY_MS), [
    { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.setIssuer(cert.subject.attributes);
  cert.sign(forge.pki.privateKeyFromPem(key.privatePem), forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem: key.privatePem };
}

/** A serving certificate for `names` (DNS names and IP addresses), signed by `ca`. */
export async function issueServing(ca: KeyPairPem, names: string[], now: Date): Promise<KeyPairPem> {
  if (names.length === 0) throw new Error('a serving certificate needs at least one DNS name or IP address');
  const [key, forge] = await Promise.all([rsaKey(), loadForge()]);
  const caCert = forge.pki.certificateFromPem(ca.certPem);
  const altNames = names.map((n) => (isIP(n) ? { type: 7, ip: n } : { type: 2, value: n }));
  const notAfter = new Date(Math.min(now.getTime() + SERVING_VALIDITY_MS, caCert.validity.notAfter.getTime()));
  const cert = build(forge, names[0]!, key.publicPem, now, notAfter, [
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames },
  ]);
  cert.setIssuer(caCert.subject.attributes);
  cert.sign(forge.pki.privateKeyFromPem(ca.keyPem), forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem: key.privatePem };
}

/** The DNS names and IPs a certificate is valid for (its subjectAltName), sorted. */
export function namesOf(cert: X509Certificate): string[] {
  return (cert.subjectAltName ?? '')
    .split(', ')
    .map((entry) => entry.replace(/^(DNS|IP Address):/, ''))
    .filter((n) => n !== '')
    .sort();
}

/** The certificates of a PEM bundle, in order; unparsable input gives none. */
export function parseBundle(pem: string): X509Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  const out: X509Certificate[] = [];
  for (const b of blocks) {
    try {
      out.push(new X509Certificate(b));
    } catch {}
  }
  return out;
}

const expiresSoon = (cert: X509Certificate, now: Date) =>
  new Date(cert.validTo).getTime() - now.getTime() < RENEW_BEFORE_MS;

function keyMatches(cert: X509Certificate, keyPem: string): boolean {
  try {
    return cert.checkPrivateKey(createPrivateKey(keyPem));
  } catch {
    return false;
  }
}

/** Why the CA must be replaced, or undefined when it can stay. */
export function caProblem(ca: Partial<KeyPairPem>, now: Date): string | undefined {
  if (!ca.certPem || !ca.keyPem) return 'no CA yet';
  const [cert] = parseBundle(ca.certPem);
  if (!cert) return 'the CA certificate does not parse';
  if (!cert.ca) return 'the CA certificate is not a CA';
  if (!keyMatches(cert, ca.keyPem)) return 'the CA key does not match its certificate';
  if (expiresSoon(cert, now)) return `the CA expires ${cert.validTo}`;
  return undefined;
}

/** Why the serving certificate must be reissued (by `caPem`'s first certificate), or undefined. */
export function servingProblem(
  serving: Partial<KeyPairPem>,
  caPem: string,
  names: string[],
  now: Date,
): string | undefined {
  if (!serving.certPem || !serving.keyPem) return 'no serving certificate yet';
  const [cert] = parseBundle(serving.certPem);
  const [ca] = parseBundle(caPem);
  if (!cert || !ca) return 'the serving certificate does not parse';
  if (!keyMatches(cert, serving.keyPem)) return 'the serving key does not match its certificate';
  if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey))
    return 'the serving certificate is not signed by the current CA';
  if (expiresSoon(cert, now)) return `the serving certificate expires ${cert.validTo}`;
  const want = [...new Set(names)].sort();
  const have = namesOf(cert);
  if (want.join(',') !== have.join(',')) return `the names changed (have ${have.join(', ')}; want ${want.join(', ')})`;
  return undefined;
}

/** The bundle after a CA rotation: the new CA first, then the old one while it is still valid. */
export function caBundleAfterRotation(newCaPem: string, oldBundlePem: string | undefined, now: Date): string {
  const keep = parseBundle(oldBundlePem ?? '')
    .slice(0, 1)
    .filter((c) => new Date(c.validTo).getTime() > now.getTime());
  return [newCaPem.trim(), ...keep.map((c) => c.toString().trim())].join('\n') + '\n';
}

/** The DNS names (and IPs) the webhook is reached by: the URL's host, or the Service's names. */
export function webhookNames(target: { url: string } | { service: string; namespace: string }): string[] {
  if ('url' in target) {
    const host = new URL(target.url).hostname.replace(/^\[(.*)\]$/, '$1');
    return [host];
  }
  const { service, namespace } = target;
  return [
    `${service}.${namespace}.svc`,
    `${service}.${namespace}.svc.cluster.local`,
    `${service}.${namespace}`,
    service,
  ];
}
