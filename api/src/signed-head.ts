/**
 * Signed chain heads (shared/DESIGN.md, "Identity and trust"): the sidecar holds an Ed25519 key
 * per stream that never leaves its process, and signs the head (stream, seq, hash) of every batch
 * it ships. A head's hash covers the whole chain before it, so one signature vouches for every
 * event up to that seq: rewriting stored history needs the sidecar's key, not only write access
 * to the store.
 *
 * Keys travel as the raw 32-byte public key in base64url (a JWK's `x`), signatures as base64url.
 * The batch carries both in one HTTP header:
 *
 *   Byline-Signed-Head: key=<base64url>; seq=<n>; hash=<hex sha-256>; sig=<base64url>
 *
 * (the stream is the `chain.stream` of the batch's event at that seq and hash).
 *
 * Key receipts: a collector configured with a key of its own (`receipts.keyFile`, never in the
 * store) signs every key it registers, bound to the stream and owner, so a key an insider writes
 * into the store has no valid receipt.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject, sign, verify } from 'node:crypto';

export const SIGNED_HEAD_HEADER = 'byline-signed-head';

export interface ChainHead {
  stream: string;
  seq: number;
  hash: string;
}

export interface SignedHead extends ChainHead {
  /** The signer's public key, raw, base64url. */
  key: string;
  /** Ed25519 over `signedHeadMessage(head)`, base64url. */
  sig: string;
}

/** The bytes a head signature covers; versioned and domain-separated so it signs nothing else. */
export function signedHeadMessage(head: ChainHead): Buffer {
  return Buffer.from(`byline.dev/signed-head/v1\n${head.stream}\n${head.seq}\n${head.hash}`, 'utf8');
}

/** A key pair that lives only in this process. */
export class HeadSigner {
  private readonly privateKey: KeyObject;
  /** The public key, raw, base64url. */
  readonly key: string;

  constructor() {
    const pair = generateKeyPairSync('ed25519');
    this.privateKey = pair.privateKey;
    this.key = pair.publicKey.export({ format: 'jwk' }).x!;
  }

  sign(head: ChainHead): SignedHead {
    const sig = sign(null, signedHeadMessage(head), this.privateKey).toString('base64url');
    return { ...head, key: this.key, sig };
  }
}

const B64URL = /^[A-Za-z0-9_-]+$/;

/** The key as Node reads it, or an error naming what is wrong with it. */
export function publicKeyOf(key: string): KeyObject | string {
  if (!B64URL.test(key) || Buffer.from(key, 'base64url').length !== 32) {
    return 'key must be a raw Ed25519 public key (32 bytes) in base64url';
  }
  try {
    return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: key }, format: 'jwk' });
  } catch (e) {
    return `key is not a usable Ed25519 public key (${(e as Error).message})`;
  }
}

/** Does `sig` verify over the head with the head's own key? Never throws. */
export function signatureValid(head: SignedHead): boolean {
  return verifiedBy(head.key, signedHeadMessage(head), head.sig);
}

function verifiedBy(key: string, message: Buffer, sig: string): boolean {
  const publicKey = publicKeyOf(key);
  if (typeof publicKey === 'string' || !B64URL.test(sig)) return false;
  const bytes = Buffer.from(sig, 'base64url');
  if (bytes.length !== 64) return false;
  try {
    return verify(null, message, publicKey, bytes);
  } catch {
    return false;
  }
}

export function formatSignedHeadHeader(head: SignedHead): string {
  return `key=${head.key}; seq=${head.seq}; hash=${head.hash}; sig=${head.sig}`;
}

/** The header's fields (without the stream, which the batch says), or a message naming the problem. */
export function parseSignedHeadHeader(value: string): Omit<SignedHead, 'stream'> | string {
  const fields = new Map<string, string>();
  for (const part of value.split(';')) {
    const m = /^\s*(key|seq|hash|sig)=([A-Za-z0-9_-]+)\s*$/.exec(part);
    if (!m) return `malformed part ${JSON.stringify(part.trim().slice(0, 40))} (expected key=…; seq=…; hash=…; sig=…)`;
    if (fields.has(m[1]!)) return `${m[1]} is given twice`;
    fields.set(m[1]!, m[2]!);
  }
  for (const name of ['key', 'seq', 'hash', 'sig']) if (!fields.has(name)) return `${name} is missing`;
  const seq = fields.get('seq')!;
  if (!/^[1-9][0-9]{0,15}$/.test(seq)) return 'seq must be a positive integer';
  const hash = fields.get('hash')!;
  if (!/^[0-9a-f]{64}$/.test(hash)) return 'hash must be a hex SHA-256';
  const key = fields.get('key')!;
  const problem = publicKeyOf(key);
  if (typeof problem === 'string') return problem;
  const sig = fields.get('sig')!;
  if (Buffer.from(sig, 'base64url').length !== 64) return 'sig must be an Ed25519 signature (64 bytes) in base64url';
  return { key, seq: Number(seq), hash, sig };
}

/** What a key receipt covers: the key, registered for this stream, bound to this owner. */
export function keyReceiptMessage(stream: string, key: string, owner: string): Buffer {
  return Buffer.from(`byline.dev/key-receipt/v1\n${stream}\n${key}\n${owner}`, 'utf8');
}

/** The fields of a retention checkpoint (verify-trail.ts Retirement) its signature covers. */
export interface CheckpointFields {
  throughSeq: number;
  throughHash: string;
  count: number;
  digest: string;
  retiredAt: string;
}

/** What a retention checkpoint's signature covers: every field of it, for its stream. */
export function checkpointMessage(stream: string, c: CheckpointFields): Buffer {
  return Buffer.from(
    `byline.dev/retirement/v1\n${stream}\n${Number(c.throughSeq)}\n${c.throughHash}\n${Number(c.count)}\n${c.digest}\n${c.retiredAt}`,
    'utf8',
  );
}

/** The collector's receipt key, from a PEM (PKCS#8) Ed25519 private key. */
export class ReceiptSigner {
  private readonly privateKey: KeyObject;
  /** Its public key, raw, base64url: what `byline verify` checks receipts with. */
  readonly key: string;

  constructor(pem: string | Buffer) {
    const privateKey = createPrivateKey(pem);
    if (privateKey.asymmetricKeyType !== 'ed25519') {
      throw new Error(`expected an Ed25519 private key, got ${privateKey.asymmetricKeyType ?? 'another kind of key'}`);
    }
    this.privateKey = privateKey;
    this.key = createPublicKey(privateKey).export({ format: 'jwk' }).x!;
  }

  receipt(stream: string, key: string, owner: string): string {
    return sign(null, keyReceiptMessage(stream, key, owner), this.privateKey).toString('base64url');
  }

  /** Signs a retention checkpoint, so that one moved over more events by someone else does not verify. */
  checkpoint(stream: string, c: CheckpointFields): string {
    return sign(null, checkpointMessage(stream, c), this.privateKey).toString('base64url');
  }
}

/** Does `signature` verify with the collector's `receiptKey` for this stream's checkpoint? Never throws. */
export function checkpointSignatureValid(
  receiptKey: string,
  stream: string,
  c: CheckpointFields,
  signature: string,
): boolean {
  return verifiedBy(receiptKey, checkpointMessage(stream, c), signature);
}

/** Does `receipt` verify with the collector's `receiptKey` for this registration? Never throws. */
export function receiptValid(receiptKey: string, stream: string, key: string, owner: string, receipt: string): boolean {
  return verifiedBy(receiptKey, keyReceiptMessage(stream, key, owner), receipt);
}
