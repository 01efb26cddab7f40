import { X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  CA_VALIDITY_MS,
  caBundleAfterRotation,
  createCA,
  DAY_MS,
  issueServing,
  namesOf,
  parseBundle,
  webhookNames,
} from './certificates.js';
import { desiredWebhookConfiguration } from './registration.js';
import { planRotation } from './tls-secret.js';

const now = new Date('2026-11-27T00:00:00Z');
const later = (days: number) => new Date(now.getTime() + days * DAY_MS);

describe('webhook certificates', async () => {
  const ca = await createCA(now);
  const names = ['byline-webhook.byline.svc', 'byline-webhook.byline.svc.cluster.local'];
  const serving = await issueServing(ca, names, now);

  it('a CA that signs a serving certificate valid for the webhook’s names only', () => {
    const caCert = new X509Certificate(ca.certPem);
    const cert = new X509Certificate(serving.certPem);
    expect(caCert.ca).toBe(true);
    expect(cert.ca).toBe(false);
    expect(cert.verify(caCert.publicKey)).toBe(true);
    expect(cert.checkIssued(caCert)).toBe(true);
    expect(cert.checkHost('byline-webhook.byline.svc')).toBe('byline-webhook.byline.svc');
    expect(cert.checkHost('evil.example.com')).toBeUndefined();
    expect(namesOf(cert)).toEqual([...names].sort());
    expect(cert.keyUsage).toContain('1.3.6.1.5.5.7.3.1'); // serverAuth
  });

  it('an IP SAN for a URL on 127.0.0.1', async () => {
    expect(webhookNames({ url: 'https://127.0.0.1:9443' })).toEqual(['127.0.0.1']);
    const ip = new X509Certificate((await issueServing(ca, ['127.0.0.1'], now)).certPem);
    expect(ip.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(ip.subjectAltName).toBe('IP Address:127.0.0.1');
  });

  it('service mode names', () => {
    expect(webhookNames({ service: 'byline-webhook', namespace: 'byline' })).toEqual([
      'byline-webhook.byline.svc',
      'byline-webhook.byline.svc.cluster.local',
      'byline-webhook.byline',
      'byline-webhook',
    ]);
  });

  const stored = { certPem: serving.certPem, keyPem: serving.keyPem, caBundlePem: ca.certPem, caKeyPem: ca.keyPem };

  it('keeps valid material, reissues within 30 days of expiry or when the names change', () => {
    expect(planRotation(stored, names, now)).toEqual({ action: 'keep' });
    expect(planRotation(stored, [...names].reverse(), now).action).toBe('keep');
    expect(planRotation(stored, [...names, 'extra.byline.svc'], now)).toMatchObject({ action: 'serving' });
    expect(planRotation(stored, names, later(334)).action).toBe('keep');
    expect(planRotation(stored, names, later(336))).toMatchObject({
      action: 'serving',
      why: expect.stringMatching(/expires/),
    });
    expect(planRotation(undefined, names, now).action).toBe('ca');
  });

  it('replaces the CA near its expiry or when its key is missing or wrong', async () => {
    expect(planRotation(stored, names, new Date(now.getTime() + CA_VALIDITY_MS - 29 * DAY_MS)).action).toBe('ca');
    const { caKeyPem: _, ...withoutKey } = stored;
    expect(planRotation(withoutKey, names, now).action).toBe('ca');
    const other = await createCA(now);
    expect(planRotation({ ...stored, caKeyPem: other.keyPem }, names, now).action).toBe('ca');
    // A serving certificate from another CA is reissued by ours.
    expect(planRotation({ ...stored, caBundlePem: other.certPem, caKeyPem: other.keyPem }, names, now)).toMatchObject({
      action: 'serving',
    });
    expect(planRotation({ ...stored, keyPem: other.keyPem }, names, now).action).toBe('serving');
    expect(planRotation({ ...stored, certPem: 'garbage' }, names, now).action).toBe('serving');
  });

  it('keeps the previous CA in the bundle after a rotation while it is valid', async () => {
    const next = await createCA(now);
    const bundle = parseBundle(caBundleAfterRotation(next.certPem, ca.certPem, now));
    expect(bundle.map((c) => c.fingerprint256)).toEqual([
      new X509Certificate(next.certPem).fingerprint256,
      new X509Certificate(ca.certPem).fingerprint256,
    ]);
    expect(parseBundle(caBundleAfterRotation(next.certPem, ca.certPem, later(6 * 365)))).toHaveLength(1);
  });
});

describe('the MutatingWebhookConfiguration', () => {
  it('URL mode', () => {
    const c = desiredWebhookConfiguration({ url: 'https://127.0.0.1:9443/' }, 'PEM');
    expect(c.metadata.name).toBe('byline-pod-injector');
    expect(c.webhooks[0]).toMatchObject({
      clientConfig: { url: 'https://127.0.0.1:9443/mutate-pods', caBundle: Buffer.from('PEM').toString('base64') },
      rules: [
        { apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods'] },
        { apiGroups: [''], apiVersions: ['v1'], operations: ['UPDATE'], resources: ['pods/ephemeralcontainers'] },
      ],
      namespaceSelector: {
        matchExpressions: [{ key: 'byline.dev/injection', operator: 'In', values: ['enabled', 'required'] }],
      },
      sideEffects: 'None',
      admissionReviewVersions: ['v1'],
      failurePolicy: 'Fail',
      timeoutSeconds: 10,
      reinvocationPolicy: 'IfNeeded',
    });
  });

  it('settings for a shared cluster or a softer policy', () => {
    const c = desiredWebhookConfiguration({ url: 'https://127.0.0.1:9443' }, 'PEM', {
      name: 'other',
      namespaceLabels: { team: 'a' },
      failurePolicy: 'Ignore',
      timeoutSeconds: 5,
    });
    expect(c.metadata.name).toBe('other');
    expect(c.webhooks[0]).toMatchObject({
      namespaceSelector: { matchLabels: { team: 'a' } },
      failurePolicy: 'Ignore',
      timeoutSeconds: 5,
    });
  });

  it('service mode', () => {
    const c = desiredWebhookConfiguration({ service: { namespace: 'byline', name: 'byline-webhook' } }, 'PEM');
    expect(c.webhooks[0]?.clientConfig).toEqual({
      service: { namespace: 'byline', name: 'byline-webhook', path: '/mutate-pods', port: 443 },
      caBundle: Buffer.from('PEM').toString('base64'),
    });
  });
});
