import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { RequestOptions } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { stringify } from 'yaml';
import { type CredentialEnvironment, simpleCredentials } from './credentials.js';

const dir = mkdtempSync(join(tmpdir(), 'byline-credentials-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const b64 = (s: string) => Buffer.from(s).toString('base64');
const none: CredentialEnvironment = { env: {}, home: join(dir, 'no-home'), serviceAccountDir: join(dir, 'no-sa') };

function kubeconfig(name: string, cluster: object, user: object): string {
  const path = join(dir, name);
  writeFileSync(
    path,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'c', cluster }],
      users: [{ name: 'u', user }],
      contexts: [{ name: 'x', context: { cluster: 'c', user: 'u', namespace: 'ns' } }],
      'current-context': 'x',
    }),
  );
  return path;
}

async function applied(path: string | undefined, environment = none): Promise<RequestOptions & { server: string }> {
  const creds = simpleCredentials(path, environment);
  if (creds === null) throw new Error('expected simple credentials');
  const options: RequestOptions = { headers: { accept: 'application/json' } };
  await creds.applyToHTTPSOptions(options);
  return { ...options, server: creds.getCurrentCluster()?.server ?? '' };
}

describe('kubeconfigs read without @kubernetes/client-node', () => {
  test('client certificate and CA inline', async () => {
    const path = kubeconfig(
      'cert.yaml',
      { server: 'https://127.0.0.1:6443', 'certificate-authority-data': b64('CA') },
      { 'client-certificate-data': b64('CERT'), 'client-key-data': b64('KEY') },
    );
    const o = await applied(path);
    expect(o.server).toBe('https://127.0.0.1:6443');
    expect([String(o.ca), String(o.cert), String(o.key)]).toEqual(['CA', 'CERT', 'KEY']);
    expect(o.headers).toEqual({ accept: 'application/json' });
  });

  test('a token file is read on every request (tokens rotate), and files resolve against the kubeconfig', async () => {
    mkdirSync(join(dir, 'rel'), { recursive: true });
    writeFileSync(join(dir, 'rel', 'ca.crt'), 'FILE-CA');
    writeFileSync(join(dir, 'rel', 'token'), 'first\n');
    const path = kubeconfig(
      'rel/token.yaml',
      { server: 'https://api:443', 'certificate-authority': 'ca.crt' },
      { tokenFile: 'token' },
    );
    const creds = simpleCredentials(path, none)!;
    const first: RequestOptions = {};
    await creds.applyToHTTPSOptions(first);
    expect(String(first.ca)).toBe('FILE-CA');
    expect(first.headers).toEqual({ authorization: 'Bearer first' });
    writeFileSync(join(dir, 'rel', 'token'), 'second\n');
    const second: RequestOptions = {};
    await creds.applyToHTTPSOptions(second);
    expect(second.headers).toEqual({ authorization: 'Bearer second' });
  });

  test.each([
    ['an exec plugin', {}, { exec: { command: 'aws', apiVersion: 'client.authentication.k8s.io/v1' } }],
    ['an auth provider', {}, { 'auth-provider': { name: 'oidc' } }],
    ['basic auth', {}, { username: 'a', password: 'b' }],
    ['both token and tokenFile', {}, { token: 'a', tokenFile: '/t' }],
    ['a proxy', { 'proxy-url': 'http://proxy:3128' }, { token: 'a' }],
    ['tls-server-name', { 'tls-server-name': 'api.internal' }, { token: 'a' }],
    ['insecure-skip-tls-verify', { 'insecure-skip-tls-verify': true }, { token: 'a' }],
  ])('%s is left to KubeConfig', (_, cluster, user) => {
    const path = kubeconfig('other.yaml', { server: 'https://api:443', ...cluster }, user);
    expect(simpleCredentials(path, none)).toBeNull();
  });

  test('a kubeconfig whose current context is missing is left to KubeConfig (which names the problem)', () => {
    const path = join(dir, 'nocontext.yaml');
    writeFileSync(path, stringify({ apiVersion: 'v1', kind: 'Config', 'current-context': 'gone', contexts: [] }));
    expect(simpleCredentials(path, none)).toBeNull();
  });
});

describe('the default chain', () => {
  test('in the cluster: the service account token and CA, the API server from the environment', async () => {
    const sa = join(dir, 'sa');
    mkdirSync(sa, { recursive: true });
    writeFileSync(join(sa, 'token'), 'sa-token');
    writeFileSync(join(sa, 'ca.crt'), 'SA-CA');
    const env = { KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443' };
    const o = await applied(undefined, { env, home: join(dir, 'no-home'), serviceAccountDir: sa });
    expect(o.server).toBe('https://[fd00::1]:443');
    expect(String(o.ca)).toBe('SA-CA');
    expect(o.headers).toMatchObject({ authorization: 'Bearer sa-token' });
  });

  test('~/.kube/config before the service account; $KUBECONFIG (possibly a list) is left to KubeConfig', async () => {
    const home = join(dir, 'home');
    mkdirSync(join(home, '.kube'), { recursive: true });
    writeFileSync(
      join(home, '.kube', 'config'),
      stringify({
        clusters: [{ name: 'c', cluster: { server: 'https://home:6443' } }],
        users: [{ name: 'u', user: { token: 'home-token' } }],
        contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
        'current-context': 'x',
      }),
    );
    const env = { KUBERNETES_SERVICE_HOST: '10.0.0.1', KUBERNETES_SERVICE_PORT: '443' };
    const o = await applied(undefined, { env, home, serviceAccountDir: join(dir, 'sa') });
    expect(o.server).toBe('https://home:6443');
    expect(o.headers).toMatchObject({ authorization: 'Bearer home-token' });
    expect(simpleCredentials(undefined, { ...none, env: { KUBECONFIG: '/a:/b' } })).toBeNull();
  });

  test('nothing configured: left to KubeConfig', () => {
    expect(simpleCredentials(undefined, none)).toBeNull();
  });
});
