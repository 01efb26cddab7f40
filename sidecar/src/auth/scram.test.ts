import { createHash } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { chooseMechanism, ScramSha256Client, saslPrep, tlsServerEndPointHash } from './scram.js';

// RFC 7677 §3: SCRAM-SHA-256 exchange for user "user", password "pencil".
const RFC = {
  nonce: 'rOprNGfwEbeRWgbNEkqO',
  clientFirst: 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO',
  serverFirst: 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
  clientFinal:
    'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
  serverFinal: 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=',
};

function rfcClient(password = 'pencil'): ScramSha256Client {
  return new ScramSha256Client(password, { nonce: RFC.nonce, username: 'user' });
}

function throughFinal(client: ScramSha256Client, serverFirst = RFC.serverFirst): string {
  client.clientFirstMessage();
  return client.clientFinalMessage(Buffer.from(serverFirst)).toString();
}

describe('ScramSha256Client', () => {
  test('reproduces the RFC 7677 test vector and accepts its server-final message', () => {
    const client = rfcClient();
    expect(client.mechanism).toBe('SCRAM-SHA-256');
    expect(client.clientFirstMessage().toString()).toBe(RFC.clientFirst);
    expect(client.clientFinalMessage(Buffer.from(RFC.serverFirst)).toString()).toBe(RFC.clientFinal);
    expect(() => client.verifyServerFinal(Buffer.from(RFC.serverFinal))).not.toThrow();
  });

  test('gives the same answer when the derived keys come from the cache', () => {
    expect(throughFinal(rfcClient())).toBe(RFC.clientFinal);
    expect(throughFinal(rfcClient())).toBe(RFC.clientFinal);
    expect(throughFinal(rfcClient('pencil2'))).not.toBe(RFC.clientFinal);
  });

  test('sends n=* and a fresh random nonce by default, as Postgres ignores the SCRAM user name', () => {
    const a = new ScramSha256Client('pw').clientFirstMessage().toString();
    const b = new ScramSha256Client('pw').clientFirstMessage().toString();
    expect(a).toMatch(/^n,,n=\*,r=[A-Za-z0-9+/]{24}$/);
    expect(a).not.toBe(b);
  });

  test('rejects a wrong server signature', () => {
    const client = rfcClient();
    throughFinal(client);
    const sig = Buffer.from(RFC.serverFinal.slice(2), 'base64');
    sig[0] = sig[0]! ^ 1;
    expect(() => client.verifyServerFinal(Buffer.from(`v=${sig.toString('base64')}`))).toThrow(/signature mismatch/);
  });

  test('rejects a server signature of the wrong length or encoding', () => {
    for (const bad of ['v=AAAA', 'v=not base64!', 'v=', 'x=1', '']) {
      const client = rfcClient();
      throughFinal(client);
      expect(() => client.verifyServerFinal(Buffer.from(bad)), bad).toThrow(/SCRAM/);
    }
  });

  test('surfaces a server-final error attribute', () => {
    const client = rfcClient();
    throughFinal(client);
    expect(() => client.verifyServerFinal(Buffer.from('e=invalid-proof'))).toThrow(/rejected.*invalid-proof/);
  });

  test.each([
    ['server nonce not prefixed by ours', 'r=other%hvYD,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096', /nonce/],
    ['server nonce equal to ours', `r=${RFC.nonce},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096`, /nonce/],
    ['nonce with a comma', `r=${RFC.nonce}a,b,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096`, /malformed|nonce/],
    ['missing salt', `r=${RFC.nonce}xyz,i=4096`, /malformed/],
    ['attributes out of order', `s=W22ZaJ0SNY7soEsUEjb6gQ==,r=${RFC.nonce}xyz,i=4096`, /malformed/],
    ['salt not base64', `r=${RFC.nonce}xyz,s=W22*,i=4096`, /salt/],
    ['empty salt', `r=${RFC.nonce}xyz,s=,i=4096`, /salt/],
    ['zero iterations', `r=${RFC.nonce}xyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0`, /iteration/],
    ['negative iterations', `r=${RFC.nonce}xyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=-1`, /iteration/],
    ['iterations above the cap', `r=${RFC.nonce}xyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=10000001`, /iteration/],
    ['iterations not a number', `r=${RFC.nonce}xyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4e3`, /iteration/],
    ['mandatory extension', `m=ext,r=${RFC.nonce}xyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096`, /mandatory extension/],
    ['server error', 'e=other-error', /server error: other-error/],
  ])('rejects a server-first message with %s', (_name, serverFirst, error) => {
    expect(() => throughFinal(rfcClient(), serverFirst)).toThrow(error);
  });

  test('enforces the order of the exchange', () => {
    const client = rfcClient();
    expect(() => client.clientFinalMessage(Buffer.from(RFC.serverFirst))).toThrow(/out of order/);
    expect(() => client.verifyServerFinal(Buffer.from(RFC.serverFinal))).toThrow(/out of order/);
    client.clientFirstMessage();
    expect(() => client.clientFirstMessage()).toThrow(/out of order/);
    client.clientFinalMessage(Buffer.from(RFC.serverFirst));
    client.verifyServerFinal(Buffer.from(RFC.serverFinal));
    expect(() => client.verifyServerFinal(Buffer.from(RFC.serverFinal))).toThrow(/out of order/);
  });

  test('refuses a client nonce that cannot be sent', () => {
    expect(() => new ScramSha256Client('pw', { nonce: 'a,b' })).toThrow(/nonce/);
    expect(() => new ScramSha256Client('pw', { nonce: '' })).toThrow(/nonce/);
  });

  test('with channel binding, uses -PLUS, the p= GS2 header, and binds the data into c=', () => {
    const data = Buffer.from('0123456789abcdef0123456789abcdef');
    const client = new ScramSha256Client('pencil', {
      nonce: RFC.nonce,
      channelBinding: { type: 'tls-server-end-point', data },
    });
    expect(client.mechanism).toBe('SCRAM-SHA-256-PLUS');
    expect(client.clientFirstMessage().toString()).toBe(`p=tls-server-end-point,,n=*,r=${RFC.nonce}`);
    const final = client.clientFinalMessage(Buffer.from(RFC.serverFirst)).toString();
    const c = final.split(',')[0]!.slice(2);
    expect(Buffer.from(c, 'base64')).toEqual(Buffer.concat([Buffer.from('p=tls-server-end-point,,'), data]));
    expect(() => client.verifyServerFinal(Buffer.from(RFC.serverFinal))).toThrow(/signature mismatch/);
  });

  test('maps the password through SASLprep before hashing', () => {
    expect(throughFinal(rfcClient('pen\u00ADcil'))).toBe(RFC.clientFinal);
    expect(throughFinal(rfcClient('\uFF50\uFF45\uFF4E\uFF43\uFF49\uFF4C'))).toBe(RFC.clientFinal); // fullwidth
  });
});

