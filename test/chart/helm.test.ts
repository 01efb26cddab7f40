/**
 * The chart as Helm renders it: `helm lint --strict`, values.schema.json refusing mistakes, golden
 * files of `helm template` for several value sets (stale goldens fail; UPDATE_GOLDEN=1 rewrites
 * them), names derived from the release, and the webhook configurations equal to what the operator
 * itself would register. helm is built from its Go module when missing (test/chart/helm.ts).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  CollectorConfigSchema,
  checkCollectorOidc,
  GatewayConfigSchema,
  gatewayConfigRules,
  validate,
} from '@byline/api';
import {
  APPROVAL_WEBHOOK_CONFIGURATION_NAME,
  desiredApprovalWebhookConfiguration,
  desiredWebhookConfiguration,
} from '@byline/operator';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { buildHelm, findHelm, helm } from './helm.js';
import { CHART_DIR, find, type Manifest, render, renderText } from './render.js';

const GOLDEN_DIR = join(import.meta.dirname, 'golden');
const update = process.env.UPDATE_GOLDEN === '1';

let helmBin: string;
beforeAll(async () => {
  helmBin = findHelm() ?? (await buildHelm());
}, 20 * 60_000);

/** Cluster-scoped kinds the chart renders. */
const CLUSTER_KINDS = new Set([
  'ClusterRole',
  'ClusterRoleBinding',
  'MutatingWebhookConfiguration',
  'ValidatingAdmissionPolicy',
  'ValidatingAdmissionPolicyBinding',
]);

function lint(...set: string[]): { ok: boolean; output: string } {
  try {
    return { ok: true, output: helm(helmBin, ['lint', '--strict', CHART_DIR, ...set.flatMap((s) => ['--set', s])]) };
  } catch (err) {
    return { ok: false, output: (err as Error).message };
  }
}

describe('helm lint', () => {
  it('passes --strict with the default values and with every value set of the goldens', () => {
    expect(lint().ok).toBe(true);
    for (const file of readdirSync(join(import.meta.dirname, 'values'))) {
      const result = (() => {
        try {
          helm(helmBin, ['lint', '--strict', CHART_DIR, '--values', join(import.meta.dirname, 'values', file)]);
          return 'ok';
        } catch (err) {
          return (err as Error).message;
        }
      })();
      expect(result, file).toBe('ok');
    }
  });

  it.each([
    ['operator.webhook.failurePolicy=Never', '/operator/webhook/failurePolicy'],
    ['collector.persistance.size=1Gi', "additional properties 'persistance' not allowed"],
    ['operator.webhook.timeoutSeconds=31', '/operator/webhook/timeoutSeconds'],
    ['operator.replicas=0', '/operator/replicas'],
    ['collector.replicas=2', '/collector/replicas'],
    ['collector.store=mysql://db/x', '/collector/store'],
    ['operator.webhook.namespaceLabel=no-value', '/operator/webhook/namespaceLabel'],
    ['imagePullSecrets[0].nam=x', "additional properties 'nam' not allowed"],
    ['metrics.prometheusRule.enabeld=true', "additional properties 'enabeld' not allowed"],
    ['operator.resources.limits.memory=lots', '/operator/resources/limits/memory'],
    ['sidecar.spoolSize=1.5Gi', '/sidecar/spoolSize'],
    ['sidecar.resources.limits.gpu=1', "additional properties 'gpu' not allowed"],
    ['collector.tls.mode=plain', '/collector/tls/mode'],
    ['collector.tls.mode=existingSecret', '/collector/tls/secretName'],
    ['collector.tls.mode=certManager', '/collector/tls/certManager/issuerRef/name'],
    ['collector.tls.secretName=Bad_Name', '/collector/tls/secretName'],
    ['gateway.enabled=true', '/gateway/config/routes'],
    ['gateway.service.type=ExternalName', '/gateway/service/type'],
    ['gateway.tls.secretname=x', "additional properties 'secretname' not allowed"],
    [
      'gateway.enabled=true,gateway.tls.secretName=t,gateway.config.routes[0].name=r,gateway.config.routes[0].listen=:5432,gateway.config.routes[0].access=reed',
      '/gateway/config/routes/0/access',
    ],
  ])('refuses %s, naming the value', (set, message) => {
    const result = lint(set);
    expect(result.ok).toBe(false);
    expect(result.output).toContain(message);
  });
});

