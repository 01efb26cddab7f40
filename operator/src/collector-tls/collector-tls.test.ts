import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { KubeClient } from '../kube/client.js';
import { createCA, issueServing } from '../webhook/certificates.js';
import { caBundleProblem, collectorNames, collectorTlsSource, currentCollectorCa } from './collector-tls.js';

const HTTPS = 'https://byline-collector.byline.svc:8443';

describe('collectorTlsSource', () => {
  it('names the source the flags give', () => {
    expect(
      collectorTlsSource({ namespace: 'byline', collectorUrl: HTTPS, collectorTlsSecret: 'byline-collector-tls' }),
    ).toEqual({
      secretName: 'byline-collector-tls',
    });
    expect(collectorTlsSource({ namespace: 'byline', collectorUrl: HTTPS, collectorCaFile: '/ca/ca.crt' })).toEqual({
      caFile: '/ca/ca.crt',
    });
    expect(collectorTlsSource({ namespace: 'byline', collectorUrl: HTTPS })).toBeUndefined();
  });

  it.each([
    [{ collectorTlsSecret: 's', collectorCaFile: '/ca.crt' }, HTTPS, /not both/],
    [{ collectorTlsSecret: 's' }, 'http://byline-collector.byline.svc:8080', /--collector-tls-secret needs an https/],
    [{ collectorCaFile: '/ca.crt' }, 'http://c:8080', /--collector-ca-file needs an https/],
    [{ collectorTlsSecret: 'Not_A/Name' }, HTTPS, /not a valid Secret name/],
    [{ collectorTlsSecret: 's' }, 'byline-collector:8080', /https|not a URL/],
    [
      { collectorTlsSecret: 's' },
      'https://byline-collector.elsewhere.svc:8443',
      /written in byline, .* Service in elsewhere/,
    ],
  ])('refuses %j with %s', (flags, collectorUrl, why) => {
    const source = collectorTlsSource({ namespace: 'byline', collectorUrl, ...flags });
    expect(source).toMatchObject({ problem: expect.stringMatching(why) });
  });
});

describe('collectorNames', () => {
  it('covers every name of a Service', () => {
    for (const url of [
      HTTPS,
      'https://byline-collector.byline.svc.cluster.local',
      'https://byline-collector.byline:8443',
    ]) {
      expect(collectorNames(url)).toEqual([
        'byline-collector.byline.svc',
        'byline-collector.byline.svc.cluster.local',
        'byline-collector.byline',
        'byline-collector',
      ]);
    }
  });

  it('takes any other host as it is', () => {
    expect(collectorNames('https://trail.example.com')).toEqual(['trail.example.com']);
    expect(collectorNames('https://127.0.0.1:8443')).toEqual(['127.0.0.1']);
    expect(collectorNames('https://[::1]:8443')).toEqual(['::1']);
  });
});

describe('caBundleProblem', () => {
  it('accepts a CA bundle', async () => {
    const ca = await createCA(new Date());
    expect(caBundleProblem(ca.certPem, 'f')).toBeUndefined();
  });

  it('refuses no certificate, and a serving certificate in place of the CA', async () => {
    expect(caBundleProblem('not pem', '--collector-ca-file x')).toBe('--collector-ca-file x: no PEM certificate in it');
    const ca = await createCA(new Date());
    const serving = await issueServing(ca, ['byline-collector.byline.svc'], new Date());
    expect(caBundleProblem(serving.certPem, 'f')).toMatch(
      /^f: .*byline-collector\.byline\.svc is not a CA certificate$/,
    );
  });
});

describe('currentCollectorCa from a file (cert-manager, existingSecret)', () => {
  // The file source never calls the API server.
  const noClient = {} as KubeClient;

  it('reads the bundle afresh each time, and refuses a missing file or one without a CA', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'byline-collector-ca-'));
    try {
      const file = join(dir, 'ca.crt');
      const first = await createCA(new Date());
      writeFileSync(file, first.certPem);
      const read = () => currentCollectorCa(noClient, 'byline', HTTPS, { caFile: file });
      expect(await read()).toEqual({ caPem: first.certPem });
      const renewed = await createCA(new Date());
      writeFileSync(file, renewed.certPem);
      expect(await read()).toEqual({ caPem: renewed.certPem });

      writeFileSync(file, (await issueServing(renewed, ['c'], new Date())).certPem);
      await expect(read()).rejects.toThrow(/is not a CA certificate/);
      await expect(currentCollectorCa(noClient, 'byline', HTTPS, { caFile: join(dir, 'nope') })).rejects.toThrow(
        /--collector-ca-file .*nope: cannot read it/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