describe('chooseMechanism', () => {
  const both = ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256'];
  test('prefers -PLUS only when channel binding data exists and the server offers it', () => {
    expect(chooseMechanism(both, Buffer.alloc(32))).toBe('SCRAM-SHA-256-PLUS');
    expect(chooseMechanism(both)).toBe('SCRAM-SHA-256');
    expect(chooseMechanism(both, Buffer.alloc(0))).toBe('SCRAM-SHA-256');
    expect(chooseMechanism(['SCRAM-SHA-256'], Buffer.alloc(32))).toBe('SCRAM-SHA-256');
  });
  test('throws when nothing usable is offered', () => {
    expect(() => chooseMechanism(['SCRAM-SHA-256-PLUS'])).toThrow(/no usable SASL mechanism/);
    expect(() => chooseMechanism([])).toThrow(/offered: none/);
    expect(() => chooseMechanism(['OAUTHBEARER'])).toThrow(/OAUTHBEARER/);
  });
});

describe('saslPrep', () => {
  test.each([
    // RFC 4013 §3 examples, except that Postgres passes pure ASCII through untouched.
    ['I\u00ADX', 'IX'],
    ['user', 'user'],
    ['USER', 'USER'],
    ['\u00AA', 'a'],
    ['\u2168', 'IX'],
    ['\u0007', '\u0007'],
    // Non-ASCII spaces become U+0020; NFKC composes.
    ['a\u00A0b\u3000c', 'a b c'],
    ['e\u0301t\u00E9', '\u00E9t\u00E9'],
    ['\u05D0\u05D1', '\u05D0\u05D1'],
  ])('%j → %j', (input, output) => {
    expect(saslPrep(input)).toBe(output);
  });

  test.each([
    ['ASCII control beside non-ASCII', '\u0007\u00E9'],
    ['private use', 'pw\uE000'],
    ['non-character', 'pw\uFDD0'],
    ['lone surrogate', 'pw\uD800x'],
    ['tagging character', 'pw\u{E0041}'],
    ['unassigned code point', 'pw\u0378'],
    ['RandALCat then a digit', '\u0627\u0031'],
    ['RandALCat mixed with LCat', '\u05D0a\u05D1'],
    ['a password that prep would empty', '\u00AD\uFEFF'],
  ])('fails on %s (the caller then uses the raw password, as Postgres does)', (_name, input) => {
    expect(saslPrep(input)).toBeUndefined();
  });
});

