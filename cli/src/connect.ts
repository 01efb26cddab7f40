/**
 * `byline env ROUTE` and `byline connect ROUTE [-- psql args]`: hand a fresh OIDC token to any
 * Postgres client as its password (libpq's PGPASSWORD), with TLS verified towards the gateway.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { type ClientRouteConfig, ClientRoutesSchema, loadConfigFile } from '@byline/api';
import { OPERAND, type OptionValues, PASS_THROUGH, UsageError } from './command-table.js';
import { defaultLogin, freshPassword } from './login.js';
import { configDir } from './token-cache.js';

/** The libpq environment for a route: everything but the password comes from flags or routes.yaml. */
export async function routeEnv(values: OptionValues): Promise<Record<string, string>> {
  const v = (k: string) => values[k] as string | undefined;
  const route = v(OPERAND)!;
  const file = join(configDir(), 'routes.yaml');
  const known: Partial<ClientRouteConfig> = existsSync(file)
    ? (loadConfigFile(file, ClientRoutesSchema, 'routes file')[route] ?? {})
    : {};
  const host = v('host') ?? known.host;
  const port = v('port') ?? (known.port === undefined ? undefined : String(known.port));
  if (!host || !port) {
    throw new UsageError(`route "${route}" is not in ${file}: give --host and --port of its gateway listener`);
  }
  if (!/^[0-9]{1,5}$/.test(port)) throw new UsageError(`--port must be a port number, got ${JSON.stringify(port)}`);
  const sslmode = v('sslmode') ?? known.sslmode ?? 'verify-full';
  if (!['verify-full', 'verify-ca', 'require'].includes(sslmode)) {
    throw new UsageError(
      `--sslmode must be verify-full, verify-ca or require (the token must not travel in clear), got ${sslmode}`,
    );
  }
  const last = defaultLogin();
  const issuer = v('issuer') ?? known.issuer ?? last?.issuer;
  const clientId = v('client-id') ?? known.clientId ?? last?.clientId;
  if (!issuer || !clientId)
    throw new UsageError('no issuer to take a token from: run byline login first, or give --issuer and --client-id');
  const env: Record<string, string> = {
    PGHOST: host,
    PGPORT: port,
    PGSSLMODE: sslmode,
    PGPASSWORD: await freshPassword(issuer, clientId),
  };
  const database = v('database') ?? known.database;
  if (database) env.PGDATABASE = database;
  const rootCert = v('sslrootcert') ?? known.sslrootcert;
  if (rootCert) env.PGSSLROOTCERT = rootCert;
  return env;
}

const shellQuote = (v: string) => `'${v.replace(/'/g, `'\\''`)}'`;

export async function env(values: OptionValues, out: NodeJS.WritableStream = process.stdout): Promise<number> {
  const vars = await routeEnv(values);
  for (const [k, v] of Object.entries(vars)) out.write(`export ${k}=${shellQuote(v)}\n`);
  return 0;
}

export async function connect(values: OptionValues): Promise<number> {
  const vars = await routeEnv(values);
  const psql = spawn('psql', (values[PASS_THROUGH] as string[] | undefined) ?? [], {
    stdio: 'inherit',
    env: { ...process.env, ...vars },
  });
  return new Promise<number>((resolve, reject) => {
    psql.once('error', (e) => reject(new Error(`cannot run psql: ${e.message}`)));
    psql.once('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}
