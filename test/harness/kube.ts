/**
 * Starts a real, throwaway Kubernetes control plane for tests — etcd and kube-apiserver, no
 * controller-manager, no nodes — the way controller-runtime's envtest does: random free ports on
 * 127.0.0.1, a temporary directory, a CA and certificates made with openssl, and an admin
 * kubeconfig (client certificate in `system:masters`).
 *
 * The API server has a service-account issuer and signing key (TokenRequest and TokenReview work),
 * RBAC and Node authorization, and the admission webhooks on. ServiceAccount admission is off, as in
 * envtest: without a controller-manager nobody creates the `default` service accounts that plugin
 * insists on. Binaries come from `test/kube/assets.ts` (built into the cache when missing).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildBinaries, findBinaries, type KubeBinaries } from '../kube/assets.js';
import { freePort } from './net.js';

/** The issuer, and so the default audience of service-account tokens, as in a kubeadm cluster. */
export const SERVICE_ACCOUNT_ISSUER = 'https://kubernetes.default.svc.cluster.local';

export interface ControlPlaneOptions {
  /** Directory for certificates, etcd data, logs and the kubeconfig; a fresh temporary one by default. */
  dir?: string;
  /** Leave etcd and kube-apiserver running after this process exits (`npm run cluster:up`). */
  detached?: boolean;
  /** Build the binaries when they are missing (default true); otherwise a missing binary is an error. */
  build?: boolean;
  /** Extra kube-apiserver flags, after ours (a later flag wins). */
  apiserverArgs?: string[];
  /**
   * Keep the ServiceAccount admission plugin on, as in a real cluster (default off, as in envtest):
   * pods then need their ServiceAccount to exist, and get its API token mounted into every container.
   */
  serviceAccountAdmission?: boolean;
  /** Progress lines (building, starting); silent by default. */
  log?: (line: string) => void;
}

export interface ControlPlane {
  kubeconfigPath: string;
  /** `https://127.0.0.1:<port>` */
  server: string;
  caFile: string;
  adminCertFile: string;
  adminKeyFile: string;
  dir: string;
  pids: { etcd: number; apiserver: number };
  binaries: KubeBinaries;
  stop(): Promise<void>;
}

/** Finds or builds the binaries; the error names the build failure (tests must fail on it, not skip). */
export async function kubeBinaries(options: Pick<ControlPlaneOptions, 'build' | 'log'> = {}): Promise<KubeBinaries> {
  const found = findBinaries();
  if (found) return found;
  if (options.build === false) {
    throw new Error('kube-apiserver and etcd are not built: run `npm run cluster:build` (or set KUBEBUILDER_ASSETS)');
  }
  try {
    return await buildBinaries(options.log ?? (() => {}));
  } catch (err) {
    throw new Error(`could not build kube-apiserver/etcd for the tests: ${(err as Error).message}`);
  }
}

function openssl(dir: string, ...args: string[]): void {
  try {
    execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string };
    throw new Error(`openssl ${args[0]} failed: ${e.stderr?.toString() || e.message}`);
  }
}

interface Certificates {
  caFile: string;
  servingCertFile: string;
  servingKeyFile: string;
  adminCertFile: string;
  adminKeyFile: string;
  saPublicKeyFile: string;
  saSigningKeyFile: string;
}