// Self-signed certificates made with openssl for these tests (CN=t), one per signature algorithm.
const CERTS = {
  ecdsaSha1:
    'MIIBazCCARKgAwIBAgIUDF6m3N1Js5p+uu7Z8mXTLL/YU7AwCQYHKoZIzj0EATAMMQowCAYDVQQDDAF0MB4XDTI2MTEyNzAyNTQw' +
    'NVoXDTI2MTEyODAyNTQwNVowDDEKMAgGA1UEAwwBdDBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABD3obNNatcR/BGMz1fFrAdeh' +
    'KOzpdBdt061Gzueyp8Xm1B1dtydNKhibaL/pVDombKtLLYbXhNtArWzj4Ed+idejUzBRMB0GA1UdDgQWBBT7KashRNmgvc2oq4+G' +
    'I3kzmC3dPTAfBgNVHSMEGDAWgBT7KashRNmgvc2oq4+GI3kzmC3dPTAPBgNVHRMBAf8EBTADAQH/MAkGByqGSM49BAEDSAAwRQIh' +
    'APeiBuCljjUDVIlx6Ub7Mz04SRZ0fBQQXFY6d9oUOr4+AiAjmmg2JQQjGJSvpZiRdJuRnk7anjKKx28+gHHKsae+5g==',
  ecdsaSha384:
    'MIIBbTCCAROgAwIBAgIUEGlwdFaftNiH9vbHZ80ABFXvDNcwCgYIKoZIzj0EAwMwDDEKMAgGA1UEAwwBdDAeFw0yNjExMjcwMjU0' +
    'MDVaFw0yNjExMjgwMjU0MDVaMAwxCjAIBgNVBAMMAXQwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAQ96GzTWrXEfwRjM9XxawHX' +
    'oSjs6XQXbdOtRs7nsqfF5tQdXbcnTSoYm2i/6VQ6JmyrSy2G14TbQK1s4+BHfonXo1MwUTAdBgNVHQ4EFgQU+ymrIUTZoL3NqKuP' +
    'hiN5M5gt3T0wHwYDVR0jBBgwFoAU+ymrIUTZoL3NqKuPhiN5M5gt3T0wDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAwNIADBF' +
    'AiEA9H7KIrs+Emyr9Bxb5UgM5bSaGkPB5OgDndz0YZ471uUCICweaeY74O+j+N+wmYJEFLbRR2RFSUxTWYBz+YGdtwqX',
  ecdsaSha512:
    'MIIBbjCCAROgAwIBAgIUNnWPxLwxJzql4IsNcC17vXqTdZswCgYIKoZIzj0EAwQwDDEKMAgGA1UEAwwBdDAeFw0yNjExMjcwMjU0' +
    'MDVaFw0yNjExMjgwMjU0MDVaMAwxCjAIBgNVBAMMAXQwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAQ96GzTWrXEfwRjM9XxawHX' +
    'oSjs6XQXbdOtRs7nsqfF5tQdXbcnTSoYm2i/6VQ6JmyrSy2G14TbQK1s4+BHfonXo1MwUTAdBgNVHQ4EFgQU+ymrIUTZoL3NqKuP' +
    'hiN5M5gt3T0wHwYDVR0jBBgwFoAU+ymrIUTZoL3NqKuPhiN5M5gt3T0wDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDBANJADBG' +
    'AiEAzs3SS9EJIVQw3FCSCD3FXNLE5WdVEl+Lazr8fNgWuhQCIQCLDsahjLcP9V0tgDTKh/wR3BjI7WIqlVUqC2v70vgWSw==',
  rsaPssSha384:
    'MIICWjCCAY+gAwIBAgIUXqty9G+Hok4fuH25LjGyK0LfjWYwQQYJKoZIhvcNAQEKMDSgDzANBglghkgBZQMEAgIFAKEcMBoGCSqG' +
    'SIb3DQEBCDANBglghkgBZQMEAgIFAKIDAgFOMAwxCjAIBgNVBAMMAXQwHhcNMjYxMTI3MDI1NDA1WhcNMjYxMTI4MDI1NDA1WjAM' +
    'MQowCAYDVQQDDAF0MIGdMAsGCSqGSIb3DQEBCgOBjQAwgYkCgYEArPDoh6dT7LQulKNs9bN3/7uFjLrsDz73Q1mJF98VQ8ZZcLlp' +
    '2Vw0miYe5rqptR5bQo287XBUVj8ay6SQhpMMOCs+/KQMTAMzB1208DIFrU7dpKeHM9tu69XlZmrA3UZxs8Ga5pqyZGJDKrKXJ/mm' +
    'Dfdt/z1A6waItoRw6K4KDdsCAwEAAaNTMFEwHQYDVR0OBBYEFHcyY3bJwgrY1P6q0fKOZg8sObgtMB8GA1UdIwQYMBaAFHcyY3bJ' +
    'wgrY1P6q0fKOZg8sObgtMA8GA1UdEwEB/wQFMAMBAf8wQQYJKoZIhvcNAQEKMDSgDzANBglghkgBZQMEAgIFAKEcMBoGCSqGSIb3' +
    'DQEBCDANBglghkgBZQMEAgIFAKIDAgFOA4GBADn3jaUcM2y5ClsKi+tRvoM381Z8L//Pb7F46HbQjS+sa639xnRqRy3cDm3DsaoB' +
    'wWftk3Dv6IMVXK8uAdoESuHjEEWUdddu8gS8vjA+mfqIfe17YsbSMzuoB7FKa5N0fJSndPz2q26ZLaObiUH5KXPH4gNFc1nxlDsl' +
    'bCvuwIhv',
  ed25519:
    'MIIBLDCB36ADAgECAhQhrP6apKb76z4KoZLMvs2EOIsbATAFBgMrZXAwDDEKMAgGA1UEAwwBdDAeFw0yNjExMjcwMjU0MDVaFw0y' +
    'NjExMjgwMjU0MDVaMAwxCjAIBgNVBAMMAXQwKjAFBgMrZXADIQCq+GK6brRct4HnQODFLwx6mOgZAeYDH+iiZ7IQH1w6WqNTMFEw' +
    'HQYDVR0OBBYEFFc076fRHcKQ6Q4OYtYHiPgatMvbMB8GA1UdIwQYMBaAFFc076fRHcKQ6Q4OYtYHiPgatMvbMA8GA1UdEwEB/wQF' +
    'MAMBAf8wBQYDK2VwA0EAUkJ77WGs/xq6Ex6HF3/ZqqcwtdL05NXpvgHXaz9WJkEGuG9VqwVpBrFhcZEqsVYwBbIhleD4Q4am7r2s' +
    'GYJiDw==',
};