/** The value sets with golden files: release, namespace and values files under test/chart/values. */
const CASES = [
  { name: 'default', release: 'byline', namespace: 'byline-system', valuesFiles: [] },
  { name: 'ha-monitoring', release: 'audit', namespace: 'audit-system', valuesFiles: ['ha-monitoring.yaml'] },
  { name: 'single', release: 'byline', namespace: 'byline', valuesFiles: ['single.yaml'] },
  { name: 'gateway', release: 'byline', namespace: 'byline', valuesFiles: ['gateway.yaml'] },
];

describe('helm template goldens', () => {
  it.each(CASES)('$name renders as test/chart/golden/$name.yaml', (c) => {
    const text = renderText(helmBin, c);
    const file = join(GOLDEN_DIR, `${c.name}.yaml`);
    if (update) {
      mkdirSync(GOLDEN_DIR, { recursive: true });
      writeFileSync(file, text);
    }
    expect(existsSync(file), `${file} missing: run with UPDATE_GOLDEN=1`).toBe(true);
    expect(text === readFileSync(file, 'utf8'), `${file} is stale: review the diff, then UPDATE_GOLDEN=1`).toBe(true);
  });

  it('has no golden without a value set (stale files fail)', () => {
    const names = readdirSync(GOLDEN_DIR).map((f) => f.replace(/\.yaml$/, ''));
    expect(names.sort()).toEqual(CASES.map((c) => c.name).sort());
  });
});