function makeCertificates(dir: string): Certificates {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(
    dir,
    'req',
    '-x509',
    ...ec,
    '-days',
    '7',
    '-subj',
    '/CN=byline-test-kube-ca',
    '-keyout',
    'ca.key',
    '-out',
    'ca.crt',
  );
  const sign = (name: string, subject: string, ext: string) => {
    openssl(dir, 'req', ...ec, '-subj', subject, '-keyout', `${name}.key`, '-out', `${name}.csr`);
    writeFileSync(join(dir, `${name}.ext`), ext);
    openssl(
      dir,
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      '7',
      '-extfile',
      `${name}.ext`,
      '-out',
      `${name}.crt`,
    );
  };
  sign(
    'apiserver',
    '/CN=kube-apiserver',
    'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\n',
  );
  // The CN is the user name, each O a group: system:masters passes every authorization check.
  sign('admin', '/O=system:masters/CN=byline-test-admin', 'extendedKeyUsage=clientAuth\n');
  const sa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  writeFileSync(join(dir, 'sa.pub'), sa.publicKey.export({ type: 'spki', format: 'pem' }));
  writeFileSync(join(dir, 'sa.key'), sa.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  return {
    caFile: join(dir, 'ca.crt'),
    servingCertFile: join(dir, 'apiserver.crt'),
    servingKeyFile: join(dir, 'apiserver.key'),
    adminCertFile: join(dir, 'admin.crt'),
    adminKeyFile: join(dir, 'admin.key'),
    saPublicKeyFile: join(dir, 'sa.pub'),
    saSigningKeyFile: join(dir, 'sa.key'),
  };
}

/** A self-contained kubeconfig (data inlined), so it can be copied elsewhere. */
function kubeconfig(server: string, certs: Certificates): string {
  const b64 = (file: string) => readFileSync(file).toString('base64');
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: byline-test',
    '  cluster:',
    `    server: ${server}`,
    `    certificate-authority-data: ${b64(certs.caFile)}`,
    'users:',
    '- name: byline-test-admin',
    '  user:',
    `    client-certificate-data: ${b64(certs.adminCertFile)}`,
    `    client-key-data: ${b64(certs.adminKeyFile)}`,
    'contexts:',
    '- name: byline-test',
    '  context: { cluster: byline-test, user: byline-test-admin, namespace: default }',
    'current-context: byline-test',
    '',
  ].join('\n');
}

function tail(file: string, lines = 40): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

function launch(binary: string, args: string[], logFile: string, detached: boolean): ChildProcess {
  const fd = openSync(logFile, 'a');
  try {
    const child = spawn(binary, args, { stdio: ['ignore', fd, fd], detached });
    if (detached) child.unref();
    return child;
  } finally {
    closeSync(fd);
  }
}

