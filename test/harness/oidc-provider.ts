/**
 * A real OpenID provider for tests: `oidc-provider` (the certified Node.js implementation) served
 * in-process over HTTPS on 127.0.0.1 with a throwaway CA. One public client for `byline login`
 * (device flow, authorization code + PKCE, refresh tokens) and one confidential client for the
 * client-credentials grant, whose access tokens are JWTs for the gateway's audience. Accounts are
 * whatever login the test types at the provider's own pages; their claims come from `accounts`.
 *
 * `restart({ keys })` brings the same issuer back on the same port with other signing keys (key
 * rotation), `stop()` takes it away (issuer unreachable).
 */

import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import Provider from 'oidc-provider';
import { issueCert, makeCa } from './certs.js';

export const CLI_CLIENT_ID = 'byline-cli';
export const CI_CLIENT_ID = 'byline-ci';
export const CI_CLIENT_SECRET = 'ci-secret-0123456789abcdef';
/** The trail viewer's public client (authorization code + PKCE from the browser), when asked for. */
export const VIEWER_CLIENT_ID = 'byline-viewer';
/** The audience of client-credentials access tokens (a JWT access token for the gateway). */
export const GATEWAY_AUDIENCE = 'byline-gateway';

export interface AccountClaims {
  email?: string;
  email_verified?: boolean;
  preferred_username?: string;
  groups?: string[];
}

export interface SigningKey {
  kid: string;
  privateJwk: JWK;
  publicJwk: JWK;
  privateKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
}

export async function makeSigningKey(kid: string): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const privateJwk = { ...(await exportJWK(privateKey)), kid, alg: 'RS256', use: 'sig' };
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' };
  return { kid, privateJwk, publicJwk, privateKey };
}

export interface TestProvider {
  issuer: string;
  caFile: string;
  /** The server's own certificate (for a browser told to trust exactly it). */
  certFile: string;
  ca: Buffer;
  key: SigningKey;
  accounts: Map<string, AccountClaims>;
  restart(options?: { key?: SigningKey }): Promise<void>;
  stop(): Promise<void>;
}

export interface ProviderOptions {
  dir: string;
  accounts?: Record<string, AccountClaims>;
  /** Lifetime of ID and access tokens, seconds (default 600). */
  tokenTtl?: number;
  /** Registers the viewer's client with this redirect (the collector's `/ui/`); its origin may call the token endpoint (CORS). */
  viewerRedirectUri?: string;
  /** The viewer's client may use refresh tokens (it gets one at sign-in). */
  viewerRefreshTokens?: boolean;
}

export async function startProvider(options: ProviderOptions): Promise<TestProvider> {
  const caPath = makeCa(options.dir, 'oidc-ca');
  const { certFile, keyFile } = issueCert(options.dir, 'oidc-ca', 'oidc');
  const tls = { cert: readFileSync(certFile), key: readFileSync(keyFile) };
  const accounts = new Map(Object.entries(options.accounts ?? {}));
  const ttl = options.tokenTtl ?? 600;

  let server: Server | undefined;
  let port = 0;
  let issuer = '';
  const state = { key: await makeSigningKey('key-1') };

  async function listen(): Promise<void> {
    const s = createServer(tls);
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen(port, '127.0.0.1', () => resolve());
    });
    port = (s.address() as AddressInfo).port;
    issuer = `https://127.0.0.1:${port}`;
    const provider = makeProvider(issuer, state.key, accounts, ttl, options);
    s.on('request', provider.callback());
    server = s;
  }

  async function close(): Promise<void> {
    const s = server;
    server = undefined;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  await listen();
  return {
    get issuer() {
      return issuer;
    },
    caFile: caPath,
    certFile,
    ca: readFileSync(caPath),
    get key() {
      return state.key;
    },
    accounts,
    async restart({ key } = {}) {
      await close();
      if (key) state.key = key;
      await listen();
    },
    stop: close,
  };
}

function makeProvider(
  issuer: string,
  key: SigningKey,
  accounts: Map<string, AccountClaims>,
  ttl: number,
  { viewerRedirectUri, viewerRefreshTokens }: ProviderOptions,
): Provider {
  const viewer = viewerRedirectUri
    ? [
        {
          client_id: VIEWER_CLIENT_ID,
          token_endpoint_auth_method: 'none' as const,
          application_type: 'web' as const,
          grant_types: ['authorization_code', ...(viewerRefreshTokens ? ['refresh_token'] : [])],
          response_types: ['code' as const],
          redirect_uris: [viewerRedirectUri],
        },
      ]
    : [];
  const provider = new Provider(issuer, {
    clients: [
      ...viewer,
      {
        client_id: CLI_CLIENT_ID,
        token_endpoint_auth_method: 'none',
        application_type: 'native',
        grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'authorization_code', 'refresh_token'],
        response_types: ['code'],
        redirect_uris: ['http://127.0.0.1/callback'],
      },
      {
        client_id: CI_CLIENT_ID,
        client_secret: CI_CLIENT_SECRET,
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
      },
    ],
    jwks: { keys: [key.privateJwk as never] },
    cookies: { keys: ['test-cookie-key-0123456789'] },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['preferred_username'],
      groups: ['groups'],
    },
    conformIdTokenClaims: false,
    scopes: ['openid', 'offline_access', 'email', 'profile', 'groups'],
    features: {
      devInteractions: { enabled: true },
      deviceFlow: { enabled: true },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => `urn:byline:${GATEWAY_AUDIENCE}`,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({
          scope: 'db',
          audience: GATEWAY_AUDIENCE,
          accessTokenFormat: 'jwt',
          accessTokenTTL: ttl,
          jwt: { sign: { alg: 'RS256' } },
        }),
      },
    },
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    ttl: {
      IdToken: ttl,
      AccessToken: ttl,
      DeviceCode: 300,
      RefreshToken: 3600,
      ClientCredentials: ttl,
      Grant: 3600,
      Interaction: 300,
      Session: 3600,
    },
    findAccount: async (_ctx, sub) => ({
      accountId: sub,
      claims: async () => ({ sub, ...(accounts.get(sub) ?? {}) }),
    }),
    // The loopback redirect of a native client may use any port (RFC 8252 section 7.3).
    pkce: { required: () => true },
  });
  return provider;
}
