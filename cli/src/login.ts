/**
 * `byline login`: gets an OIDC token for the gateway, with openid-client throughout.
 * - people at a terminal (default): the device authorization grant (RFC 8628) — a code to type at the
 *   issuer's page, from any browser, even on another machine;
 * - `--browser`: authorization code with PKCE and a loopback redirect (RFC 8252) on 127.0.0.1;
 * - machines (`--client-secret-file`): the client-credentials grant.
 * Tokens go to the per-issuer cache (token-cache.ts); `freshPassword` hands out a valid one,
 * refreshing it with the refresh token (or the client secret) when it has expired.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { caFetch } from '@byline/api/oidc';
import * as client from 'openid-client';
import { type OptionValues, UsageError } from './command-table.js';
import { type CachedTokens, configDir, loadTokens, saveTokens } from './token-cache.js';

/** Refresh a little before expiry, so a token never runs out between being handed out and used. */
const EXPIRY_MARGIN_MS = 30_000;
export const DEFAULT_SCOPE = 'openid email profile groups offline_access';

function clientConfig(issuer: string, clientId: string, caFile: string | undefined, secret?: string) {
  const options: client.DiscoveryRequestOptions = {};
  if (caFile !== undefined) options[client.customFetch] = caFetch(readFileSync(caFile));
  return client.discovery(new URL(issuer), clientId, secret, secret === undefined ? client.None() : undefined, options);
}

/** What a token response means for the cache: the ID token is the password of a person, the access token of a machine. */
function toCache(
  base: Omit<CachedTokens, 'password' | 'expiresAtMs' | 'idToken' | 'accessToken' | 'refreshToken'>,
  tokens: client.TokenEndpointResponse & client.TokenEndpointResponseHelpers,
  previous?: CachedTokens,
): CachedTokens {
  const machine = base.clientSecretFile !== undefined;
  const password = machine ? 'access_token' : 'id_token';
  const idToken = tokens.id_token ?? previous?.idToken;
  if (password === 'id_token' && !tokens.id_token) {
    throw new Error('the issuer returned no ID token (is "openid" in --scope?)');
  }
  const exp = password === 'id_token' ? tokens.claims()?.exp : undefined;
  const expiresAtMs = exp !== undefined ? exp * 1000 : Date.now() + (tokens.expiresIn() ?? 300) * 1000;
  const out: CachedTokens = { ...base, password, expiresAtMs, accessToken: tokens.access_token };
  if (idToken !== undefined) out.idToken = idToken;
  const refresh = tokens.refresh_token ?? previous?.refreshToken;
  if (refresh !== undefined) out.refreshToken = refresh;
  return out;
}

export async function login(values: OptionValues, out: NodeJS.WritableStream = process.stdout): Promise<number> {
  const str = (k: string) => values[k] as string | undefined;
  const issuer = str('issuer');
  const clientId = str('client-id');
  if (!issuer || !clientId) throw new UsageError('--issuer and --client-id are required');
  if (!/^https:\/\/\S+$/.test(issuer))
    throw new UsageError(`--issuer must be an https:// URL, got ${JSON.stringify(issuer)}`);
  const caFile = str('ca-file');
  const base = { issuer, clientId, ...(caFile !== undefined && { caFile }) };

  const secretFile = str('client-secret-file');
  if (secretFile !== undefined) {
    const resource = str('resource');
    const scope = str('scope');
    const cached = await clientCredentials({
      ...base,
      clientSecretFile: secretFile,
      ...(resource !== undefined && { resource }),
      ...(scope !== undefined && { scope }),
    });
    saveDefaultLogin(issuer, clientId);
    out.write(`signed in as client ${clientId}; token cached in ${saveTokens(cached)}\n`);
    return 0;
  }

  const scope = str('scope') ?? DEFAULT_SCOPE;
  const config = await clientConfig(issuer, clientId, caFile);
  const tokens = values.browser ? await loopbackLogin(config, scope, out) : await deviceLogin(config, scope, out);
  const cached = toCache({ ...base, scope }, tokens);
  const file = saveTokens(cached);
  const claims = tokens.claims();
  const who =
    (claims?.email as string | undefined) ?? (claims?.preferred_username as string | undefined) ?? claims?.sub;
  saveDefaultLogin(issuer, clientId);
  out.write(`signed in as ${who}; tokens cached in ${file}\n`);
  return 0;
}