describe('names, labels and options', () => {
  it('installs twice in different namespaces: no two objects share a name where they would collide', () => {
    const a = render(helmBin, { release: 'team-a', namespace: 'audit-a' });
    const b = render(helmBin, { release: 'team-b', namespace: 'audit-b' });
    const key = (m: Manifest) =>
      `${m.kind}/${CLUSTER_KINDS.has(m.kind) ? '' : m.metadata.namespace}/${m.metadata.name}`;
    const keysA = new Set(a.map(key));
    expect(b.map(key).filter((k) => keysA.has(k))).toEqual([]);
    for (const m of [...a, ...b]) {
      if (CLUSTER_KINDS.has(m.kind)) expect(m.metadata.namespace, `${m.kind} ${m.metadata.name}`).toBeUndefined();
      else expect(m.metadata.namespace, `${m.kind} ${m.metadata.name}`).toMatch(/^audit-[ab]$/);
      expect(m.metadata.labels, `${m.kind} ${m.metadata.name}`).toMatchObject({
        'app.kubernetes.io/name': 'byline',
        'app.kubernetes.io/managed-by': 'Helm',
        'helm.sh/chart': 'byline-0.1.0',
      });
    }
    // Each release's cluster-wide bindings name its own service accounts.
    const binding = find(a, 'ClusterRoleBinding', 'team-a-byline-operator')[0] as unknown as {
      subjects: { name: string; namespace: string }[];
    };
    expect(binding.subjects).toEqual([
      { kind: 'ServiceAccount', name: 'team-a-byline-operator', namespace: 'audit-a' },
    ]);
  });

  it('keeps the short names for a release called byline', () => {
    const m = render(helmBin, { release: 'byline', namespace: 'byline-system' });
    expect(find(m, 'ClusterRole').map((r) => r.metadata.name)).toContain('byline-trail-reader');
    expect(
      find(m, 'Deployment')
        .map((d) => d.metadata.name)
        .sort(),
    ).toEqual(['byline-collector', 'byline-operator']);
  });

  it('renders a PodDisruptionBudget and anti-affinity only when there is more than one operator replica', () => {
    for (const [replicas, expected] of [
      [1, 0],
      [2, 1],
      [3, 1],
    ] as const) {
      const m = render(helmBin, { release: 'byline', namespace: 'b', set: [`operator.replicas=${replicas}`] });
      expect(find(m, 'PodDisruptionBudget'), `replicas=${replicas}`).toHaveLength(expected);
      const spec = operatorPod(m);
      expect(Boolean(spec.affinity), `replicas=${replicas}`).toBe(expected === 1);
    }
  });

  it('passes pod annotations, extra env, priority class, pull secrets and SA annotations through', () => {
    const m = render(helmBin, { release: 'audit', namespace: 'a', valuesFiles: ['ha-monitoring.yaml'] });
    const deployment = find(m, 'Deployment', 'audit-byline-operator')[0] as unknown as {
      spec: { template: { metadata: { annotations: Record<string, string>; labels: Record<string, string> } } };
    };
    expect(deployment.spec.template.metadata.annotations).toMatchObject({
      'example.com/owner': 'platform',
      'prometheus.io/scrape': 'true',
    });
    expect(deployment.spec.template.metadata.labels).toMatchObject({ tier: 'control-plane', team: 'platform' });
    const spec = operatorPod(m);
    expect(spec.priorityClassName).toBe('system-cluster-critical');
    expect(spec.imagePullSecrets).toEqual([{ name: 'registry-creds' }]);
    expect(spec.containers[0]?.env).toContainEqual({ name: 'NODE_OPTIONS', value: '--max-old-space-size=192' });
    expect(find(m, 'ServiceAccount', 'audit-byline-operator')[0]?.metadata.annotations).toEqual({
      'eks.amazonaws.com/role-arn': 'arn:aws:iam::123456789012:role/byline-operator',
    });
    // The injected sidecar's defaults travel as operator flags.
    const args = spec.containers[0]?.args.join(' ');
    expect(args).toContain(
      '--sidecar-cpu-request 25m --sidecar-memory-request 48Mi --sidecar-memory-limit 128Mi --sidecar-spool-size 256Mi --sidecar-node-options=--max-semi-space-size=4 --sidecar-image-pull-secret registry-creds',
    );
    // The store password comes from the existing Secret, never from values.
    const collector = find(m, 'Deployment', 'audit-byline-collector')[0] as unknown as {
      spec: { template: { spec: { containers: { env: unknown[] }[] } } };
    };
    expect(collector.spec.template.spec.containers[0]?.env).toContainEqual({
      name: 'PGPASSWORD',
      valueFrom: { secretKeyRef: { name: 'trail-db', key: 'password' } },
    });
  });

  it('serves the collector over HTTPS by default, the operator issuing its certificate and injecting the CA', () => {
    const m = render(helmBin, { release: 'byline', namespace: 'b' });
    const args = operatorPod(m).containers[0]?.args.join(' ');
    expect(args).toContain(
      '--collector-url https://byline-collector.b.svc:8080 --collector-tls-secret byline-collector-tls',
    );
    const collector = collectorPod(m);
    expect(collector.volumes).toContainEqual({
      name: 'tls',
      secret: {
        secretName: 'byline-collector-tls',
        items: [
          { key: 'tls.crt', path: 'tls.crt' },
          { key: 'tls.key', path: 'tls.key' },
        ],
      },
    });
    expect(collector.containers[0]?.readinessProbe).toMatchObject({ httpGet: { scheme: 'HTTPS' } });
    expect(collectorConfig(m)).toMatchObject({
      tls: { certFile: '/etc/byline/tls/tls.crt', keyFile: '/etc/byline/tls/tls.key' },
    });
    // The operator may update that Secret (and the webhook's), nothing else.
    const role = find(m, 'Role', 'byline-operator')[0] as unknown as { rules: { resourceNames?: string[] }[] };
    expect(role.rules.flatMap((r) => r.resourceNames ?? [])).toEqual(['byline-webhook-tls', 'byline-collector-tls']);
  });

  it('with cert-manager or an existing Secret, the operator reads only the ca.crt of that Secret', () => {
    for (const [set, certificates] of [
      [['collector.tls.mode=certManager', 'collector.tls.certManager.issuerRef.name=ca'], 1],
      [['collector.tls.mode=existingSecret', 'collector.tls.secretName=my-tls'], 0],
    ] as const) {
      const m = render(helmBin, { release: 'byline', namespace: 'b', set: [...set] });
      const secretName = certificates ? 'byline-collector-tls' : 'my-tls';
      expect(find(m, 'Certificate'), set.join()).toHaveLength(certificates);
      const operator = operatorPod(m);
      expect(operator.containers[0]?.args.join(' ')).toContain('--collector-ca-file /etc/byline/collector-ca/ca.crt');
      expect(operator.containers[0]?.args).not.toContain('--collector-tls-secret');
      expect(operator.volumes).toEqual([
        { name: 'collector-ca', secret: { secretName, items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
      ]);
      expect(collectorPod(m).volumes).toContainEqual(
        expect.objectContaining({ name: 'tls', secret: expect.objectContaining({ secretName }) }),
      );
    }
  });

  it('names the collector port by its scheme everywhere (Service, container, probes, NetworkPolicy, ServiceMonitor), with appProtocol', () => {
    for (const [set, scheme] of [
      [[], 'https'],
      [['collector.tls.mode=disabled'], 'http'],
    ] as const) {
      const m = render(helmBin, {
        release: 'byline',
        namespace: 'b',
        set: [...set, 'metrics.serviceMonitor.enabled=true'],
      });
      const service = find(m, 'Service', 'byline-collector')[0] as unknown as { spec: { ports: unknown[] } };
      expect(service.spec.ports, scheme).toEqual([
        { name: scheme, appProtocol: scheme, port: 8080, targetPort: scheme },
      ]);
      const container = collectorPod(m).containers[0]!;
      expect(container.ports).toEqual([{ name: scheme, containerPort: 8080 }]);
      expect(container.readinessProbe).toMatchObject({ httpGet: { port: scheme } });
      expect(container.livenessProbe).toMatchObject({ httpGet: { port: scheme } });
      const policy = find(m, 'NetworkPolicy', 'byline-collector')[0] as unknown as {
        spec: { ingress: { ports: unknown[] }[] };
      };
      expect(policy.spec.ingress[0]?.ports).toEqual([{ port: scheme, protocol: 'TCP' }]);
      const monitor = find(m, 'ServiceMonitor', 'byline-collector')[0] as unknown as {
        spec: { endpoints: { port: string }[] };
      };
      expect(monitor.spec.endpoints[0]?.port).toBe(scheme);
    }
  });

  it('collector.tls.mode=disabled: plain HTTP, no TLS Secret anywhere', () => {
    const m = render(helmBin, { release: 'byline', namespace: 'b', set: ['collector.tls.mode=disabled'] });
    const args = operatorPod(m).containers[0]?.args ?? [];
    expect(args.join(' ')).toContain('--collector-url http://byline-collector.b.svc:8080');
    expect(args.filter((a) => a.startsWith('--collector-tls') || a === '--collector-ca-file')).toEqual([]);
    expect(collectorPod(m).volumes?.map((v) => v.name)).not.toContain('tls');
    expect(collectorConfig(m)).not.toHaveProperty('tls');
  });

  it('lets only injected namespaces, the release namespace and configured readers reach the collector', () => {
    const m = render(helmBin, { release: 'audit', namespace: 'a', valuesFiles: ['ha-monitoring.yaml'] });
    const policy = find(m, 'NetworkPolicy')[0] as unknown as {
      spec: { podSelector: unknown; ingress: { from: unknown[] }[] };
    };
    expect(policy.spec.podSelector).toEqual({
      matchLabels: {
        'app.kubernetes.io/name': 'byline',
        'app.kubernetes.io/instance': 'audit',
        'app.kubernetes.io/component': 'collector',
      },
    });
    expect(policy.spec.ingress[0]?.from).toEqual([
      { namespaceSelector: { matchLabels: { 'byline.dev/tenant': 'blue' } } },
      { podSelector: {} },
      { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } },
      { namespaceSelector: {}, podSelector: { matchLabels: { 'app.kubernetes.io/name': 'grafana' } } },
    ]);
    expect(
      find(
        render(helmBin, { release: 'b', namespace: 'b', set: ['collector.networkPolicy.enabled=false'] }),
        'NetworkPolicy',
      ),
    ).toEqual([]);
  });
});

interface PodSpec {
  affinity?: unknown;
  priorityClassName?: string;
  imagePullSecrets?: unknown;
  containers: {
    args: string[];
    env?: unknown[];
    ports?: unknown[];
    readinessProbe?: unknown;
    livenessProbe?: unknown;
  }[];
  volumes?: { name: string; secret?: unknown; configMap?: unknown }[];
}
function operatorPod(m: Manifest[]): PodSpec {
  const d = find(m, 'Deployment').find((x) => x.metadata.name.endsWith('-operator')) as unknown as {
    spec: { template: { spec: PodSpec } };
  };
  return d.spec.template.spec;
}
function collectorPod(m: Manifest[]): PodSpec {
  const d = find(m, 'Deployment').find((x) => x.metadata.name.endsWith('-collector')) as unknown as {
    spec: { template: { spec: PodSpec } };
  };
  return d.spec.template.spec;
}
/** The collector.yaml the chart renders into the collector's config Secret. */
function collectorConfig(m: Manifest[]): Record<string, unknown> {
  const secret = find(m, 'Secret').find((x) => x.metadata.name.endsWith('-collector-config')) as unknown as {
    stringData: { 'collector.yaml': string };
  };
  return parseYaml(secret.stringData['collector.yaml']) as Record<string, unknown>;
}

/** A webhook as the API server compares it: without the caBundle the operator fills in. */
function withoutCa(webhooks: unknown): unknown {
  return (webhooks as { clientConfig: Record<string, unknown> }[]).map((w) => {
    const { caBundle: _, ...clientConfig } = w.clientConfig;
    return { ...w, clientConfig };
  });
}

describe('the gateway', () => {
  const gateway = () => render(helmBin, { release: 'byline', namespace: 'byline', valuesFiles: ['gateway.yaml'] });

  it('is off by default: no gateway object is rendered', () => {
    const m = render(helmBin, { release: 'byline', namespace: 'byline' });
    expect(m.filter((o) => o.metadata.name.startsWith('byline-gateway')).map((o) => o.kind)).toEqual([]);
  });

  it('renders a config the gateway accepts, shipping to the collector with its projected token', () => {
    const secret = find(gateway(), 'Secret', 'byline-gateway-config')[0] as unknown as {
      stringData: { 'gateway.yaml': string };
    };
    const config = validate(
      GatewayConfigSchema,
      parseYaml(secret.stringData['gateway.yaml']),
      'rendered',
      gatewayConfigRules,
    );
    expect(config.audit).toEqual({
      spoolDir: '/var/lib/byline/spool',
      sinks: [
        {
          collector: {
            url: 'https://byline-collector.byline.svc:8080',
            tokenFile: '/var/run/secrets/byline/token',
            caFile: '/etc/byline/collector-ca/ca.crt',
          },
        },
      ],
    });
    // The CA comes from the collector's TLS Secret, and only the CA: never its private key.
    const deployment = find(gateway(), 'Deployment', 'byline-gateway')[0] as unknown as {
      spec: { template: { spec: { volumes: { name: string; secret?: { secretName: string; items?: unknown[] } }[] } } };
    };
    const ca = deployment.spec.template.spec.volumes.find((v) => v.name === 'collector-ca');
    expect(ca?.secret).toEqual({ secretName: 'byline-collector-tls', items: [{ key: 'ca.crt', path: 'ca.crt' }] });
  });

  it("does not tighten people's access unless a route sets access: the AgentIdentity each person signed in as decides", () => {
    const routesOf = (m: Manifest[]) => {
      const secret = find(m, 'Secret', 'byline-gateway-config')[0] as unknown as {
        stringData: { 'gateway.yaml': string };
      };
      return validate(GatewayConfigSchema, parseYaml(secret.stringData['gateway.yaml']), 'rendered', gatewayConfigRules)
        .routes;
    };
    for (const route of routesOf(gateway())) expect(route).not.toHaveProperty('access');
    // Set, it is rendered as given: a ceiling on everyone through the gateway.
    const capped = render(helmBin, {
      release: 'byline',
      namespace: 'byline',
      valuesFiles: ['gateway.yaml'],
      set: ['gateway.config.routes[0].access=read'],
    });
    expect(routesOf(capped)[0]?.access).toBe('read');
  });

  it('mounts the TLS Secret, the route credential and a collector-audience token; exposes each route port', () => {
    const m = gateway();
    const pod = (
      find(m, 'Deployment', 'byline-gateway')[0] as unknown as { spec: { template: { spec: GatewayPodSpec } } }
    ).spec.template.spec;
    expect(pod.serviceAccountName).toBe('byline-gateway');
    const volumes = Object.fromEntries(pod.volumes.map((v) => [v.name, v]));
    expect(volumes.tls).toEqual({ name: 'tls', secret: { secretName: 'gateway-tls' } });
    expect(volumes['credentials-orders-db-app']).toEqual({
      name: 'credentials-orders-db-app',
      secret: { secretName: 'orders-db-app' },
    });
    expect(volumes['collector-token']).toEqual({
      name: 'collector-token',
      projected: {
        sources: [{ serviceAccountToken: { path: 'token', audience: 'byline.dev', expirationSeconds: 3600 } }],
      },
    });
    const mounts = Object.fromEntries(pod.containers[0]!.volumeMounts.map((v) => [v.name, v.mountPath]));
    expect(mounts).toMatchObject({
      tls: '/etc/byline/tls',
      'credentials-orders-db-app': '/etc/byline/secrets/orders-db-app',
      'collector-token': '/var/run/secrets/byline',
    });
    const service = find(m, 'Service', 'byline-gateway')[0] as unknown as { spec: { ports: unknown[] } };
    expect(service.spec.ports).toEqual([{ name: 'orders-db', port: 5432, targetPort: 5432 }]);
  });

  it('binds its service account to the write permission the collector checks', () => {
    const m = gateway();
    const role = find(m, 'ClusterRole', 'byline-gateway-writer')[0] as unknown as { rules: unknown[] };
    expect(role.rules).toContainEqual({ apiGroups: ['byline.dev'], resources: ['gatewayevents'], verbs: ['write'] });
    const binding = find(m, 'ClusterRoleBinding', 'byline-gateway-writer')[0] as unknown as { subjects: unknown[] };
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: 'byline-gateway', namespace: 'byline' }]);
  });

  it('refuses to render without TLS unless the config says allowPlaintext', () => {
    const render =
      (...set: string[]) =>
      () =>
        renderText(helmBin, { release: 'byline', namespace: 'byline', valuesFiles: ['gateway.yaml'], set });
    expect(render('gateway.tls.secretName=')).toThrow(/gateway\.tls\.secretName: required/);
    expect(render('gateway.tls.secretName=', 'gateway.config.allowPlaintext=true')).not.toThrow();
  });
});

