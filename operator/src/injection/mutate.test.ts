/**
 * Golden files, Linkerd style: testdata/<case>.input.yaml (pod, namespace, identities, routes,
 * options) → testdata/<case>.golden.json (the InjectionResult, patch included).
 * Refresh with `UPDATE_GOLDEN=1 npx vitest run operator/src/injection` and review the diff;
 * a fixture without a golden, or a golden without a fixture, fails.
 */
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_DRAIN_SECONDS, SidecarConfigSchema, validate } from '@byline/api';
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { escapePointerToken } from './json-patch.js';
import {
  type DatabaseRoute,
  GRACE_MARGIN_SECONDS,
  type InjectionInput,
  mutatePod,
  renderSidecarConfig,
} from './mutate.js';
import { applyPatch } from './testing.js';

const TESTDATA = fileURLToPath(new URL('./testdata', import.meta.url));
const UPDATE = process.env.UPDATE_GOLDEN === '1';
const INPUT = '.input.yaml';
const GOLDEN = '.golden.json';

const files = readdirSync(TESTDATA);
const cases = files.filter((f) => f.endsWith(INPUT)).map((f) => f.slice(0, -INPUT.length));
const goldens = files.filter((f) => f.endsWith(GOLDEN)).map((f) => f.slice(0, -GOLDEN.length));

function load(name: string): InjectionInput {
  return parseYaml(readFileSync(join(TESTDATA, name + INPUT), 'utf8')) as InjectionInput;
}

/** What a golden holds: the result as JSON (no undefined members), two-space indented. */
const serialize = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;

describe('golden files', () => {
  it('has fixtures', () => {
    expect(cases.length).toBeGreaterThanOrEqual(15);
  });

  it.each(cases)('%s', (name) => {
    const actual = serialize(mutatePod(load(name)));
    const goldenPath = join(TESTDATA, name + GOLDEN);
    if (UPDATE) {
      writeFileSync(goldenPath, actual);
      return;
    }
    if (!existsSync(goldenPath)) {
      expect.fail(`${name}${GOLDEN} is missing: run UPDATE_GOLDEN=1 npx vitest run operator/src/injection`);
    }
    // Compared as objects for a readable diff, and as text so formatting drift shows too.
    const golden = readFileSync(goldenPath, 'utf8');
    expect(JSON.parse(actual)).toStrictEqual(JSON.parse(golden));
    expect(actual).toBe(golden);
  });

  it('has no golden without a fixture', () => {
    const stale = goldens.filter((g) => !cases.includes(g));
    if (UPDATE) for (const g of stale) rmSync(join(TESTDATA, g + GOLDEN));
    else
      expect(
        stale.map((g) => g + GOLDEN),
        'stale goldens: delete them or restore their fixtures',
      ).toEqual([]);
  });

  it('covers every outcome and the reasons the brief names', () => {
    const reasons = new Set(cases.map((c) => mutatePod(load(c)).reason));
    for (const reason of [
      'Injected',
      'NotRequested',
      'NamespaceNotEnabled',
      'AlreadyInjected',
      'NoIdentity',
      'IdentityConflict',
      'RouteNotFound',
      'ListenPortConflict',
      'SharedProcessNamespace',
      'InvalidRoute',
      'HostNetwork',
      'HostPathVolume',
      'ForgedInjection',
      'InjectionRequired',
      'InvalidSpoolVolume',
      'RouteSecretExposed',
      'BylineTokenExposed',
      'SpoolExposed',
      'SidecarVolumeMounted',
      'ReservedVolumeName',
    ]) {
      expect(reasons, reason).toContain(reason);
    }
  });
});

/** The variables every app container must end up with, computed here from the fixture, not the code. */
function expectedEnv(input: InjectionInput): Map<string, string> {
  const identity = input.identities.find((i) =>
    (i.spec.serviceAccounts ?? []).includes(input.pod.spec?.serviceAccountName ?? 'default'),
  )!;
  const env = new Map<string, string>();
  for (const { name } of identity.spec.routes) {
    const route = input.routes.find((r) => r.metadata.name === name)!;
    const { host, port, url, user } = route.spec.env ?? {};
    const role = route.spec.credentials.username;
    const listen = route.spec.listenPort;
    if (host) env.set(host, '127.0.0.1');
    if (port) env.set(port, String(listen));
    if (user && role) env.set(user, role);
    if (url) {
      // The role when the route names it; else the identity's name (which only an opted-out sidecar takes).
      env.set(
        url,
        `postgres://${encodeURIComponent(role ?? identity.metadata.name)}@127.0.0.1:${listen}/${route.spec.upstream.database}?sslmode=disable`,
      );
    }
  }
  return env;
}

