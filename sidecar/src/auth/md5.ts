/**
 * Postgres `md5` password authentication (AuthenticationMD5Password, auth code 5): the response is
 * `'md5' + md5hex(md5hex(password + user) + salt)`, where the inner hash is what `pg_authid` stores.
 */
import { createHash } from 'node:crypto';

export function md5PasswordResponse(user: string, password: string, salt: Buffer): string {
  if (salt.length !== 4) throw new Error(`md5 authentication: salt must be 4 bytes, got ${salt.length}`);
  const inner = createHash('md5').update(password, 'utf8').update(user, 'utf8').digest('hex');
  return 'md5' + createHash('md5').update(inner, 'latin1').update(salt).digest('hex');
}