interface GatewayPodSpec {
  serviceAccountName: string;
  volumes: { name: string }[];
  containers: { volumeMounts: { name: string; mountPath: string }[] }[];
}

describe('webhook configurations owned by the release', () => {
  it.each([
    ['the default selector', [] as string[], undefined],
    ['a namespace label', ['operator.webhook.namespaceLabel=example.com/byline=on'], { 'example.com/byline': 'on' }],
  ])('equal what the operator would register, with %s', (_what, set, namespaceLabels) => {
    for (const release of ['byline', 'audit']) {
      const m = render(helmBin, {
        release,
        namespace: 'ops',
        set: [...set, 'operator.webhook.failurePolicy=Ignore', 'operator.webhook.timeoutSeconds=7'],
      });
      const args = operatorPod(m).containers[0]?.args ?? [];
      expect(args).toContain('--webhook-ca-only');
      const podsName = args[args.indexOf('--webhook-configuration') + 1] ?? '';
      const service = args[args.indexOf('--webhook-service') + 1] ?? '';
      const target = { service: { namespace: 'ops', name: service } };
      const pods = find(m, 'MutatingWebhookConfiguration', podsName)[0];
      expect(pods, `${release}: a configuration named by --webhook-configuration`).toBeDefined();
      expect(withoutCa(pods?.webhooks)).toEqual(
        withoutCa(
          desiredWebhookConfiguration(target, '', {
            failurePolicy: 'Ignore',
            timeoutSeconds: 7,
            ...(namespaceLabels ? { namespaceLabels } : {}),
          }).webhooks,
        ),
      );
      // The operator derives the approvals configuration's name from the pods' one.
      const approvalsName =
        podsName === 'byline-pod-injector' ? APPROVAL_WEBHOOK_CONFIGURATION_NAME : `${podsName}-approvals`;
      const approvals = find(m, 'MutatingWebhookConfiguration', approvalsName)[0];
      expect(withoutCa(approvals?.webhooks)).toEqual(
        withoutCa(
          desiredApprovalWebhookConfiguration(target, '', {
            timeoutSeconds: 7,
            ...(namespaceLabels ? { namespaceLabels } : {}),
          }).webhooks,
        ),
      );
      expect(find(m, 'MutatingWebhookConfiguration')).toHaveLength(2);
      // The operator may keep the caBundle of exactly these two, and create none.
      const role = find(m, 'ClusterRole').find((r) => r.metadata.name.endsWith('-operator')) as unknown as {
        rules: { resources: string[]; verbs: string[]; resourceNames?: string[] }[];
      };
      const webhookRules = role.rules.filter((r) => r.resources.includes('mutatingwebhookconfigurations'));
      expect(webhookRules).toEqual([
        {
          apiGroups: ['admissionregistration.k8s.io'],
          resources: ['mutatingwebhookconfigurations'],
          resourceNames: [podsName, approvalsName],
          verbs: ['get', 'update', 'patch'],
        },
      ]);
    }
  });
});