function routesOf(input: InjectionInput): DatabaseRoute[] {
  const identity = input.identities.find((i) =>
    (i.spec.serviceAccounts ?? []).includes(input.pod.spec?.serviceAccountName ?? 'default'),
  )!;
  return identity.spec.routes.map(({ name }) => input.routes.find((r) => r.metadata.name === name)!);
}

const injectedCases = cases.filter((c) => mutatePod(load(c)).outcome === 'injected');

describe('applying the patch to the pod', () => {
  it('is tried on several injected fixtures', () => {
    expect(injectedCases.length).toBeGreaterThanOrEqual(5);
  });

  it.each(injectedCases)('%s', (name) => {
    const input = load(name);
    const result = mutatePod(input);
    const pod = applyPatch(input.pod, result.patch);
    const spec = pod.spec!;
    const original = input.pod.spec!;
    const routes = routesOf(input);

    // The sidecar: first init container, a native sidecar, the only holder of Byline's volumes.
    const [sidecar, ...otherInit] = spec.initContainers!;
    expect(sidecar?.name).toBe('byline-proxy');
    expect(sidecar?.restartPolicy).toBe('Always');
    expect(sidecar?.image).toBe(input.options.image);
    expect(sidecar?.args).toEqual(['sidecar', '--config-env', 'BYLINE_SIDECAR_CONFIG']);
    expect(sidecar?.startupProbe?.httpGet).toEqual({ path: '/readyz', port: 9187 });
    expect(sidecar?.securityContext).toMatchObject({
      runAsNonRoot: true,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
    });
    expect(otherInit.map((c) => c.name)).toEqual((original.initContainers ?? []).map((c) => c.name));
    expect(spec.containers.map((c) => c.name)).toEqual(original.containers.map((c) => c.name));

    const mounts = new Map((sidecar?.volumeMounts ?? []).map((m) => [m.mountPath, m.name]));
    const wantMounts = new Map([
      ['/var/run/byline/token', 'byline-token'],
      ['/var/spool/byline', 'byline-spool'],
      ['/tmp', 'byline-tmp'],
    ]);
    for (const r of routes) {
      wantMounts.set(`/var/run/byline/routes/${r.metadata.name}`, `byline-route-${r.metadata.name}`);
      if (r.spec.upstream.caSecretRef) {
        wantMounts.set(`/var/run/byline/ca/${r.metadata.name}`, `byline-ca-${r.metadata.name}`);
      }
    }
    expect(mounts).toEqual(wantMounts);

    const volumes = new Map((spec.volumes ?? []).map((v) => [v.name, v]));
    expect(volumes.size).toBe(spec.volumes?.length); // no duplicate names
    for (const v of original.volumes ?? []) expect(volumes.get(v.name)).toEqual(v);
    for (const volumeName of wantMounts.values()) expect(volumes.has(volumeName), volumeName).toBe(true);
    expect(volumes.get('byline-token')?.projected?.sources).toEqual([
      { serviceAccountToken: { audience: 'byline.dev', expirationSeconds: 3600, path: 'token' } },
    ]);
    for (const r of routes) {
      expect(volumes.get(`byline-route-${r.metadata.name}`)?.secret?.secretName).toBe(
        r.spec.credentials.secretRef.name,
      );
    }

    // The app's containers, init ones included: the env points at the sidecar, their own
    // variables and mounts stay, and none of Byline's volumes is mounted.
    const env = expectedEnv(input);
    const injectedVolumes = new Set(wantMounts.values());
    const apps: [V1Container, V1Container][] = [
      ...otherInit.map((c, i): [V1Container, V1Container] => [c, original.initContainers![i]!]),
      ...spec.containers.map((c, i): [V1Container, V1Container] => [c, original.containers[i]!]),
    ];
    for (const [after, before] of apps) {
      const seen = new Map<string, string | undefined>();
      for (const e of after.env ?? []) seen.set(e.name, e.value); // the last of a name wins, as in Kubernetes
      for (const [k, v] of env) expect(seen.get(k), `${after.name} ${k}`).toBe(v);
      for (const e of before.env ?? []) if (!env.has(e.name)) expect(after.env).toContainEqual(e);
      if (env.size === 0) expect(after.env).toEqual(before.env);
      expect(after.volumeMounts).toEqual(before.volumeMounts);
      for (const m of after.volumeMounts ?? []) expect(injectedVolumes.has(m.name), m.name).toBe(false);
    }

    // The rendered config travels in the sidecar's env, valid and as renderSidecarConfig renders it.
    const configText = sidecar?.env?.find((e) => e.name === 'BYLINE_SIDECAR_CONFIG')?.value;
    const config = validate(SidecarConfigSchema, JSON.parse(configText ?? 'null'), 'rendered sidecar config');
    const identity = input.identities.find((i) => i.metadata.name === result.identity)!;
    const acceptAnyUser = input.pod.metadata?.annotations?.['byline.dev/accept-any-user'] === 'true';
    expect(config).toEqual(renderSidecarConfig(identity, routes, input.options, acceptAnyUser));
    // Only a pod that opted out, or a route that does not name its role (the agent's env cannot name
    // it then), takes any user name; otherwise only the role the agent's env names.
    for (const [i, r] of config.routes.entries()) {
      const namesRole = routes[i]!.spec.credentials?.username !== undefined;
      expect(r.credentials.mode === 'inject' && r.credentials.acceptAnyUser).toBe(
        acceptAnyUser || !namesRole || undefined,
      );
    }

    const annotation = JSON.parse(pod.metadata?.annotations?.['byline.dev/injected'] ?? 'null');
    expect(annotation).toEqual({
      identity: result.identity,
      routes: routes.map((r) => r.metadata.name),
      version: 1,
    });
    for (const [k, v] of Object.entries(input.pod.metadata?.annotations ?? {})) {
      expect(pod.metadata?.annotations?.[k]).toBe(v);
    }

    // The service account the identity was chosen for is the one the pod (and its token) runs as.
    expect(spec.serviceAccountName).toBe(original.serviceAccountName || original.serviceAccount || 'default');

    // The spool: an emptyDir bounded a little above maxSpoolBytes (the spool itself is the first
    // bound: the kubelet evicts a pod past its sizeLimit), unless the pod names a claim.
    const claim = input.pod.metadata?.annotations?.['byline.dev/spool-volume'];
    const sizeLimitMi = Math.ceil(((config.audit.maxSpoolBytes ?? 0) + 64 * 1024 * 1024) / 1024 ** 2);
    expect(config.audit.maxSpoolBytes).toBeGreaterThan(0);
    expect(volumes.get('byline-spool')).toEqual(
      claim
        ? { name: 'byline-spool', persistentVolumeClaim: { claimName: claim } }
        : { name: 'byline-spool', emptyDir: { sizeLimit: `${sizeLimitMi}Mi` } },
    );

    // Never injected twice: our own output is recognised (and nothing else is, see the forged fixtures).
    expect(mutatePod({ ...input, pod })).toMatchObject({ outcome: 'skipped', reason: 'AlreadyInjected' });
  });
});