async function deviceLogin(config: client.Configuration, scope: string, out: NodeJS.WritableStream) {
  const device = await client.initiateDeviceAuthorization(config, { scope });
  out.write(
    `To sign in, open ${device.verification_uri} and enter the code ${device.user_code}` +
      (device.verification_uri_complete ? `\n(or open ${device.verification_uri_complete})` : '') +
      '\nWaiting…\n',
  );
  return client.pollDeviceAuthorizationGrant(config, device);
}

async function loopbackLogin(config: client.Configuration, scope: string, out: NodeJS.WritableStream) {
  const verifier = client.randomPKCECodeVerifier();
  const challenge = await client.calculatePKCECodeChallenge(verifier);
  const state = client.randomState();
  // RFC 8252: a loopback IP literal, any free port, the path registered with the client.
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const redirectUri = `http://127.0.0.1:${(server.address() as AddressInfo).port}/callback`;
  try {
    const callback = new Promise<URL>((resolve) => {
      server.on('request', (req, res) => {
        const url = new URL(req.url ?? '/', redirectUri);
        if (url.pathname !== '/callback') {
          res.writeHead(404).end();
          return;
        }
        res.writeHead(200, { 'content-type': 'text/plain' }).end('Signed in to byline; you can close this page.\n');
        resolve(url);
      });
    });
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope,
      code_challenge: challenge,
      code_challenge_method: 'S256',
      state,
    });
    out.write(`Open this URL in your browser to sign in:\n${url.href}\nWaiting…\n`);
    const returned = await callback;
    return await client.authorizationCodeGrant(config, returned, { pkceCodeVerifier: verifier, expectedState: state });
  } finally {
    server.closeAllConnections();
    server.close();
  }
}

async function clientCredentials(c: Omit<CachedTokens, 'password' | 'expiresAtMs'> & { clientSecretFile: string }) {
  const secret = readFileSync(c.clientSecretFile, 'utf8').trim();
  const config = await clientConfig(c.issuer, c.clientId, c.caFile, secret);
  const parameters: Record<string, string> = {};
  if (c.resource !== undefined) parameters.resource = c.resource;
  if (c.scope !== undefined) parameters.scope = c.scope;
  const tokens = await client.clientCredentialsGrant(config, parameters);
  const { idToken: _i, accessToken: _a, refreshToken: _r, ...base } = c;
  return toCache(base, tokens);
}

/**
 * A valid token to send as the password: the cached one, or a refreshed one when it has expired
 * (refresh token for people, the client secret again for machines). Throws naming what to do.
 */
export async function freshPassword(issuer: string, clientId: string): Promise<string> {
  const cached = loadTokens(issuer, clientId);
  if (!cached) throw new Error(`not signed in at ${issuer} as client ${clientId}: run byline login first`);
  let current = cached;
  if (cached.expiresAtMs - EXPIRY_MARGIN_MS <= Date.now()) {
    if (cached.clientSecretFile !== undefined) {
      current = await clientCredentials({ ...cached, clientSecretFile: cached.clientSecretFile });
    } else if (cached.refreshToken !== undefined) {
      const config = await clientConfig(issuer, clientId, cached.caFile);
      let tokens: Awaited<ReturnType<typeof client.refreshTokenGrant>>;
      try {
        tokens = await client.refreshTokenGrant(config, cached.refreshToken);
      } catch (e) {
        throw new Error(
          `the token from ${issuer} has expired and refreshing it failed (${(e as Error).message}): run byline login again`,
        );
      }
      const { idToken: _i, accessToken: _a, refreshToken: _r, password: _p, expiresAtMs: _e, ...base } = cached;
      current = toCache(base, tokens, cached);
    } else {
      throw new Error(`the token from ${issuer} has expired and there is no refresh token: run byline login again`);
    }
    saveTokens(current);
  }
  const token = current.password === 'id_token' ? current.idToken : current.accessToken;
  if (!token) throw new Error(`the cached tokens for ${issuer} hold no ${current.password}: run byline login again`);
  return token;
}

/** The issuer and client of the last `byline login`, for byline env/connect without flags. */
function saveDefaultLogin(issuer: string, clientId: string): void {
  mkdirSync(configDir(), { recursive: true, mode: 0o700 });
  writeFileSync(join(configDir(), 'login.json'), `${JSON.stringify({ issuer, clientId })}\n`, { mode: 0o600 });
}

export function defaultLogin(): { issuer: string; clientId: string } | undefined {
  try {
    return JSON.parse(readFileSync(join(configDir(), 'login.json'), 'utf8')) as { issuer: string; clientId: string };
  } catch {
    return undefined;
  }
}
