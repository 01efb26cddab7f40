/**
 * Where the API server is and how to authenticate to it, without @kubernetes/client-node where
 * that is not needed. Loading that package costs the operator about 40 MiB of heap (its generated
 * API clients are imported with its KubeConfig), so the common cases are read here:
 * - in the cluster: the pod's service account (token re-read: it rotates) and the cluster CA;
 * - a kubeconfig whose current context uses a token, a token file or a client certificate, and a
 *   CA (inline or a file), nothing else.
 * Anything else (exec plugins, auth providers, proxies, KUBECONFIG lists, basic auth) is left to
 * @kubernetes/client-node's KubeConfig, imported only then.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { RequestOptions } from 'node:https';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import { parse as parseYaml } from 'yaml';

/** What KubeClient needs; @kubernetes/client-node's KubeConfig has the same two methods. */
export interface KubeCredentials {
  getCurrentCluster(): { server: string } | null;
  /** Adds the CA, the client certificate or the bearer token to a request's options. */
  applyToHTTPSOptions(options: RequestOptions): Promise<void>;
}

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** The environment the default chain reads, injectable for tests. */
export interface CredentialEnvironment {
  env: Record<string, string | undefined>;
  home: string;
  serviceAccountDir: string;
}

const defaults = (): CredentialEnvironment => ({
  env: process.env,
  home: homedir(),
  serviceAccountDir: SERVICE_ACCOUNT_DIR,
});

/**
 * The kubeconfig `path`, else the default chain as @kubernetes/client-node reads it ($KUBECONFIG,
 * ~/.kube/config, the in-cluster service account).
 */
export async function loadKubeCredentials(
  path?: string,
  environment: CredentialEnvironment = defaults(),
): Promise<KubeCredentials> {
  const simple = simpleCredentials(path, environment);
  if (simple !== null) return simple;
  return loadKubeConfig(path);
}

/** @kubernetes/client-node's KubeConfig for `path` (or the default chain), imported only now. */
export async function loadKubeConfig(path?: string): Promise<import('@kubernetes/client-node').KubeConfig> {
  return (await import('./config.js')).loadKubeConfig(path);
}

/** The credentials read here, or null when KubeConfig must read them. Throws on a file that cannot be read. */
export function simpleCredentials(
  path: string | undefined,
  environment: CredentialEnvironment,
): KubeCredentials | null {
  if (path) return fromKubeconfigFile(path);
  if (environment.env.KUBECONFIG) return null;
  const home = join(environment.home, '.kube', 'config');
  if (existsSync(home)) return fromKubeconfigFile(home);
  const host = environment.env.KUBERNETES_SERVICE_HOST;
  const port = environment.env.KUBERNETES_SERVICE_PORT;
  const tokenFile = join(environment.serviceAccountDir, 'token');
  if (!host || !port || !existsSync(tokenFile)) return null;
  return new SimpleCredentials(`https://${host.includes(':') ? `[${host}]` : host}:${port}`, {
    ca: readFileSync(join(environment.serviceAccountDir, 'ca.crt')),
    tokenFile,
  });
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

const CLUSTER_KEYS = new Set(['server', 'certificate-authority-data', 'certificate-authority', 'extensions']);
const USER_KEYS = new Set([
  'token',
  'tokenFile',
  'client-certificate-data',
  'client-key-data',
  'client-certificate',
  'client-key',
  'extensions',
]);

function fromKubeconfigFile(path: string): KubeCredentials | null {
  const doc: unknown = parseYaml(readFileSync(path, 'utf8'));
  if (!isObj(doc)) return null;
  const named = (list: unknown, name: unknown, key: string): Obj | null => {
    if (!Array.isArray(list)) return null;
    const entry = list.find((e) => isObj(e) && e.name === name);
    return isObj(entry) && isObj(entry[key]) ? entry[key] : null;
  };
  const context = named(doc.contexts, doc['current-context'], 'context');
  if (context === null) return null;
  const cluster = named(doc.clusters, context.cluster, 'cluster');
  const user = context.user === undefined ? {} : named(doc.users, context.user, 'user');
  if (cluster === null || user === null) return null;
  // Anything this reader does not know (tls-server-name, proxy-url, exec, auth-provider, …) goes to KubeConfig.
  if (!Object.keys(cluster).every((k) => CLUSTER_KEYS.has(k))) return null;
  if (!Object.keys(user).every((k) => USER_KEYS.has(k))) return null;
  if (typeof cluster.server !== 'string') return null;
  if (user.token !== undefined && user.tokenFile !== undefined) return null;
  const base = dirname(path);
  const file = (p: unknown) => readFileSync(isAbsolute(String(p)) ? String(p) : join(base, String(p)));
  const data = (inline: unknown, ref: unknown): Buffer | undefined =>
    typeof inline === 'string' ? Buffer.from(inline, 'base64') : ref !== undefined ? file(ref) : undefined;
  return new SimpleCredentials(cluster.server, {
    ca: data(cluster['certificate-authority-data'], cluster['certificate-authority']),
    cert: data(user['client-certificate-data'], user['client-certificate']),
    key: data(user['client-key-data'], user['client-key']),
    ...(typeof user.token === 'string' ? { token: user.token } : {}),
    ...(user.tokenFile !== undefined
      ? { tokenFile: isAbsolute(String(user.tokenFile)) ? String(user.tokenFile) : join(base, String(user.tokenFile)) }
      : {}),
  });
}

interface Material {
  ca?: Buffer | undefined;
  cert?: Buffer | undefined;
  key?: Buffer | undefined;
  token?: string;
  /** Re-read on every request, as the kubelet rotates projected tokens. */
  tokenFile?: string;
}

class SimpleCredentials implements KubeCredentials {
  constructor(
    private readonly server: string,
    private readonly material: Material,
  ) {}

  getCurrentCluster(): { server: string } {
    return { server: this.server };
  }

  async applyToHTTPSOptions(options: RequestOptions): Promise<void> {
    const m = this.material;
    if (m.ca) options.ca = m.ca;
    if (m.cert) options.cert = m.cert;
    if (m.key) options.key = m.key;
    const token = m.tokenFile ? readFileSync(m.tokenFile, 'utf8').trim() : m.token;
    if (token) options.headers = { ...(options.headers as Record<string, string>), authorization: `Bearer ${token}` };
  }
}
