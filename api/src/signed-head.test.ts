import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import {
  formatSignedHeadHeader,
  HeadSigner,
  parseSignedHeadHeader,
  publicKeyOf,
  ReceiptSigner,
  receiptValid,
  signatureValid,
} from './signed-head.js';

const head = { stream: '01a21b02-e7fb-7007-9c4d-f47b8ce47934', seq: 42, hash: 'ab'.repeat(32) };

describe('signed heads', () => {
  test('a signature verifies with its key and over exactly the head it signed', () => {
    const signer = new HeadSigner();
    const signed = signer.sign(head);
    expect(Buffer.from(signed.key, 'base64url')).toHaveLength(32);
    expect(signatureValid(signed)).toBe(true);
    expect(signatureValid({ ...signed, seq: 43 })).toBe(false);
    expect(signatureValid({ ...signed, hash: 'cd'.repeat(32) })).toBe(false);
    expect(signatureValid({ ...signed, stream: 'another' })).toBe(false);
    expect(signatureValid({ ...signed, key: new HeadSigner().key })).toBe(false);
    expect(signatureValid({ ...signed, sig: 'not a signature' })).toBe(false);
    expect(signatureValid({ ...signed, key: 'short' })).toBe(false);
  });

  test('each signer has a key of its own', () => {
    expect(new HeadSigner().key).not.toBe(new HeadSigner().key);
  });

  test('the header round-trips, and a malformed one is refused with the reason', () => {
    const signed = new HeadSigner().sign(head);
    const { stream: _stream, ...fields } = signed;
    expect(parseSignedHeadHeader(formatSignedHeadHeader(signed))).toEqual(fields);
    const bad: [string, RegExp][] = [
      ['', /malformed part/],
      [`key=${signed.key}; seq=1; hash=${head.hash}`, /sig is missing/],
      [`key=${signed.key}; seq=0; hash=${head.hash}; sig=${signed.sig}`, /seq must be a positive integer/],
      [`key=${signed.key}; seq=1; hash=XYZ; sig=${signed.sig}`, /hash must be a hex SHA-256/],
      [`key=abc; seq=1; hash=${head.hash}; sig=${signed.sig}`, /key must be a raw Ed25519 public key/],
      [`key=${signed.key}; seq=1; hash=${head.hash}; sig=abcd`, /sig must be an Ed25519 signature/],
      [`key=${signed.key}; key=${signed.key}; seq=1; hash=${head.hash}; sig=${signed.sig}`, /key is given twice/],
      [`key=${signed.key}; seq=1; hash=${head.hash}; sig=${signed.sig}; x=1`, /malformed part "x=1"/],
    ];
    for (const [value, problem] of bad) expect(parseSignedHeadHeader(value)).toMatch(problem);
  });

  test('publicKeyOf names a key that is not 32 bytes of base64url', () => {
    expect(publicKeyOf('!!!')).toMatch(/raw Ed25519 public key/);
    expect(typeof publicKeyOf(new HeadSigner().key)).toBe('object');
  });

  test('a key receipt binds stream, key and owner, and verifies only with the collector key that made it', () => {
    const pem = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' });
    const collector = new ReceiptSigner(pem);
    const key = new HeadSigner().key;
    const receipt = collector.receipt('s', key, 'static:a');
    expect(receiptValid(collector.key, 's', key, 'static:a', receipt)).toBe(true);
    expect(receiptValid(collector.key, 's', key, 'static:b', receipt)).toBe(false);
    expect(receiptValid(collector.key, 't', key, 'static:a', receipt)).toBe(false);
    expect(receiptValid(collector.key, 's', new HeadSigner().key, 'static:a', receipt)).toBe(false);
    expect(receiptValid(new HeadSigner().key, 's', key, 'static:a', receipt)).toBe(false);
    expect(receiptValid(collector.key, 's', key, 'static:a', 'garbage')).toBe(false);
  });

  test('a receipt key must be an Ed25519 private key', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' });
    expect(() => new ReceiptSigner(rsa)).toThrow('expected an Ed25519 private key, got rsa');
    expect(() => new ReceiptSigner('not a pem')).toThrow();
  });
});
