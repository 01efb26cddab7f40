/** DatabaseRoute: one upstream Postgres database and the credential the sidecar injects for it. */
import { type Static, Type as T } from '@sinclair/typebox';
import {
  type CrdSource,
  type CustomObject,
  cel,
  GROUP,
  K8sName,
  READY_COLUMNS,
  type ResourceKind,
  Status,
  VERSION,
} from './common.js';
import { Guardrails } from './guardrails.js';

export const DatabaseRouteKind: ResourceKind = {
  group: GROUP,
  version: VERSION,
  kind: 'DatabaseRoute',
  plural: 'databaseroutes',
  singular: 'databaseroute',
  shortNames: ['dbroute'],
  listKind: 'DatabaseRouteList',
  categories: ['byline'],
};

/** The port the injected sidecar serves its metrics on, in the pod's network namespace; no route may take it. */
export const SIDECAR_METRICS_PORT = 9187;

/** A key in a Secret's data, as the API server allows them. */
const SecretKey = (fallback: string) =>
  T.String({
    default: fallback,
    minLength: 1,
    maxLength: 253,
    pattern: '^[-._a-zA-Z0-9]+$',
    description: 'A key in the Secret.',
  });

const EnvName = T.String({
  pattern: '^[A-Za-z_][A-Za-z0-9_]*$',
  maxLength: 128,
  description: 'An environment variable name.',
});

/** CEL: no two of these optional fields hold the same name. */
function distinctEnvNames(fields: string[]): string {
  const pairs: string[] = [];
  for (let i = 0; i < fields.length; i++)
    for (let j = i + 1; j < fields.length; j++) {
      const [a, b] = [fields[i], fields[j]];
      pairs.push(`!(has(self.${a}) && has(self.${b}) && self.${a} == self.${b})`);
    }
  return pairs.join(' && ');
}

export const DatabaseRouteSpec = T.Object(
  {
    upstream: T.Object(
      {
        host: T.String({
          minLength: 1,
          maxLength: 253,
          description: 'Host name or IP address of the Postgres server (no scheme, no port).',
          'x-kubernetes-validations': [
            // A host name or IPv4 address has no colon; an IPv6 address has at least two.
            cel(
              "self.matches('^[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?$') || self.matches('^[0-9A-Fa-f.]*:[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*$')",
              'upstream.host must be a host name or an IP address, without a scheme, port or brackets (the port goes in upstream.port)',
            ),
          ],
        }),
        port: T.Integer({ minimum: 1, maximum: 65535, default: 5432 }),
        database: T.String({ minLength: 1, maxLength: 63, description: 'The database this route serves.' }),
        sslMode: T.Union([T.Literal('disable'), T.Literal('prefer'), T.Literal('require'), T.Literal('verify-full')], {
          default: 'require',
          description: 'TLS towards Postgres, as libpq: disable, prefer, require (no verification), verify-full.',
        }),
        caSecretRef: T.Optional(
          T.Object(
            { name: K8sName('Secret holding the CA bundle for verify-full.'), key: SecretKey('ca.crt') },
            { additionalProperties: false },
          ),
        ),
      },
      {
        additionalProperties: false,
        'x-kubernetes-validations': [
          cel(
            "!has(self.caSecretRef) || self.sslMode == 'verify-full'",
            'upstream.caSecretRef is used only with sslMode verify-full (the other modes do not verify the server)',
            '.caSecretRef',
          ),
        ],
      },
    ),
    credentials: T.Object(
      {
        username: T.Optional(
          T.String({
            minLength: 1,
            maxLength: 63,
            description:
              'The database role the sidecar logs in as. When given, the Secret needs only the password, the ' +
              "agent's env.url (and env.user) name this role, and the sidecar refuses any other user name (28000).",
          }),
        ),
        secretRef: T.Object(
          {
            name: K8sName('Secret in the same namespace with the database username and password.'),
            usernameKey: SecretKey('username'),
            passwordKey: SecretKey('password'),
          },
          { additionalProperties: false },
        ),
      },
      { additionalProperties: false },
    ),
    listenPort: T.Integer({
      minimum: 1024,
      maximum: 65535,
      description: 'The sidecar listens on 127.0.0.1:listenPort for this route.',
      'x-kubernetes-validations': [
        cel(`self != ${SIDECAR_METRICS_PORT}`, `listenPort ${SIDECAR_METRICS_PORT} is taken by the sidecar's metrics`),
      ],
    }),
    env: T.Optional(
      T.Object(
        {
          host: T.Optional(EnvName),
          port: T.Optional(EnvName),
          url: T.Optional(EnvName),
          user: T.Optional({
            ...EnvName,
            description: 'A variable set to credentials.username (e.g. PGUSER), for clients that read PGHOST/PGPORT.',
          }),
        },
        {
          additionalProperties: false,
          description: 'App-container variables pointed at the sidecar (e.g. PGHOST, PGPORT, DATABASE_URL, PGUSER).',
          'x-kubernetes-validations': [
            cel(
              distinctEnvNames(['host', 'port', 'url', 'user']),
              'env.host, env.port, env.url and env.user must name different variables',
            ),
          ],
        },
      ),
    ),
    guardrails: T.Optional(
      T.Object(Guardrails.properties, {
        additionalProperties: false,
        description:
          'Default guardrails for every identity using this route; an AgentIdentity adds its own to them (never removes).',
      }),
    ),
  },
  {
    additionalProperties: false,
    'x-kubernetes-validations': [
      cel(
        "self.upstream.sslMode != 'verify-full' || !(self.upstream.host.matches('^[0-9.]+$') || self.upstream.host.contains(':'))",
        'upstream.sslMode verify-full checks the host name: upstream.host must be a DNS name, not an IP address',
        '.upstream.host',
      ),
      cel(
        '!(has(self.env) && has(self.env.user)) || has(self.credentials.username)',
        'env.user names the role in credentials.username: give credentials.username too',
        '.env.user',
      ),
    ],
  },
);

export type DatabaseRouteSpec = Static<typeof DatabaseRouteSpec>;
export const DatabaseRouteStatus = Status;
export type DatabaseRoute = CustomObject<DatabaseRouteSpec>;

export const DatabaseRouteCrd: CrdSource = {
  resource: DatabaseRouteKind,
  description:
    'DatabaseRoute: one upstream Postgres database, the Secret holding the credential the sidecar logs in with, ' +
    'and the local port and environment variables through which app containers reach it.',
  spec: DatabaseRouteSpec,
  status: DatabaseRouteStatus,
  printerColumns: [
    { name: 'Host', type: 'string', jsonPath: '.spec.upstream.host' },
    { name: 'Database', type: 'string', jsonPath: '.spec.upstream.database' },
    { name: 'Port', type: 'integer', jsonPath: '.spec.listenPort', description: 'The sidecar listens here.' },
    ...READY_COLUMNS,
  ],
  validations: [
    cel(
      "self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$') && size(self.metadata.name) <= 63",
      'metadata.name must be a DNS label (lower-case letters, digits and "-", at most 63): it names the route in the sidecar and in every audit event',
    ),
  ],
  sourceFile: 'api/src/crds/database-route.ts',
};
