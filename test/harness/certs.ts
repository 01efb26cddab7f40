/** Throwaway TLS material for tests, made with the openssl command. */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

function openssl(cwd: string, ...args: string[]): void {
  execFileSync('openssl', args, { cwd, stdio: 'pipe' });
}

/** A self-signed CA: `<name>.crt` and `<name>.key` in `dir`; returns the certificate's path. */
export function makeCa(dir: string, name: string): string {
  openssl(
    dir,
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '2',
    '-subj',
    `/CN=${name}`,
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.crt`,
  );
  return join(dir, `${name}.crt`);
}

/** A server certificate for localhost and 127.0.0.1, signed by the CA `ca` (made by makeCa in `dir`). */
export function issueCert(dir: string, ca: string, name: string): { certFile: string; keyFile: string } {
  openssl(
    dir,
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-subj',
    '/CN=localhost',
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.csr`,
  );
  writeFileSync(join(dir, `${name}.ext`), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  openssl(
    dir,
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    `${ca}.crt`,
    '-CAkey',
    `${ca}.key`,
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    `${name}.ext`,
    '-out',
    `${name}.crt`,
  );
  return { certFile: join(dir, `${name}.crt`), keyFile: join(dir, `${name}.key`) };
}

/** A CA and a localhost server certificate it signed. */
export function makeCertificates(dir: string): { caFile: string; certFile: string; keyFile: string } {
  const caFile = makeCa(dir, 'ca');
  return { caFile, ...issueCert(dir, 'ca', 'server') };
}
