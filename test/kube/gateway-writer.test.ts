/**
 * A gateway shipping to the collector, against the real API server: the gateway's service account
 * writes events for OIDC identities only while RBAC allows it `write` on gatewayevents.byline.dev
 * (the chart's gateway ClusterRole, GATEWAY_WRITER_RBAC_RULES), each attributed to an AgentIdentity
 * that claims the event's issuer; an agent's token never writes an OIDC identity.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AuditIdentity, ChainWriter, crds } from '@byline/api';
import {
  GATEWAY_WRITER_RBAC_RULES,
  ndjson,
  type RunningCollector,
  SampleStream,
  startCollector,
} from '@byline/collector';
import { CoreV1Api, CustomObjectsApi, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call } from '../collector/http.js';
import { eventually } from '../harness/sidecar.js';
import { applyCrds } from './apply-crds.js';
import { controlPlane } from './control-plane.js';
import { kubeRest } from './rest.js';

const suffix = randomBytes(3).toString('hex');
const ns = `gw-writer-${suffix}`;
const role = `byline-gateway-writer-${suffix}`;
const ISSUER = 'https://login.example.com';

let core: CoreV1Api;
let rbac: RbacAuthorizationV1Api;
let collector: RunningCollector;
let dir: string;
let gatewayToken: string;
let agentToken: string;

const adaOidc = { issuer: ISSUER, subject: 'u-ada', agentIdentity: 'oncall', jti: 'j-1', sid: null };
const ada: AuditIdentity = {
  name: 'ada@example.com',
  kind: 'human',
  namespace: null,
  serviceAccount: null,
  pod: null,
  source: 'oidc',
  oidc: adaOidc,
};

async function token(serviceAccount: string): Promise<string> {
  const res = await core.createNamespacedServiceAccountToken({
    name: serviceAccount,
    namespace: ns,
    body: { spec: { audiences: ['byline.dev'], expirationSeconds: 3600 } },
  });
  return res.status!.token;
}

/** A batch of one `spool.deadLettered` incident event under this identity, as a spool's shipper records it. */
function incidentBatch(identity: AuditIdentity) {
  const sample = new SampleStream({ identity: identity.name, sessionLength: 3 });
  const writer = new ChainWriter(sample.stream);
  const { session: _s, statement: _t, result: _r, authz: _a, context: _c, ...base } = sample.nextEvent();
  const incident = {
    events: [{ hash: '0'.repeat(64), id: base.id, seq: 1, type: 'statement' }],
    file: '000000000001-x.ndjson',
    kind: 'spool.deadLettered' as const,
    reason: 'refused',
    status: 403,
  };
  const event = writer.append({
    ...base,
    authz: null,
    context: null,
    identity,
    incident,
    result: null,
    session: { applicationName: null, client: null, dbUser: null, id: sample.stream, seq: 0 },
    statement: null,
    type: 'spool.deadLettered',
  });
  return ndjson([event]);
}

/** A batch of a fresh stream, every event with this identity. */
function batch(identity: AuditIdentity, count = 3) {
  const sample = new SampleStream({ identity: identity.name, sessionLength: 3 });
  const writer = new ChainWriter(sample.stream);
  const events = Array.from({ length: count }, () => writer.append({ ...sample.nextEvent(), identity }));
  return { body: ndjson(events), events };
}

const post = (t: string, identity: AuditIdentity) =>
  call(collector.port, 'POST', '/v1/events', { token: t, body: batch(identity).body });

const bind = () =>
  rbac.createClusterRoleBinding({
    body: {
      metadata: { name: role },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
      subjects: [{ kind: 'ServiceAccount', name: 'byline-gateway', namespace: ns }],
    },
  });

beforeAll(async () => {
  const plane = controlPlane();
  core = plane.kubeConfig.makeApiClient(CoreV1Api);
  rbac = plane.kubeConfig.makeApiClient(RbacAuthorizationV1Api);
  const custom = plane.kubeConfig.makeApiClient(CustomObjectsApi);
  await applyCrds(kubeRest(plane));
  dir = mkdtempSync(join(tmpdir(), 'byline-gw-writer-'));
  await core.createNamespace({ body: { metadata: { name: ns } } });
  for (const sa of ['byline-gateway', 'agent']) {
    await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: sa } } });
  }
  const k = crds.AgentIdentityKind;
  const identity = (name: string, spec: Record<string, unknown>) =>
    custom.createNamespacedCustomObject({
      group: k.group,
      version: k.version,
      namespace: ns,
      plural: k.plural,
      body: {
        apiVersion: crds.API_VERSION,
        kind: k.kind,
        metadata: { name, namespace: ns },
        spec: { ...spec, routes: [{ name: 'orders-db' }] },
      },
    });
  await identity('oncall', { kind: 'human', oidc: [{ issuer: ISSUER, group: 'sre' }] });
  await identity('agent', { kind: 'agent', serviceAccounts: ['agent'] });
  await rbac.createClusterRole({ body: { metadata: { name: role }, rules: GATEWAY_WRITER_RBAC_RULES } });
  ada.namespace = ns;
  gatewayToken = await token('byline-gateway');
  agentToken = await token('agent');
  collector = await startCollector(
    {
      listen: '127.0.0.1:0',
      store: `sqlite:${join(dir, 'trail.db')}`,
      // No reuse of positive reviews: a binding removed mid-test counts on the next batch.
      auth: { kubernetes: { kubeconfig: plane.kubeconfigPath, cacheSeconds: 0 } },
    },
    { logger: pino({ level: process.env.BYLINE_TEST_LOG ?? 'silent' }) },
  );
});

