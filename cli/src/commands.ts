/**
 * Every `byline` subcommand: its options (which make both the parser and the help) and where its
 * code is. Each command's code is imported only when it runs, so `byline sidecar` never loads the
 * collector's stores, the Kubernetes client or the operator, and `--help` loads none of them.
 *
 * To add a command: add an entry here whose `run` imports `./commands/NAME.js` (a new file in
 * src/commands/ exporting `run(values)`); the build picks up every file there as an entry point.
 */
import type { CommandSpec, OptionSpec } from './command-table.js';
import { LOG_FORMATS, LOG_LEVELS } from './log-settings.js';

/** The long-running commands log the same way. */
const LOGGING: Record<string, OptionSpec> = {
  'log-format': {
    type: 'string',
    arg: 'FORMAT',
    choices: LOG_FORMATS,
    default: 'json',
    description: 'JSON lines for log pipelines, or one readable line per record',
  },
  'log-level': {
    type: 'string',
    arg: 'LEVEL',
    choices: LOG_LEVELS,
    description: "overrides the config's log.level (default info)",
  },
};

const COLLECTOR_ACCESS: Record<string, OptionSpec> = {
  collector: { type: 'string', arg: 'URL', description: "the collector's address, http(s)://host:port" },
  'token-file': { type: 'string', arg: 'FILE', description: 'a file holding a reader token for the collector' },
};

const KUBE_ACCESS: Record<string, OptionSpec> = {
  kubeconfig: { type: 'string', arg: 'FILE', description: 'default: $KUBECONFIG or ~/.kube/config' },
  namespace: { type: 'string', short: 'n', arg: 'NS', description: "default: the kubeconfig context's" },
};

/** Whose `byline login` token to use (byline env/connect, and byline trail --login). */
const LOGIN_TOKEN: Record<string, OptionSpec> = {
  issuer: { type: 'string', arg: 'URL', description: 'whose token (default: the last byline login)' },
  'client-id': { type: 'string', arg: 'ID', description: 'with --issuer' },
};

/** byline env and byline connect: where the route's gateway listener is, and whose token to use. */
const ROUTE_ACCESS: Record<string, OptionSpec> = {
  host: { type: 'string', arg: 'HOST', description: "the gateway's host for this route" },
  port: { type: 'string', arg: 'PORT', description: "the route's port on the gateway" },
  database: { type: 'string', arg: 'NAME', description: 'PGDATABASE' },
  sslmode: {
    type: 'string',
    arg: 'MODE',
    choices: ['verify-full', 'verify-ca', 'require'],
    description: 'default verify-full; the token never travels in clear',
  },
  sslrootcert: { type: 'string', arg: 'FILE', description: "the gateway's CA, when not in the system store" },
  ...LOGIN_TOKEN,
};
const ROUTE_NOTES =
  'Routes can be described once in $XDG_CONFIG_HOME/byline/routes.yaml:\n' +
  '  orders-db: { host: gateway.example.com, port: 5432, database: orders }\n' +
  'An expired token is refreshed first (refresh token, or the client secret of a machine login).';