describe('OIDC trail readers', () => {
  it('are off by default: the collector config has no auth.oidc and nothing is mounted for it', () => {
    const m = render(helmBin, { release: 'byline', namespace: 'byline' });
    expect((collectorConfig(m).auth as Record<string, unknown>).oidc).toBeUndefined();
    expect((collectorPod(m).volumes ?? []).map((v) => v.name)).not.toContain('oidc-ca');
  });

  it('renders the issuers into a config the collector accepts (RBAC decides), with their CA ConfigMap mounted', () => {
    const m = render(helmBin, { release: 'byline', namespace: 'byline', valuesFiles: ['gateway.yaml'] });
    const config = validate(CollectorConfigSchema, collectorConfig(m), 'rendered collector config');
    expect(config.auth.oidc).toEqual({
      issuers: [
        {
          issuer: 'https://login.example.com',
          audiences: ['byline-viewer', 'byline'],
          viewerClientId: 'byline-viewer',
          caFile: '/etc/byline/oidc-ca/ca.crt',
        },
      ],
    });
    expect(() => checkCollectorOidc(config.auth.oidc!, config.auth.kubernetes !== undefined)).not.toThrow();
    const pod = collectorPod(m);
    expect(pod.volumes?.find((v) => v.name === 'oidc-ca')).toEqual({
      name: 'oidc-ca',
      configMap: { name: 'login-ca' },
    });
  });

  it('refuses an issuer that is not https, or a field the collector does not know', () => {
    expect(
      lint(
        'collector.auth.oidc.issuers[0].issuer=http://login.example.com',
        'collector.auth.oidc.issuers[0].audiences[0]=a',
      ).ok,
    ).toBe(false);
    expect(
      lint(
        'collector.auth.oidc.issuers[0].issuer=https://login.example.com',
        'collector.auth.oidc.issuers[0].audiences[0]=a',
        'collector.auth.oidc.issuers[0].readers=x',
      ).ok,
    ).toBe(false);
    expect(
      lint(
        'collector.auth.oidc.issuers[0].issuer=https://login.example.com',
        'collector.auth.oidc.issuers[0].audiences[0]=a',
      ).ok,
    ).toBe(true);
  });
});
