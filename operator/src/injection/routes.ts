/**
 * DatabaseRoutes as the injector uses them: defaults applied (the API server applies them too, but
 * a cache or a test may hand over objects without), and checked, because what is rendered from a
 * route ends up in volume names, file paths and the sidecar's config.
 */
import { crds, problemsOf } from '@byline/api';
import { MAX_ROUTE_NAME_LENGTH } from './constants.js';
import type { DatabaseRoute } from './types.js';

export interface ResolvedRoute {
  name: string;
  upstream: {
    host: string;
    port: number;
    database: string;
    sslMode: 'disable' | 'prefer' | 'require' | 'verify-full';
    caSecretRef?: { name: string; key: string };
  };
  /** The role, when the DatabaseRoute names it (credentials.username); else only the Secret knows it. */
  username?: string;
  secretRef: { name: string; usernameKey: string; passwordKey: string };
  listenPort: number;
  env: { host?: string; port?: string; url?: string; user?: string };
}

type Loose = Record<string, unknown>;
const isRecord = (v: unknown): v is Loose => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The schema defaults of DatabaseRouteSpec, filled in where a field is absent. */
function withDefaults(spec: unknown): unknown {
  if (!isRecord(spec)) return spec;
  const out: Loose = { ...spec };
  if (isRecord(spec.upstream)) {
    const upstream: Loose = { port: 5432, sslMode: 'require', ...spec.upstream };
    if (isRecord(spec.upstream.caSecretRef)) upstream.caSecretRef = { key: 'ca.crt', ...spec.upstream.caSecretRef };
    out.upstream = upstream;
  }
  if (isRecord(spec.credentials) && isRecord(spec.credentials.secretRef)) {
    out.credentials = {
      ...spec.credentials,
      secretRef: { usernameKey: 'username', passwordKey: 'password', ...spec.credentials.secretRef },
    };
  }
  return out;
}

// A volume name is a DNS label; the sidecar's route names are the same alphabet.
const LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
// A Secret key, which becomes a file name under the route's directory: never "." or "..".
const SECRET_KEY = /^[-._a-zA-Z0-9]+$/;
const safeKey = (key: string) => SECRET_KEY.test(key) && key !== '.' && !key.startsWith('..');

/** The route ready to render, or what is wrong with it. */
export function resolveRoute(route: DatabaseRoute): ResolvedRoute | { problems: string[] } {
  const name = route.metadata?.name ?? '';
  const spec = withDefaults(route.spec);
  const problems = problemsOf(crds.DatabaseRouteSpec, spec).map((p) => `spec.${p}`);
  if (!LABEL.test(name) || name.length > MAX_ROUTE_NAME_LENGTH) {
    problems.push(
      `its name must be at most ${MAX_ROUTE_NAME_LENGTH} characters of a-z, 0-9 and "-" to name the sidecar's volumes`,
    );
  }
  if (problems.length > 0) return { problems };
  const s = spec as crds.DatabaseRouteSpec;
  const { secretRef } = s.credentials;
  const usernameKey = secretRef.usernameKey ?? 'username';
  const passwordKey = secretRef.passwordKey ?? 'password';
  const caSecretRef = s.upstream.caSecretRef && { name: s.upstream.caSecretRef.name, key: s.upstream.caSecretRef.key };
  for (const [field, key] of [
    ['spec.credentials.secretRef.usernameKey', usernameKey],
    ['spec.credentials.secretRef.passwordKey', passwordKey],
    ['spec.upstream.caSecretRef.key', caSecretRef?.key],
  ] as const) {
    if (key !== undefined && !safeKey(key)) problems.push(`${field}: "${key}" is not a usable Secret key`);
  }
  // The API server's CEL says so too; a cache or a test may hand over objects it never checked.
  if (s.env?.user !== undefined && s.credentials.username === undefined)
    problems.push('spec.env.user names the role in spec.credentials.username: give spec.credentials.username too');
  if (problems.length > 0) return { problems };
  return {
    name,
    upstream: {
      host: s.upstream.host,
      port: s.upstream.port,
      database: s.upstream.database,
      sslMode: s.upstream.sslMode,
      ...(caSecretRef ? { caSecretRef: { name: caSecretRef.name, key: caSecretRef.key ?? 'ca.crt' } } : {}),
    },
    ...(s.credentials.username !== undefined ? { username: s.credentials.username } : {}),
    secretRef: { name: secretRef.name, usernameKey, passwordKey },
    listenPort: s.listenPort,
    env: { ...s.env },
  };
}