function alive(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

/** GET over TLS with the admin certificate; resolves with status and body, never rejects. */
function get(
  url: string,
  certs: Pick<Certificates, 'caFile' | 'adminCertFile' | 'adminKeyFile'>,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const req = request(
      url,
      {
        ca: readFileSync(certs.caFile),
        cert: readFileSync(certs.adminCertFile),
        key: readFileSync(certs.adminKeyFile),
        timeout: 5000,
      },
      (res) => {
        let body = '';
        res.on('data', (d: Buffer) => {
          body += d.toString();
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', (err) => resolve({ status: 0, body: err.message }));
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end();
  });
}

async function waitFor(
  what: string,
  child: ChildProcess,
  logFile: string,
  timeoutMs: number,
  probe: () => Promise<string | undefined>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (!alive(child)) throw new Error(`${what} exited (${child.exitCode ?? child.signalCode}):\n${tail(logFile)}`);
    const problem = await probe();
    if (problem === undefined) return;
    last = problem;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${what} not ready within ${timeoutMs / 1000} s (${last}):\n${tail(logFile)}`);
}

async function stopProcess(child: ChildProcess, pid: number, graceMs: number): Promise<void> {
  if (!alive(child)) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  await Promise.race([exited, new Promise((r) => setTimeout(r, graceMs))]);
  if (alive(child)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
    await exited;
  }
}

export async function startControlPlane(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const binaries = await kubeBinaries(options);
  const log = options.log ?? (() => {});
  const detached = options.detached ?? false;
  const ownDir = options.dir === undefined;
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'byline-kube-'));
  mkdirSync(dir, { recursive: true });
  const certDir = join(dir, 'pki');
  mkdirSync(certDir, { recursive: true });
  const certs = makeCertificates(certDir);

  const children: ChildProcess[] = [];
  // A test process that dies without stop() must not leave servers behind (cluster:up wants that).
  const killAll = () => {
    for (const c of children) if (alive(c)) c.kill('SIGKILL');
  };
  if (!detached) process.once('exit', killAll);

  try {
    // A port picked by freePort can be taken before the server binds it; try again with new ports.
    for (let attempt = 1; ; attempt++) {
      try {
        const plane = await launchBoth(dir, certs, binaries, options, children, detached, log);
        const stop = async () => {
          if (!detached) process.removeListener('exit', killAll);
          const [etcd, apiserver] = [children[0], children[1]];
          if (apiserver) await stopProcess(apiserver, plane.pids.apiserver, 10_000);
          if (etcd) await stopProcess(etcd, plane.pids.etcd, 10_000);
          if (ownDir) rmSync(dir, { recursive: true, force: true });
        };
        return { ...plane, dir, binaries, stop };
      } catch (err) {
        killAll();
        children.length = 0;
        const message = (err as Error).message;
        if (attempt >= 3 || !/address already in use/.test(message)) throw err;
        log(`port taken, retrying (${attempt})`);
      }
    }
  } catch (err) {
    if (!detached) process.removeListener('exit', killAll);
    if (ownDir) rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

async function launchBoth(
  dir: string,
  certs: Certificates,
  binaries: KubeBinaries,
  options: ControlPlaneOptions,
  children: ChildProcess[],
  detached: boolean,
  log: (line: string) => void,
): Promise<Omit<ControlPlane, 'dir' | 'binaries' | 'stop'>> {
  const [etcdClientPort, etcdPeerPort, securePort] = [await freePort(), await freePort(), await freePort()];
  const etcdData = join(dir, 'etcd');
  rmSync(etcdData, { recursive: true, force: true });
  const etcdUrl = `http://127.0.0.1:${etcdClientPort}`;
  const peerUrl = `http://127.0.0.1:${etcdPeerPort}`;
  const etcdLog = join(dir, 'etcd.log');
  log(`starting etcd on ${etcdUrl}`);
  const etcd = launch(
    binaries.etcd,
    [
      `--name=byline-test`,
      `--data-dir=${etcdData}`,
      `--listen-client-urls=${etcdUrl}`,
      `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=${peerUrl}`,
      `--initial-advertise-peer-urls=${peerUrl}`,
      `--initial-cluster=byline-test=${peerUrl}`,
      // Throwaway data: durability buys nothing and fsync is the slow part.
      '--unsafe-no-fsync=true',
      '--log-level=warn',
    ],
    etcdLog,
    detached,
  );
  children.push(etcd);
  await waitFor('etcd', etcd, etcdLog, 30_000, async () => {
    try {
      const res = await fetch(`${etcdUrl}/health`);
      const body = await res.text();
      return res.ok && /"health":\s*"true"/.test(body) ? undefined : body;
    } catch (err) {
      return (err as Error).message;
    }
  });

  const server = `https://127.0.0.1:${securePort}`;
  const apiserverLog = join(dir, 'kube-apiserver.log');
  log(`starting kube-apiserver on ${server}`);
  const apiserver = launch(
    binaries.kubeApiserver,
    [
      `--etcd-servers=${etcdUrl}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${securePort}`,
      `--cert-dir=${join(dir, 'apiserver-certs')}`,
      `--tls-cert-file=${certs.servingCertFile}`,
      `--tls-private-key-file=${certs.servingKeyFile}`,
      `--client-ca-file=${certs.caFile}`,
      '--service-cluster-ip-range=10.0.0.0/24',
      // The `kubernetes` Service's endpoints would be 127.0.0.1, which the reconciler refuses; no
      // pod reaches the API server through it here anyway.
      '--endpoint-reconciler-type=none',
      '--allow-privileged=true',
      `--service-account-issuer=${SERVICE_ACCOUNT_ISSUER}`,
      `--service-account-key-file=${certs.saPublicKeyFile}`,
      `--service-account-signing-key-file=${certs.saSigningKeyFile}`,
      `--api-audiences=${SERVICE_ACCOUNT_ISSUER}`,
      '--authorization-mode=Node,RBAC',
      '--anonymous-auth=false',
      // Added to the default plugins (which already include both); named because the operator's
      // tests depend on them. ServiceAccount admission would refuse every pod until a controller
      // creates the namespace's `default` service account, and there is no controller-manager.
      '--enable-admission-plugins=MutatingAdmissionWebhook,ValidatingAdmissionWebhook',
      ...(options.serviceAccountAdmission ? [] : ['--disable-admission-plugins=ServiceAccount']),
      '--profiling=false',
      ...(options.apiserverArgs ?? []),
    ],
    apiserverLog,
    detached,
  );
  children.push(apiserver);
  await waitFor('kube-apiserver', apiserver, apiserverLog, 90_000, async () => {
    const res = await get(`${server}/readyz`, certs);
    return res.status === 200 ? undefined : `readyz ${res.status}: ${res.body.slice(0, 300)}`;
  });

  const kubeconfigPath = join(dir, 'kubeconfig');
  writeFileSync(kubeconfigPath, kubeconfig(server, certs), { mode: 0o600 });
  log(`ready: ${server}`);
  return {
    kubeconfigPath,
    server,
    caFile: certs.caFile,
    adminCertFile: certs.adminCertFile,
    adminKeyFile: certs.adminKeyFile,
    pids: { etcd: etcd.pid ?? 0, apiserver: apiserver.pid ?? 0 },
  };
}