export const COMMANDS: readonly CommandSpec[] = [
  {
    name: 'sidecar',
    summary: 'run the Postgres proxy that records every statement',
    synopsis: '(--config FILE | --config-env NAME) [options]',
    options: {
      config: { type: 'string', short: 'c', arg: 'FILE', description: 'the sidecar config, YAML or JSON' },
      'config-env': { type: 'string', arg: 'NAME', description: 'read the config from environment variable NAME' },
      ...LOGGING,
    },
    notes: 'Relative paths in a config file are resolved against the directory of that file.',
    run: async (v) => (await import('./commands/sidecar.js')).run(v),
  },
  {
    name: 'collector',
    summary: 'receive, verify and store audit events; serve queries over HTTP',
    synopsis: '--config FILE [options]',
    options: {
      config: { type: 'string', short: 'c', arg: 'FILE', required: true, description: 'the collector config' },
      ...LOGGING,
    },
    notes: 'Relative paths in the config (token files, TLS files, sqlite:PATH) resolve against its directory.',
    run: async (v) => (await import('./commands/collector.js')).run(v),
  },
  {
    name: 'operator',
    summary: 'reconcile AgentIdentities and DatabaseRoutes; serve the pod-injection webhook',
    synopsis: '--namespace NS --collector-url URL [options]',
    options: {
      namespace: {
        type: 'string',
        arg: 'NS',
        required: true,
        description: "the operator's namespace (its Lease and webhook TLS Secret)",
      },
      'collector-url': {
        type: 'string',
        arg: 'URL',
        required: true,
        description: 'the collector the sidecars report to',
      },
      kubeconfig: {
        type: 'string',
        arg: 'FILE',
        description: 'default: in-cluster config, else $KUBECONFIG or ~/.kube/config',
      },
      'webhook-listen': {
        type: 'string',
        arg: 'ADDR',
        default: '0.0.0.0:9443',
        description: "host:port of the webhook's HTTPS server",
      },
      'webhook-url': {
        type: 'string',
        arg: 'URL',
        description: 'register the webhook at URL/mutate-pods (outside a cluster: https://127.0.0.1:PORT)',
      },
      'webhook-service': {
        type: 'string',
        arg: 'NAME',
        description: 'or at Service NAME in NS, port 443 (in a cluster)',
      },
      'webhook-cert-dir': {
        type: 'string',
        arg: 'DIR',
        description: 'use tls.crt, tls.key, ca.crt from DIR (cert-manager) instead of managing a Secret',
      },
      'collector-tls-secret': {
        type: 'string',
        arg: 'NAME',
        description:
          "issue and renew the collector's certificate in Secret NAME in NS; inject its CA (https collector URL)",
      },
      'collector-ca-file': {
        type: 'string',
        arg: 'FILE',
        description: "or: the collector's CA bundle (cert-manager's ca.crt), injected into sidecars",
      },
      'webhook-failure-policy': {
        type: 'string',
        arg: 'POLICY',
        choices: ['Fail', 'Ignore'],
        description: 'Fail (the default): no pod starts uninjected',
      },
      'webhook-timeout-seconds': { type: 'string', arg: 'N', description: '1-30 (default 10)' },
      'webhook-namespace-label': {
        type: 'string',
        arg: 'KEY=VALUE',
        description: 'namespaces the API server sends pods from (default byline.dev/injection=enabled)',
      },
      'webhook-configuration': {
        type: 'string',
        arg: 'NAME',
        description: "the pods' MutatingWebhookConfiguration (default byline-pod-injector; approvals: NAME-approvals)",
      },
      'webhook-ca-only': {
        type: 'boolean',
        default: false,
        description: 'the configurations belong to the Helm release: only keep their caBundle current, create none',
      },
      image: {
        type: 'string',
        arg: 'IMG',
        description: 'the sidecar image to inject (default ghcr.io/byline-dev/byline:0.1.0)',
      },
      'sidecar-image': { type: 'string', arg: 'IMG', description: 'alias of --image' },
      'sidecar-cpu-request': {
        type: 'string',
        arg: 'Q',
        description: "the injected sidecar's CPU request (default 50m)",
      },
      'sidecar-cpu-limit': { type: 'string', arg: 'Q', description: "the injected sidecar's CPU limit (default none)" },
      'sidecar-memory-request': {
        type: 'string',
        arg: 'Q',
        description: "the injected sidecar's memory request (default 64Mi)",
      },
      'sidecar-memory-limit': {
        type: 'string',
        arg: 'Q',
        description: "the injected sidecar's memory limit (default none)",
      },
      'sidecar-spool-size': {
        type: 'string',
        arg: 'Q',
        description: 'maxSpoolBytes (default 1Gi); the spool emptyDir gets a sizeLimit 64Mi above it',
      },
      'sidecar-node-options': {
        type: 'string',
        arg: 'FLAGS',
        description:
          'the injected sidecar\'s NODE_OPTIONS, V8 heap sizing only (default --max-semi-space-size=4; "" for none)',
      },
      'sidecar-image-pull-secret': {
        type: 'string',
        arg: 'NAME',
        multiple: true,
        description: "added to injected pods' imagePullSecrets",
      },
      'metrics-listen': {
        type: 'string',
        arg: 'ADDR',
        description: '/metrics, /healthz, /readyz (default 0.0.0.0:8080 in a cluster, else 127.0.0.1:8080)',
      },
      'http-listen': { type: 'string', arg: 'ADDR', description: 'alias of --metrics-listen' },
      'no-leader-election': {
        type: 'boolean',
        default: false,
        description: 'reconcile without taking the Lease (a single replica)',
      },
      ...LOGGING,
    },
    run: async (v) => (await import('./commands/operator.js')).run(v),
  },
  {
    name: 'trail',
    summary: 'who ran what: events from the collector, as a table or JSON lines',
    synopsis: '--collector URL (--token-file FILE | --login) [filters] [--limit N] [--format table|json] [--follow]',
    options: {
      ...COLLECTOR_ACCESS,
      login: {
        type: 'boolean',
        default: false,
        description:
          'instead of --token-file, the ID token of byline login (refreshed when expired), for a collector that trusts its issuer (auth.oidc)',
      },
      ...LOGIN_TOKEN,
      identity: { type: 'string', arg: 'NAME', description: 'only events of this identity' },
      namespace: {
        type: 'string',
        arg: 'NS',
        description: "only this namespace's identities (required when RBAC lets you read only some namespaces)",
      },
      table: { type: 'string', arg: 'NAME', description: 'only statements that touched this table' },
      session: { type: 'string', arg: 'ID', description: 'only this session' },
      route: { type: 'string', arg: 'NAME', description: 'only this route' },
      database: { type: 'string', arg: 'NAME', description: 'only this database' },
      approval: { type: 'string', arg: 'NAME', description: 'only statements run under this approval' },
      class: {
        type: 'string',
        arg: 'CLASS',
        choices: ['read', 'write', 'ddl', 'role', 'tcl', 'misc'],
        description: 'only statements of this class',
      },
      status: {
        type: 'string',
        arg: 'STATUS',
        choices: ['ok', 'error', 'cancelled', 'denied', 'unknown'],
        description: 'only events with this result status',
      },
      text: {
        type: 'string',
        arg: 'TEXT',
        description: 'only statements whose text contains TEXT (exactly: case-sensitive, no wildcards)',
      },
      since: { type: 'string', arg: 'TIME', description: 'from this RFC 3339 time on, e.g. 2026-11-27T09:00:00Z' },
      until: { type: 'string', arg: 'TIME', description: 'before this RFC 3339 time' },
      limit: { type: 'string', arg: 'N', description: 'at most N events' },
      format: {
        type: 'string',
        arg: 'FORMAT',
        choices: ['table', 'json'],
        default: 'table',
        description: 'json prints each event exactly as the sidecar emitted it, one per line',
      },
      follow: {
        type: 'boolean',
        short: 'f',
        default: false,
        description:
          'keep printing events as they are stored, in the order stored, until interrupted (or --limit); from now on, or from the first stored with --since; rides out collector restarts',
      },
    },
    run: async (v) => (await import('./commands/trail.js')).run(v),
  },
  {
    name: 'verify',
    summary: 'recompute every hash chain of the stored trail',
    synopsis: '(--collector URL --token-file FILE | --store URL) [--session ID] [--receipt-key KEY] [--allow-unsigned]',
    options: {
      ...COLLECTOR_ACCESS,
      store: {
        type: 'string',
        arg: 'URL',
        description: "read the collector's store directly: sqlite:PATH or postgres://…",
      },
      session: { type: 'string', arg: 'ID', description: "only the streams that hold this session's events" },
      'receipt-key': {
        type: 'string',
        arg: 'KEY',
        description:
          "the collector's receipt key (base64url, logged at its start; give it as --receipt-key=KEY, since a key may start with '-'): every registered key must carry its receipt, and every retention checkpoint its signature; through --collector the collector's own is used unless given",
      },
      'allow-unsigned': {
        type: 'boolean',
        default: false,
        description: 'events no signed head covers are reported, not failed (trails written before sidecars signed)',
      },
    },
    run: async (v) => (await import('./commands/verify.js')).run(v),
  },
  {
    name: 'approval request',
    summary: 'ask for an Approval that unlocks gated statements for a while (through your kubeconfig)',
    synopsis: '--identity NAME --route NAME (--scope CLASSES | --table PATTERN)... --reason TEXT (--for D | --until T)',
    options: {
      ...KUBE_ACCESS,
      identity: { type: 'string', arg: 'NAME', description: 'the AgentIdentity the approval is for' },
      route: { type: 'string', arg: 'NAME', description: 'its route the approval applies to' },
      scope: {
        type: 'string',
        arg: 'CLASSES',
        multiple: true,
        description: 'statement classes to unlock, comma-separated: read, write, ddl, role, tcl, misc',
      },
      table: {
        type: 'string',
        arg: 'PATTERN',
        multiple: true,
        description: 'a table pattern to unlock, like public.payroll*',
      },
      reason: { type: 'string', arg: 'TEXT', description: 'why (shown to the approver and kept on every event)' },
      ticket: { type: 'string', arg: 'ID', description: 'a change or incident ticket' },
      for: { type: 'string', arg: 'DURATION', description: 'how long once approved: 2h, 30m, 1h30m' },
      until: { type: 'string', arg: 'TIME', description: 'or until an RFC 3339 time' },
      name: { type: 'string', arg: 'NAME', description: "the Approval's name (default: generated from the identity)" },
    },
    notes: 'Who asked is stamped by the operator from your credentials; someone else approves.',
    run: async (v) => (await import('./commands/approval.js')).requestApproval(v),
  },
  {
    name: 'approval list',
    summary: 'list Approvals with their phase, requester and approver',
    synopsis: '[--pending] [-A]',
    options: {
      ...KUBE_ACCESS,
      pending: { type: 'boolean', default: false, description: 'only those waiting for a decision' },
      'all-namespaces': { type: 'boolean', short: 'A', default: false, description: 'every namespace' },
    },
    run: async (v) => (await import('./commands/approval.js')).listApprovals(v),
  },
  {
    name: 'approve',
    summary: 'approve an Approval (needs the approve verb; never your own request)',
    operand: 'NAME',
    synopsis: '[--reason TEXT]',
    options: { ...KUBE_ACCESS, reason: { type: 'string', arg: 'TEXT', description: 'kept on the Approval' } },
    run: async (v) => (await import('./commands/approval.js')).decideApproval('Approved', v),
  },
  {
    name: 'deny',
    summary: 'deny an Approval, or revoke one already approved',
    operand: 'NAME',
    synopsis: '[--reason TEXT]',
    options: { ...KUBE_ACCESS, reason: { type: 'string', arg: 'TEXT', description: 'kept on the Approval' } },
    run: async (v) => (await import('./commands/approval.js')).decideApproval('Denied', v),
  },
  {
    name: 'gateway',
    summary: 'the proxy for people and off-cluster workloads: an OIDC token as the password, over TLS',
    synopsis: '--config FILE [--kubeconfig FILE] [options]',
    options: {
      config: { type: 'string', short: 'c', arg: 'FILE', required: true, description: 'the gateway config' },
      kubeconfig: {
        type: 'string',
        arg: 'FILE',
        description:
          'where AgentIdentities are watched; default: in-cluster config, else $KUBECONFIG or ~/.kube/config',
      },
      ...LOGGING,
    },
    notes: 'No connection is accepted before the AgentIdentities are listed.',
    run: async (v) => (await import('./commands/gateway.js')).run(v),
  },
  {
    name: 'login',
    summary: 'sign in at your identity provider; the token is the password for byline gateway',
    synopsis: '--issuer URL --client-id ID [--browser | --client-secret-file FILE] [options]',
    options: {
      issuer: { type: 'string', arg: 'URL', required: true, description: 'the OpenID issuer, https://…' },
      'client-id': { type: 'string', arg: 'ID', required: true, description: 'the OAuth client registered for byline' },
      browser: {
        type: 'boolean',
        default: false,
        description: 'authorization code + PKCE with a redirect to 127.0.0.1 instead of the device flow',
      },
      'client-secret-file': {
        type: 'string',
        arg: 'FILE',
        description: 'a machine client: the client-credentials grant, its JWT access token is the password',
      },
      resource: { type: 'string', arg: 'URI', description: 'the resource (audience) to ask a machine token for' },
      scope: {
        type: 'string',
        arg: 'SCOPES',
        description: 'default for people: openid email profile groups offline_access',
      },
      'ca-file': { type: 'string', arg: 'FILE', description: "the issuer's CA, when not in the system store" },
    },
    notes:
      'Without --browser: the device flow (RFC 8628), a code to enter at the issuer from any browser.\n' +
      'Tokens are cached per issuer and client, 0600, in $XDG_CONFIG_HOME/byline/tokens/ (else ~/.config/…).',
    run: async (v) => (await import('./commands/login.js')).run(v),
  },
  {
    name: 'env',
    summary: 'print PGHOST, PGPORT, PGSSLMODE and PGPASSWORD (a fresh token) for a gateway route',
    operand: 'ROUTE',
    synopsis: '[options]',
    options: ROUTE_ACCESS,
    notes: ROUTE_NOTES,
    run: async (v) => (await import('./commands/env.js')).run(v),
  },
  {
    name: 'connect',
    summary: 'run psql against a gateway route with a fresh token as its password',
    operand: 'ROUTE',
    synopsis: '[options]',
    passThrough: 'PSQL-ARGS',
    options: ROUTE_ACCESS,
    notes: ROUTE_NOTES,
    run: async (v) => (await import('./commands/env.js')).connect(v),
  },
  {
    name: 'demo',
    summary: 'the whole pipeline on this machine: two agents, a migration, the trail',
    synopsis: '[--keep]',
    options: {
      keep: { type: 'boolean', default: false, description: 'keep everything running afterwards (Ctrl-C stops)' },
    },
    run: async (v) => (await import('./commands/demo.js')).run(v),
  },
];