describe('tlsServerEndPointHash', () => {
  const der = (name: keyof typeof CERTS) => Buffer.from(CERTS[name], 'base64');
  const digest = (hash: string, data: Buffer) => createHash(hash).update(data).digest();

  test.each([
    ['ecdsaSha1', 'sha256'],
    ['ecdsaSha384', 'sha384'],
    ['ecdsaSha512', 'sha512'],
    ['rsaPssSha384', 'sha384'],
  ] as const)('hashes a %s certificate with %s', (name, hash) => {
    expect(tlsServerEndPointHash(der(name))).toEqual(digest(hash, der(name)));
  });

  test('uses a given signature algorithm OID instead of reading the certificate', () => {
    const cert = der('ecdsaSha384');
    expect(tlsServerEndPointHash(cert, '1.2.840.113549.1.1.5')).toEqual(digest('sha256', cert));
    expect(tlsServerEndPointHash(cert, '1.2.840.113549.1.1.13')).toEqual(digest('sha512', cert));
  });

  test('refuses algorithms without a single hash, and bytes that are not a certificate', () => {
    expect(() => tlsServerEndPointHash(der('ed25519'))).toThrow(/unsupported.*1\.3\.101\.112/);
    expect(() => tlsServerEndPointHash(Buffer.from('not a certificate'))).toThrow(/DER/);
    expect(() => tlsServerEndPointHash(der('ecdsaSha384').subarray(0, 100))).toThrow(/DER/);
    expect(() => tlsServerEndPointHash(Buffer.alloc(0))).toThrow(/DER/);
  });
});