describe('renderSidecarConfig', () => {
  it('renders a config the sidecar accepts, for every injected fixture', () => {
    for (const name of injectedCases) {
      const input = load(name);
      const identity = mutatePod(input).identity;
      const config = renderSidecarConfig(
        input.identities.find((i) => i.metadata.name === identity)!,
        routesOf(input),
        input.options,
      );
      expect(() => validate(SidecarConfigSchema, config, name)).not.toThrow();
    }
  });

  it('follows the contract field by field', () => {
    const input = load('inject-verify-full-ca');
    expect(renderSidecarConfig(input.identities[0]!, input.routes, input.options)).toEqual({
      identity: {
        kubernetes: {
          tokenPath: '/var/run/byline/token/token',
          collector: { url: 'http://byline-collector.byline.svc:8080' },
        },
      },
      routes: [
        {
          name: 'orders-db',
          listen: '127.0.0.1:15432',
          upstream: {
            host: 'orders.db.example.com',
            port: 5432,
            database: 'orders',
            sslMode: 'verify-full',
            sslRootCertFile: '/var/run/byline/ca/orders-db/root.pem',
          },
          credentials: {
            mode: 'inject',
            usernameFile: '/var/run/byline/routes/orders-db/db-user',
            passwordFile: '/var/run/byline/routes/orders-db/db-password',
            acceptAnyUser: true,
          },
        },
      ],
      audit: {
        params: 'none',
        spoolDir: '/var/spool/byline',
        maxSpoolBytes: 1073741824,
        sinks: [
          { collector: { url: 'http://byline-collector.byline.svc:8080', tokenFile: '/var/run/byline/token/token' } },
        ],
      },
      metrics: { listen: '0.0.0.0:9187' },
    });
  });

  it('writes the collector CA inline on the whoami collector and the sink, https URLs', () => {
    const input = load('inject-collector-tls');
    const config = renderSidecarConfig(input.identities[0]!, input.routes, input.options);
    const caPem = input.options.collectorCaPem;
    expect(caPem).toMatch(/^-----BEGIN CERTIFICATE-----/);
    expect(config.identity).toEqual({
      kubernetes: {
        tokenPath: '/var/run/byline/token/token',
        collector: { url: 'https://byline-collector.byline.svc:8443', caPem },
      },
    });
    expect(config.audit.sinks).toEqual([
      {
        collector: {
          url: 'https://byline-collector.byline.svc:8443',
          tokenFile: '/var/run/byline/token/token',
          caPem,
        },
      },
    ]);
  });

  it('fills in the schema defaults of a route', () => {
    const input = load('inject-default-service-account');
    const [route] = renderSidecarConfig(input.identities[0]!, input.routes, input.options).routes;
    expect(route?.upstream).toEqual({
      host: 'warehouse.db.svc',
      port: 5432,
      database: 'warehouse',
      sslMode: 'require',
    });
    expect(route?.credentials).toEqual({
      mode: 'inject',
      usernameFile: '/var/run/byline/routes/warehouse/username',
      passwordFile: '/var/run/byline/routes/warehouse/password',
      // The route does not name its role, so the agent's env cannot either.
      acceptAnyUser: true,
    });
  });

  it('throws on a route it cannot render', () => {
    const input = load('refuse-invalid-route');
    expect(() => renderSidecarConfig(input.identities[0]!, input.routes, input.options)).toThrow(/orders\.db/);
  });
});

