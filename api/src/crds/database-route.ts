/** DatabaseRoute: one upstream Postgres database and the credential the sidecar injects for it. */
import { type Static, Type as T } from '@sinclair/typebox';
import { type CustomObject, cel, GROUP, K8sName, type ResourceKind, Status, VERSION } from './common.js';

export const DatabaseRouteKind: ResourceKind = {
  group: GROUP,
  version: VERSION,
  kind: 'DatabaseRoute',
  plural: 'databaseroutes',
  singular: 'databaseroute',
  shortNames: ['dbroute'],
  listKind: 'DatabaseRouteList',
};

const EnvName = T.String({
  pattern: '^[A-Za-z_][A-Za-z0-9_]*$',
  maxLength: 128,
  description: 'An environment variable name.',
});

export const DatabaseRouteSpec = T.Object(
  {
    upstream: T.Object(
      {
        host: T.String({ minLength: 1, maxLength: 253, description: 'Host name or address of the Postgres server.' }),
        port: T.Integer({ minimum: 1, maximum: 65535, default: 5432 }),
        database: T.String({ minLength: 1, maxLength: 63, description: 'The database this route serves.' }),
        sslMode: T.Union([T.Literal('disable'), T.Literal('prefer'), T.Literal('require'), T.Literal('verify-full')], {
          default: 'require',
          description: 'TLS towards Postgres, as libpq: disable, prefer, require (no verification), verify-full.',
        }),
        caSecretRef: T.Optional(
          T.Object(
            { name: K8sName('Secret holding the CA bundle for verify-full.'), key: T.String({ default: 'ca.crt' }) },
            { additionalProperties: false },
          ),
        ),
      },
      { additionalProperties: false },
    ),
    credentials: T.Object(
      {
        secretRef: T.Object(
          {
            name: K8sName('Secret in the same namespace with the database username and password.'),
            usernameKey: T.String({ default: 'username', minLength: 1 }),
            passwordKey: T.String({ default: 'password', minLength: 1 }),
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
    }),
    env: T.Optional(
      T.Object(
        {
          host: T.Optional(EnvName),
          port: T.Optional(EnvName),
          url: T.Optional(EnvName),
        },
        {
          additionalProperties: false,
          description: 'App-container variables pointed at the sidecar (e.g. PGHOST, PGPORT, DATABASE_URL).',
          'x-kubernetes-validations': [
            cel(
              '!(has(self.host) && has(self.port) && self.host == self.port) && !(has(self.host) && has(self.url) && self.host == self.url) && !(has(self.port) && has(self.url) && self.port == self.url)',
              'env.host, env.port and env.url must name different variables',
            ),
          ],
        },
      ),
    ),
  },
  {
    additionalProperties: false,
    'x-kubernetes-validations': [
      cel(
        "self.upstream.sslMode != 'verify-full' || !self.upstream.host.matches('^[0-9.]+$')",
        'upstream.sslMode verify-full checks the host name: upstream.host must be a DNS name, not an IP address',
      ),
    ],
  },
);

export type DatabaseRouteSpec = Static<typeof DatabaseRouteSpec>;
export const DatabaseRouteStatus = Status;
export type DatabaseRoute = CustomObject<DatabaseRouteSpec>;
