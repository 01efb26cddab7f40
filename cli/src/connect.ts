/**
 * `byline env ROUTE` and `byline connect ROUTE [-- psql args]`: hand a fresh OIDC token to any
 * Postgres client as its password (libpq's PGPASSWORD), with TLS verified towards the gateway.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { type ClientRouteConfig, ClientRoutesSchema, loadConfigFile } from '@byline/api';
import { defaultLogin, freshPassword } from './login.js';
import { configDir } from './token-cache.js';
import { UsageError } from './trail.js';

export const ENV_USAGE = `usage: byline env ROUTE [--host H --port P] [--database D] [--sslmode verify-full|verify-ca|require]
                        [--sslrootcert FILE] [--issuer URL --client-id ID]
       byline connect ROUTE [same options] [-- psql arguments]

Prints (env) or passes to psql (connect) PGHOST, PGPORT, PGSSLMODE and PGPASSWORD (a fresh token
from byline login) for the gateway route ROUTE, as given by the flags or by
${'$'}XDG_CONFIG_HOME/byline/routes.yaml (route name → { host, port, database, sslmode, sslrootcert, issuer, clientId }).
`;

const OPTIONS = {
  host: { type: 'string' },
  port: { type: 'string' },
  database: { type: 'string' },
  sslmode: { type: 'string' },
  sslrootcert: { type: 'string' },
  issuer: { type: 'string' },
  'client-id': { type: 'string' },
} as const;

/** The libpq environment for a route: everything but the password comes from flags or routes.yaml. */
export async function routeEnv(args: string[]): Promise<{ env: Record<string, string>; rest: string[] }> {
  const { values, positionals } = parseArgs({ args, strict: true, allowPositionals: true, options: OPTIONS });
  const [route, ...rest] = positionals;
  if (!route) throw new UsageError('name the route, e.g. byline env orders-db');
  const file = join(configDir(), 'routes.yaml');
  const known: Partial<ClientRouteConfig> = existsSync(file)
    ? (loadConfigFile(file, ClientRoutesSchema, 'routes file')[route] ?? {})
    : {};
  const host = values.host ?? known.host;
  const port = values.port ?? (known.port === undefined ? undefined : String(known.port));
  if (!host || !port) {
    throw new UsageError(`route "${route}" is not in ${file}: give --host and --port of its gateway listener`);
  }
  if (!/^[0-9]{1,5}$/.test(port)) throw new UsageError(`--port must be a port number, got ${JSON.stringify(port)}`);
  const sslmode = values.sslmode ?? known.sslmode ?? 'verify-full';
  if (!['verify-full', 'verify-ca', 'require'].includes(sslmode)) {
    throw new UsageError(
      `--sslmode must be verify-full, verify-ca or require (the token must not travel in clear), got ${sslmode}`,
    );
  }
  const last = defaultLogin();
  const issuer = values.issuer ?? known.issuer ?? last?.issuer;
  const clientId = values['client-id'] ?? known.clientId ?? last?.clientId;
  if (!issuer || !clientId)
    throw new UsageError('no issuer to take a token from: run byline login first, or give --issuer and --client-id');
  const env: Record<string, string> = {
    PGHOST: host,
    PGPORT: port,
    PGSSLMODE: sslmode,
    PGPASSWORD: await freshPassword(issuer, clientId),
  };
  const database = values.database ?? known.database;
  if (database) env.PGDATABASE = database;
  const rootCert = values.sslrootcert ?? known.sslrootcert;
  if (rootCert) env.PGSSLROOTCERT = rootCert;
  return { env, rest };
}

const shellQuote = (v: string) => `'${v.replace(/'/g, `'\\''`)}'`;

export async function env(args: string[], out: NodeJS.WritableStream = process.stdout): Promise<number> {
  const { env: vars, rest } = await routeEnv(args);
  if (rest.length > 0) throw new UsageError(`unexpected arguments: ${rest.join(' ')}`);
  for (const [k, v] of Object.entries(vars)) out.write(`export ${k}=${shellQuote(v)}\n`);
  return 0;
}

export async function connect(args: string[]): Promise<number> {
  const { env: vars, rest } = await routeEnv(args);
  const psql = spawn('psql', rest, { stdio: 'inherit', env: { ...process.env, ...vars } });
  return new Promise<number>((resolve, reject) => {
    psql.once('error', (e) => reject(new Error(`cannot run psql: ${e.message}`)));
    psql.once('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}