/** Variations on the plain case that need no golden of their own. */
describe('mutatePod decisions', () => {
  it("the sidecar takes only the user name the agent's env gives: the route's role when it names one; any name by the pod's opt-in or when the route does not name its role", () => {
    const credentialsOf = (input: InjectionInput) => {
      const pod = applyPatch(input.pod, mutatePod(input).patch);
      const proxy = pod.spec!.initContainers!.find((c) => c.name === 'byline-proxy')!;
      const text = proxy.env!.find((e) => e.name === 'BYLINE_SIDECAR_CONFIG')!.value!;
      return validate(SidecarConfigSchema, JSON.parse(text), 'rendered').routes[0]!.credentials;
    };
    // The role lives only in the Secret, which the webhook does not read: the agent's env cannot name
    // it, so refusing other names would refuse every agent of such a route.
    const unnamed = load('inject-one-route');
    expect(credentialsOf(unnamed)).toMatchObject({ acceptAnyUser: true });
    const named = load('inject-route-names-role');
    expect(credentialsOf(named)).toEqual({
      mode: 'inject',
      username: 'app_user',
      passwordFile: '/var/run/byline/routes/orders-db/password',
    });
    const optedOut = load('inject-route-names-role');
    optedOut.pod.metadata!.annotations = {
      ...optedOut.pod.metadata!.annotations,
      'byline.dev/accept-any-user': 'true',
    };
    expect(credentialsOf(optedOut)).toMatchObject({ acceptAnyUser: true });
    optedOut.pod.metadata!.annotations['byline.dev/accept-any-user'] = 'false';
    expect(credentialsOf(optedOut)).not.toHaveProperty('acceptAnyUser');
  });

  const base = () => load('inject-one-route');
  const withRoute = (input: InjectionInput, change: (spec: DatabaseRoute['spec']) => void) => {
    change(input.routes[0]!.spec);
    return input;
  };
  const withPod = (input: InjectionInput, change: (pod: V1Pod) => void) => {
    change(input.pod);
    return input;
  };

  it.each([
    [
      'a route listening on the metrics port',
      withRoute(base(), (s) => {
        s.listenPort = 9187;
      }),
      'ListenPortConflict',
      /9187/,
    ],
    [
      'an app container on the metrics port',
      withPod(base(), (p) => {
        p.spec!.containers[0]!.ports = [{ containerPort: 9187 }];
      }),
      'ListenPortConflict',
      /container "agent" uses port 9187/,
    ],
    [
      'an init container on the listen port',
      withPod(base(), (p) => {
        p.spec!.initContainers = [{ name: 'setup', image: 'x', ports: [{ containerPort: 15432 }] }];
      }),
      'ListenPortConflict',
      /container "setup"/,
    ],
    [
      'two variables of one route with the same name',
      withRoute(base(), (s) => {
        s.env = { host: 'PGHOST', url: 'PGHOST' };
      }),
      'InvalidRoute',
      /sets PGHOST twice/,
    ],
    [
      'a route name too long for a volume name',
      (() => {
        const input = base();
        const long = `orders-${'x'.repeat(44)}`; // 51 characters: "byline-route-" makes 64
        input.routes[0]!.metadata.name = long;
        input.identities[0]!.spec.routes[0]!.name = long;
        return input;
      })(),
      'InvalidRoute',
      /at most 50 characters/,
    ],
    [
      'a secret key that would leave the route directory',
      withRoute(base(), (s) => {
        s.credentials.secretRef.passwordKey = '../token';
      }),
      'InvalidRoute',
      /passwordKey/,
    ],
    [
      'a route failing its schema',
      withRoute(base(), (s) => {
        (s as { listenPort: unknown }).listenPort = '15432';
      }),
      'InvalidRoute',
      /spec\.listenPort: expected integer/,
    ],
    [
      'a collector URL the sidecar would refuse',
      (() => {
        const input = base();
        input.options.collectorUrl = 'byline-collector:8080';
        return input;
      })(),
      'InvalidRoute',
      /identity\.kubernetes\.collector\.url/,
    ],
    [
      'an identity claiming the SA in another namespace',
      (() => {
        const input = base();
        input.identities[0]!.metadata.namespace = 'elsewhere';
        return input;
      })(),
      'NoIdentity',
      /service account "billing-reconciler"/,
    ],
    [
      'hostNetwork even with the shared process namespace allowed',
      withPod(base(), (p) => {
        p.spec!.hostNetwork = true;
        p.metadata!.annotations!['byline.dev/allow-shared-process-namespace'] = 'true';
      }),
      'HostNetwork',
      /hostNetwork/,
    ],
    [
      'an inject annotation other than "true"',
      withPod(base(), (p) => {
        p.metadata!.annotations!['byline.dev/inject'] = 'yes';
      }),
      'NotRequested',
      /byline\.dev\/inject/,
    ],
    [
      'a regular container already named byline-proxy',
      withPod(base(), (p) => {
        p.spec!.containers.push({ name: 'byline-proxy', image: 'x' });
      }),
      'ForgedInjection',
      /a container named byline-proxy/,
    ],
    [
      'an ephemeral container named byline-proxy',
      withPod(base(), (p) => {
        p.spec!.ephemeralContainers = [{ name: 'byline-proxy', image: 'x' }];
      }),
      'ForgedInjection',
      /a container named byline-proxy/,
    ],
    [
      'an injected annotation and a sidecar for another identity',
      (() => {
        const input = base();
        const { patch } = mutatePod(input);
        input.pod = applyPatch(input.pod, patch);
        input.identities[0]!.metadata.name = 'someone-else';
        return input;
      })(),
      'ForgedInjection',
      /byline\.dev\/injected is not the one this webhook would write/,
    ],
    [
      'a volume device on the spool',
      withPod(base(), (p) => {
        p.spec!.containers[0]!.volumeDevices = [{ name: 'byline-spool', devicePath: '/dev/spool' }];
      }),
      'SidecarVolumeMounted',
      /container "agent" mounts volume "byline-spool"/,
    ],
    [
      'a route Secret read by a pod with the inject annotation "false" in an enabled namespace',
      withPod(base(), (p) => {
        p.metadata!.annotations!['byline.dev/inject'] = 'false';
        p.spec!.containers[0]!.env = [
          { name: 'PW', valueFrom: { secretKeyRef: { name: 'orders-db-app', key: 'password' } } },
        ];
      }),
      'RouteSecretExposed',
      /reads PW from the Secret "orders-db-app" of DatabaseRoute "orders-db"/,
    ],
    [
      "the Secret of a route of the namespace that the pod's identity does not use",
      (() => {
        const input = base();
        input.routes.push({
          ...structuredClone(input.routes[0]!),
          metadata: { name: 'hr-db', namespace: 'payments' },
          spec: {
            ...structuredClone(input.routes[0]!.spec),
            credentials: { secretRef: { name: 'hr-db-app', usernameKey: 'username', passwordKey: 'password' } },
          },
        });
        input.pod.spec!.containers[0]!.envFrom = [{ secretRef: { name: 'hr-db-app' } }];
        return input;
      })(),
      'RouteSecretExposed',
      /Secret "hr-db-app" of DatabaseRoute "hr-db"/,
    ],
  ] as const)('%s', (_, input, reason, message) => {
    const result = mutatePod(input);
    expect(result.reason).toBe(reason);
    expect(result.message).toMatch(message);
    expect(result.patch).toEqual([]);
  });

  it('raises terminationGracePeriodSeconds to the sidecar drain plus margin, never lowers it', () => {
    const graceAfter = (asked: number | undefined) => {
      const input = withPod(base(), (pod) => {
        if (asked === undefined) delete pod.spec!.terminationGracePeriodSeconds;
        else pod.spec!.terminationGracePeriodSeconds = asked;
      });
      const result = mutatePod(input);
      expect(result.outcome).toBe('injected');
      return applyPatch(input.pod, result.patch).spec!.terminationGracePeriodSeconds;
    };
    const needed = DEFAULT_DRAIN_SECONDS + GRACE_MARGIN_SECONDS;
    expect(graceAfter(0)).toBe(needed);
    expect(graceAfter(needed - 1)).toBe(needed);
    expect(graceAfter(needed)).toBe(needed);
    expect(graceAfter(120)).toBe(120);
    // Absent means Kubernetes' 30 s, which already covers the default drain: nothing is added.
    expect(graceAfter(undefined)).toBeUndefined();
  });

  it('names every missing route', () => {
    const input = base();
    input.identities[0]!.spec.routes.push({ name: 'a-db', access: 'read' }, { name: 'b-db', access: 'read' });
    expect(mutatePod(input)).toMatchObject({
      outcome: 'refused',
      reason: 'RouteNotFound',
      identity: 'billing-reconciler',
      message:
        'AgentIdentity "billing-reconciler" uses DatabaseRoutes "a-db", "b-db", which do not exist in namespace "payments"',
    });
  });

  it('escapes "/" and "~" in annotation keys, and adds whole arrays where the pod has none', () => {
    const { patch } = mutatePod(base());
    expect(patch.map((op) => `${op.op} ${op.path}`)).toEqual([
      'add /spec/containers/0/env',
      'add /spec/initContainers',
      'add /spec/volumes',
      'add /metadata/annotations/byline.dev~1injected',
    ]);
    expect(escapePointerToken('a~b/c')).toBe('a~0b~1c');
    expect(applyPatch({ m: { 'a~b/c': 1 } }, [{ op: 'replace', path: '/m/a~0b~1c', value: 2 }])).toEqual({
      m: { 'a~b/c': 2 },
    });
  });

  it('uses the deprecated serviceAccount field when serviceAccountName is absent', () => {
    const input = withPod(base(), (p) => {
      delete p.spec!.serviceAccountName;
      p.spec!.serviceAccount = 'billing-reconciler';
    });
    expect(mutatePod(input).reason).toBe('Injected');
  });
});

describe('the test applier is strict', () => {
  it.each([
    ['replace of a missing member', { a: {} }, { op: 'replace', path: '/a/b', value: 1 }],
    ['add under a missing parent', { a: {} }, { op: 'add', path: '/x/y', value: 1 }],
    ['an index past the end', { a: [1] }, { op: 'add', path: '/a/2', value: 1 }],
    ['a pointer without "/"', { a: 1 }, { op: 'add', path: 'a', value: 1 }],
  ] as const)('refuses %s', (_, doc, op) => {
    expect(() => applyPatch(doc, [op])).toThrow();
  });

  it('appends with "-" and inserts at an index', () => {
    expect(
      applyPatch({ a: [1, 2] }, [
        { op: 'add', path: '/a/-', value: 3 },
        { op: 'add', path: '/a/0', value: 0 },
      ]),
    ).toEqual({ a: [0, 1, 2, 3] });
  });
});
