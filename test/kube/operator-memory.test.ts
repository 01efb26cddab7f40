/**
 * The operator's resident memory once idle, as a pod's memory limit sees it: the compiled
 * `byline operator` against the real API server, with a few hundred ServiceAccounts and Secrets in
 * its caches (every namespace has them), measured from /proc after it is ready and has idled.
 * Issue 9's target is 96 MiB (the chart's limit is 256Mi).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { freePort } from '../harness/net.js';
import { applyCrds } from './apply-crds.js';
import { controlPlane } from './control-plane.js';
import { kubeRest, type Rest, statusMessage } from './rest.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
const BIN = join(ROOT, 'cli/bin/byline.mjs');
const suffix = randomBytes(3).toString('hex');
const operatorNs = `byline-mem-${suffix}`;
const appNs = `mem-app-${suffix}`;
const webhookConfig = `byline-pod-injector-memtest-${suffix}`;
/** Objects of each kind the caches hold (ServiceAccounts and Secrets, with managedFields as the API server writes them). */
const OBJECTS = 300;
const TARGET_MIB = 96;

let rest: Rest;
let operator: ChildProcess | undefined;
let log = '';
let moduleLog = '';
const dir = mkdtempSync(join(tmpdir(), 'byline-operator-memory-'));

async function ok(method: string, path: string, body?: unknown): Promise<unknown> {
  const res = await rest(method, path, body === undefined ? {} : { body });
  if (res.status < 200 || res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${statusMessage(res)}`);
  return res.body;
}

const rssMiB = (pid: number) =>
  Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) / 1024;

/**
 * `byline operator` as the chart runs it (compiled, plain node); resolves once ready. With `logModules`
 * the modules it loads are logged (by a loader hook, which costs memory of its own: not for the RSS figure).
 */
async function startOperatorProcess(kubeconfig: string, name: string, logModules: boolean): Promise<ChildProcess> {
  const webhookPort = await freePort();
  const metricsPort = await freePort();
  moduleLog = join(dir, `modules-${name}.log`);
  writeFileSync(moduleLog, '');
  log = '';
  const child = spawn(
    process.execPath,
    [
      ...(logModules ? ['--import', join(ROOT, 'test/cli/module-log.mjs')] : []),
      BIN,
      'operator',
      '--kubeconfig',
      kubeconfig,
      '--namespace',
      operatorNs,
      '--webhook-listen',
      `127.0.0.1:${webhookPort}`,
      '--webhook-url',
      `https://127.0.0.1:${webhookPort}`,
      '--webhook-configuration',
      webhookConfig,
      '--webhook-namespace-label',
      `byline.dev/memtest=${suffix}`,
      '--metrics-listen',
      `127.0.0.1:${metricsPort}`,
      '--collector-url',
      'http://collector.byline.svc:8080',
      '--no-leader-election',
    ],
    {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, BYLINE_MODULE_LOG: moduleLog, NODE_OPTIONS: '' },
    },
  );
  child.stdout?.on('data', (d: Buffer) => {
    log += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    log += d.toString();
  });
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the operator exited (${child.exitCode}):\n${log.slice(-3000)}`);
    const ready = await fetch(`http://127.0.0.1:${metricsPort}/readyz`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ready) return child;
    if (Date.now() > deadline) throw new Error(`the operator was not ready within 60 s:\n${log.slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** npm packages the operator has loaded so far. */
const packagesLoaded = () =>
  new Set(
    readFileSync(moduleLog, 'utf8')
      .split('\n')
      .flatMap((url) => /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url)?.[1] ?? []),
  );

/** Idle: caches synced, the webhook configuration written; start-up garbage collected. */
async function idleRss(): Promise<number> {
  await new Promise((r) => setTimeout(r, 5000));
  const rss = rssMiB(operator!.pid!);
  console.log(`operator idle RSS ${rss.toFixed(1)} MiB (${process.version})`);
  return rss;
}

beforeAll(async () => {
  const plane = controlPlane();
  rest = kubeRest(plane);
  await applyCrds(rest);
  await ok('POST', '/api/v1/namespaces', { metadata: { name: operatorNs } });
  await ok('POST', '/api/v1/namespaces', { metadata: { name: appNs } });
  for (let i = 0; i < OBJECTS; i += 20) {
    await Promise.all(
      Array.from({ length: 20 }, (_, j) => [
        ok('POST', `/api/v1/namespaces/${appNs}/serviceaccounts`, {
          metadata: { name: `sa-${i + j}`, labels: { app: `app-${i + j}`, team: 'payments' } },
        }),
        ok('POST', `/api/v1/namespaces/${appNs}/secrets`, {
          metadata: { name: `secret-${i + j}`, labels: { app: `app-${i + j}` } },
          stringData: {
            username: `user-${i + j}`,
            password: randomBytes(24).toString('hex'),
            'ca.crt': 'x'.repeat(1500),
          },
        }),
      ]).flat(),
    );
  }
  operator = await startOperatorProcess(plane.kubeconfigPath, 'first', false);
}, 180_000);

afterAll(async () => {
  if (operator && operator.exitCode === null) operator.kill('SIGKILL');
  await rest?.('DELETE', `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${webhookConfig}`);
  for (const ns of [appNs, operatorNs]) await rest?.('DELETE', `/api/v1/namespaces/${ns}`).catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});

it(`idle operator resident memory is within ${TARGET_MIB} MiB with ${OBJECTS} ServiceAccounts and Secrets cached`, async () => {
  expect(await idleRss()).toBeLessThanOrEqual(TARGET_MIB);
});

it('restarted with its webhook certificates in place it loads neither node-forge (only to issue them) nor the Kubernetes client', async () => {
  operator!.kill('SIGTERM');
  await once(operator!, 'exit');
  operator = await startOperatorProcess(controlPlane().kubeconfigPath, 'second', true);
  expect(readFileSync(moduleLog, 'utf8')).toContain('/cli/dist/commands/operator.js'); // the log works
  expect(packagesLoaded()).not.toContain('node-forge');
  // Its kubeconfig (a client certificate) is read without @kubernetes/client-node.
  expect(packagesLoaded()).not.toContain('@kubernetes/client-node');
});