afterAll(async () => {
  await collector?.close();
  await rbac?.deleteClusterRoleBinding({ name: role }).catch(() => {});
  await rbac?.deleteClusterRole({ name: role }).catch(() => {});
  await core?.deleteNamespace({ name: ns }).catch(() => {});
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('a gateway writing to the collector', () => {
  it('is refused (403, naming the permission) while RBAC does not allow write on gatewayevents', async () => {
    const r = await post(gatewayToken, ada);
    expect(r.status, r.text).toBe(403);
    expect(r.json.reason).toBe('unclaimed');
    expect(r.json.error).toContain(
      `service account "byline-gateway" in namespace "${ns}" is claimed by no AgentIdentity`,
    );
    expect(r.json.error).toContain('needs RBAC "write" on gatewayevents.byline.dev');
  });

  it('with the permission, writes events for OIDC identities: stored, attributed to the person', async () => {
    await bind();
    // RBAC reaches the authorizer through an informer: wait until the binding counts.
    const { body, events } = batch(ada);
    await eventually(async () => {
      const r = await call(collector.port, 'POST', '/v1/events', { token: gatewayToken, body });
      expect(r.status, r.text).toBe(200);
      expect(r.json).toEqual({ accepted: events.length, duplicates: 0 });
    }, 15_000);
    // An unclaimed subject, refused at connect: no AgentIdentity, no namespace.
    const stranger = { ...ada, name: 'eve@example.com', namespace: null, oidc: { ...adaOidc, agentIdentity: null } };
    const r = await post(gatewayToken, stranger);
    expect(r.status, r.text).toBe(200);
  });

  it('cannot attribute a person to an AgentIdentity that does not claim the issuer, or that is not there', async () => {
    const evil = await post(gatewayToken, { ...ada, oidc: { ...adaOidc, issuer: 'https://evil.example.com' } });
    expect(evil.status, evil.text).toBe(403);
    expect(evil.json.error).toContain(
      `identity.oidc.issuer is "https://evil.example.com", but AgentIdentity "oncall" in namespace "${ns}" claims no subjects of that issuer`,
    );
    const ghost = await post(gatewayToken, { ...ada, oidc: { ...adaOidc, agentIdentity: 'ghost' } });
    expect(ghost.status, ghost.text).toBe(403);
    expect(ghost.json.error).toContain(`there is no AgentIdentity "ghost" in namespace "${ns}"`);
  });

  it('cannot write an agent’s events, or its own as a Kubernetes identity', async () => {
    const agent: AuditIdentity = {
      name: 'agent',
      kind: 'agent',
      namespace: ns,
      serviceAccount: 'agent',
      pod: null,
      source: 'kubernetes',
    };
    const r = await post(gatewayToken, agent);
    expect(r.status, r.text).toBe(403);
    expect(r.json.error).toContain("a gateway's token writes only events for OIDC identities");
  });

  it('writes its own incident events under exactly its own writer identity, never one for an identity it did not authenticate', async () => {
    const who = await call(collector.port, 'GET', '/v1/whoami', { token: gatewayToken });
    expect(who.status, who.text).toBe(200);
    const own = who.json.identity as AuditIdentity;
    expect(own).toEqual({
      name: `system:serviceaccount:${ns}:byline-gateway`,
      kind: 'service',
      namespace: ns,
      serviceAccount: 'byline-gateway',
      pod: null,
      source: 'kubernetes',
    });
    const incident = (identity: AuditIdentity) =>
      call(collector.port, 'POST', '/v1/events', { token: gatewayToken, body: incidentBatch(identity) });
    const accepted = await incident(own);
    expect(accepted.status, accepted.text).toBe(200);
    expect(accepted.json).toEqual({ accepted: 1, duplicates: 0 });
    // an incident under an agent's identity, or another service account's, or a static name: refused
    const agent: AuditIdentity = { ...own, name: 'agent', kind: 'agent', serviceAccount: 'agent' };
    for (const other of [agent, { ...own, serviceAccount: 'agent' }, { ...own, source: 'static' as const }]) {
      const r = await incident(other);
      expect(r.status, r.text).toBe(403);
    }
    // and no statement under its own identity: those are the people's
    const statement = await post(gatewayToken, own);
    expect(statement.status, statement.text).toBe(403);
    expect(statement.json.error).toContain("a gateway's token writes only events for OIDC identities");
  });

  it('an agent’s token never writes an OIDC identity, even with the gateway permission bound to it', async () => {
    await rbac.createClusterRoleBinding({
      body: {
        metadata: { name: `${role}-agent` },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
        subjects: [{ kind: 'ServiceAccount', name: 'agent', namespace: ns }],
      },
    });
    try {
      const r = await post(agentToken, { ...ada, name: 'agent' });
      expect(r.status, r.text).toBe(403);
      expect(r.json.error).toContain(
        'identity.source is "oidc", but only a gateway\'s service account (RBAC "write" on gatewayevents.byline.dev) may write such events',
      );
    } finally {
      await rbac.deleteClusterRoleBinding({ name: `${role}-agent` });
    }
  });

  it('loses the permission when the binding goes', async () => {
    await rbac.deleteClusterRoleBinding({ name: role });
    await eventually(async () => {
      const r = await post(gatewayToken, ada);
      expect(r.status, r.text).toBe(403);
      expect(r.json.reason).toBe('unclaimed');
    }, 15_000);
  });
});
