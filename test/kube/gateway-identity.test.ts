/**
 * The gateway with the real API server: the Kubernetes service-account issuer as an OIDC issuer
 * (its discovery document and JWKS, fetched with a service account's token) — the shape of any
 * workload-identity JWT from off-cluster CI — and AgentIdentities that claim OIDC subjects, watched
 * from the API server as `byline gateway` does, deciding who a psql session through it is.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { AuditEvent, GatewayConfig, OidcIssuerConfig } from '@byline/api';
import { OidcVerifier, startGateway } from '@byline/sidecar';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type IdentityWatch, watchIdentities } from '../../cli/src/gateway.js';
import { issueCert, makeCa } from '../harness/certs.js';
import { SERVICE_ACCOUNT_ISSUER } from '../harness/kube.js';
import { startPostgres, type TestPostgres } from '../harness/postgres.js';
import { applyCrds } from './apply-crds.js';
import { controlPlane } from './control-plane.js';
import { kubeRest, type Rest, statusMessage } from './rest.js';

const run = promisify(execFile);
const namespace = `gateway-${randomBytes(4).toString('hex')}`;
const AUDIENCE = 'byline-gateway';
const dir = mkdtempSync(join(tmpdir(), 'byline-gateway-kube-'));
let rest: Rest;
let plane: ReturnType<typeof controlPlane>;
let issuer: OidcIssuerConfig;

async function saToken(name: string, audience: string): Promise<string> {
  const sa = await rest('POST', `/api/v1/namespaces/${namespace}/serviceaccounts`, { body: { metadata: { name } } });
  expect([201, 409], statusMessage(sa)).toContain(sa.status);
  const res = await rest('POST', `/api/v1/namespaces/${namespace}/serviceaccounts/${name}/token`, {
    body: {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: { audiences: [audience], expirationSeconds: 600 },
    },
  });
  expect(res.status, statusMessage(res)).toBe(201);
  return (res.body as { status: { token: string } }).status.token;
}

beforeAll(async () => {
  plane = controlPlane();
  rest = kubeRest(plane);
  await applyCrds(rest);
  const res = await rest('POST', '/api/v1/namespaces', { body: { metadata: { name: namespace } } });
  expect(res.status, statusMessage(res)).toBe(201);
  // The gateway's own service account reads the issuer's discovery document (system:service-account-issuer-discovery).
  const bearerTokenFile = join(dir, 'gateway.token');
  writeFileSync(bearerTokenFile, await saToken('byline-gateway', 'https://kubernetes.default.svc.cluster.local'));
  issuer = {
    issuer: SERVICE_ACCOUNT_ISSUER,
    discoveryUrl: `${plane.server}/.well-known/openid-configuration`,
    audiences: [AUDIENCE],
    caFile: plane.caFile,
    bearerTokenFile,
    nameClaim: 'sub',
  };
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the Kubernetes service-account issuer as an OIDC issuer', () => {
  it('verifies a service-account token for the gateway audience through discovery and JWKS', async () => {
    const verified = await new OidcVerifier([issuer]).verify(await saToken('ci-runner', AUDIENCE));
    expect(verified.claims.issuer).toBe(SERVICE_ACCOUNT_ISSUER);
    expect(verified.claims.subject).toBe(`system:serviceaccount:${namespace}:ci-runner`);
    expect(verified.name).toBe(`system:serviceaccount:${namespace}:ci-runner`);
  });

  it('refuses a service-account token for another audience', async () => {
    const other = await saToken('ci-runner', 'https://kubernetes.default.svc.cluster.local');
    await expect(new OidcVerifier([issuer]).verify(other)).rejects.toThrow(/not meant for this gateway \(aud\)/);
  });
});

describe('byline gateway with AgentIdentities from the API server', () => {
  let db: TestPostgres;
  let watch: IdentityWatch;

  beforeAll(async () => {
    db = await startPostgres();
    watch = await watchIdentities(plane.kubeconfigPath, () => {});
  });
  afterAll(async () => {
    watch?.stop();
    await db?.stop();
  });

  it('a CI job connects as the service identity claiming its subject; once the claim is gone it is refused', async () => {
    const subject = `system:serviceaccount:${namespace}:migrations`;
    const created = await rest('POST', `/apis/byline.dev/v1alpha1/namespaces/${namespace}/agentidentities`, {
      body: {
        apiVersion: 'byline.dev/v1alpha1',
        kind: 'AgentIdentity',
        metadata: { name: 'ci-migrations', namespace },
        spec: { kind: 'service', oidc: [{ issuer: SERVICE_ACCOUNT_ISSUER, subject }], routes: [{ name: 'orders-db' }] },
      },
    });
    expect(created.status, statusMessage(created)).toBe(201);
    const until = Date.now() + 10_000;
    while (!watch.list().some((i) => i.metadata?.name === 'ci-migrations') && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 50));
    }

    const ca = makeCa(dir, 'gw-ca');
    const passwordFile = join(dir, 'pw');
    writeFileSync(passwordFile, `${db.password}\n`);
    const events = join(dir, 'events.jsonl');
    const config: GatewayConfig = {
      routes: [
        {
          name: 'orders-db',
          listen: '127.0.0.1:0',
          upstream: { host: db.host, port: db.port, database: 'postgres', sslMode: 'disable' },
          credentials: { mode: 'inject', username: db.user, passwordFile },
          tls: issueCert(dir, 'gw-ca', 'gw'),
        },
      ],
      oidc: { issuers: [issuer] },
      audit: { sinks: [{ file: events }] },
    };
    const gw = await startGateway(config, { identities: () => watch.list(), logger: pino({ level: 'silent' }) });
    const token = await saToken('migrations', AUDIENCE);
    const psql = () =>
      run(
        'psql',
        [
          '-X',
          '-At',
          '-h',
          '127.0.0.1',
          '-p',
          String(gw.routes[0]!.port),
          '-U',
          'ci',
          '-d',
          'postgres',
          '-c',
          'select 1',
        ],
        {
          env: { ...process.env, PGPASSWORD: token, PGSSLMODE: 'verify-full', PGSSLROOTCERT: ca },
        },
      ).then(
        (r) => ({ ok: true, stderr: r.stderr }),
        (e: { stderr: string }) => ({ ok: false, stderr: e.stderr }),
      );
    try {
      expect(await psql()).toEqual({ ok: true, stderr: '' });
      await gw.flush();
      const statement = readFileSync(events, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as AuditEvent)
        .find((e) => e.type === 'statement');
      expect(statement?.identity).toMatchObject({
        name: subject, // nameClaim: sub
        kind: 'service',
        namespace,
        source: 'oidc',
        oidc: { issuer: SERVICE_ACCOUNT_ISSUER, subject, agentIdentity: 'ci-migrations' },
      });

      const deleted = await rest(
        'DELETE',
        `/apis/byline.dev/v1alpha1/namespaces/${namespace}/agentidentities/ci-migrations`,
      );
      expect(deleted.status, statusMessage(deleted)).toBe(200);
      const gone = Date.now() + 10_000;
      while (watch.list().some((i) => i.metadata?.name === 'ci-migrations') && Date.now() < gone) {
        await new Promise((r) => setTimeout(r, 50));
      }
      const refused = await psql();
      expect(refused.ok).toBe(false);
      expect(refused.stderr).toContain(
        `subject "${subject}" of issuer "${SERVICE_ACCOUNT_ISSUER}" is claimed by no AgentIdentity`,
      );
    } finally {
      await gw.close();
    }
  });
});
