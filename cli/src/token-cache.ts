/**
 * Where `byline login` keeps a person's tokens: one file per issuer and client in the user's config
 * directory (`$XDG_CONFIG_HOME/byline/tokens/`, else `~/.config/byline/tokens/`), the directory 0700
 * and each file 0600, written whole (temp file + rename) so a crash never leaves half a token.
 */
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export interface CachedTokens {
  issuer: string;
  clientId: string;
  /** CA bundle for the issuer, when it is not in the system store. */
  caFile?: string;
  scope?: string;
  /** Which token is handed to clients as the password. */
  password: 'id_token' | 'access_token';
  idToken?: string;
  accessToken?: string;
  refreshToken?: string;
  /** When the password token expires, ms since the epoch. */
  expiresAtMs: number;
  /** For a machine client (client-credentials grant): where its secret is, never the secret itself. */
  clientSecretFile?: string;
  resource?: string;
}

export function configDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CONFIG_HOME && env.XDG_CONFIG_HOME !== '' ? env.XDG_CONFIG_HOME : join(homedir(), '.config');
  return join(base, 'byline');
}

export function tokenFile(issuer: string, clientId: string, env: NodeJS.ProcessEnv = process.env): string {
  const key = createHash('sha256').update(`${issuer}\n${clientId}`).digest('hex').slice(0, 32);
  return join(configDir(env), 'tokens', `${key}.json`);
}

export function saveTokens(tokens: CachedTokens, env: NodeJS.ProcessEnv = process.env): string {
  const file = tokenFile(tokens.issuer, tokens.clientId, env);
  const dir = join(configDir(env), 'tokens');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const temp = `${file}.${process.pid}.tmp`;
  writeFileSync(temp, `${JSON.stringify(tokens, null, 2)}\n`, { mode: 0o600 });
  chmodSync(temp, 0o600);
  renameSync(temp, file);
  return file;
}

/** The cached tokens for this issuer and client, or undefined when there are none. */
export function loadTokens(
  issuer: string,
  clientId: string,
  env: NodeJS.ProcessEnv = process.env,
): CachedTokens | undefined {
  const file = tokenFile(issuer, clientId, env);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  // Someone loosened the file's permissions: the tokens may have been read; do not keep using them silently.
  if ((statSync(file).mode & 0o077) !== 0) {
    throw new Error(`${file} is readable by others; its tokens may be compromised: run byline login again`);
  }
  try {
    return JSON.parse(text) as CachedTokens;
  } catch {
    throw new Error(`${file} is damaged; run byline login again`);
  }
}
