/**
 * Client side of SCRAM-SHA-256 and SCRAM-SHA-256-PLUS (RFC 5802, RFC 7677) as Postgres speaks it,
 * used when the sidecar logs in upstream with the injected credential. Pure: the caller moves the
 * bytes (SASLInitialResponse / SASLResponse) and hands back what the server sent.
 *
 *   const scram = new ScramSha256Client(password, { channelBinding });
 *   send(scram.mechanism, scram.clientFirstMessage());   // answer to AuthenticationSASL
 *   send(scram.clientFinalMessage(saslContinueData));    // answer to AuthenticationSASLContinue
 *   scram.verifyServerFinal(saslFinalData);              // on AuthenticationSASLFinal, before trusting AuthenticationOk
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';

export type ScramMechanism = 'SCRAM-SHA-256' | 'SCRAM-SHA-256-PLUS';

export interface ChannelBinding {
  type: 'tls-server-end-point';
  /** RFC 5929 hash of the server's certificate: see `tlsServerEndPointHash`. */
  data: Buffer;
}

export interface ScramClientOptions {
  /** Client nonce; random unless given (tests). Printable ASCII without ','. */
  nonce?: string;
  /** When given, the mechanism is SCRAM-SHA-256-PLUS and the exchange is bound to this TLS channel. */
  channelBinding?: ChannelBinding;
  /**
   * Name sent in the client-first message. Postgres ignores it (the StartupMessage's user counts), so
   * the default `*` is right; only interoperability test vectors need another.
   */
  username?: string;
}

/** Iteration counts above this are refused: a hostile or broken server could otherwise pin the CPU. */
export const SCRAM_MAX_ITERATIONS = 10_000_000;

export class ScramError extends Error {
  override name = 'ScramError';
}

const CLIENT_KEY = Buffer.from('Client Key');
const SERVER_KEY = Buffer.from('Server Key');
const NONCE_RE = /^[\x21-\x2b\x2d-\x7e]+$/;
const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

interface DerivedKeys {
  clientKey: Buffer;
  storedKey: Buffer;
  serverKey: Buffer;
}

// A Postgres verifier keeps one salt and iteration count per role, so every upstream connection with
// the same credential would redo the same PBKDF2 (milliseconds of blocked event loop at 4096
// iterations). Remember the derived keys; the password itself is held by the process anyway.
const keyCache = new Map<string, DerivedKeys>();
const KEY_CACHE_MAX = 64;

function deriveKeys(password: string, salt: Buffer, iterations: number): DerivedKeys {
  const cacheKey = `${iterations}:${salt.toString('base64')}:${password}`;
  const hit = keyCache.get(cacheKey);
  if (hit) return hit;
  const salted = pbkdf2Sync(Buffer.from(prepPassword(password), 'utf8'), salt, iterations, 32, 'sha256');
  const clientKey = hmac(salted, CLIENT_KEY);
  const keys = {
    clientKey,
    storedKey: createHash('sha256').update(clientKey).digest(),
    serverKey: hmac(salted, SERVER_KEY),
  };
  if (keyCache.size >= KEY_CACHE_MAX) {
    const oldest = keyCache.keys().next();
    if (!oldest.done) keyCache.delete(oldest.value);
  }
  keyCache.set(cacheKey, keys);
  return keys;
}

function hmac(key: Buffer, data: Buffer | string): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

function decodeBase64(value: string, what: string): Buffer {
  if (value.length === 0 || !BASE64_RE.test(value)) throw new ScramError(`SCRAM: ${what} is not valid base64`);
  return Buffer.from(value, 'base64');
}

/** RFC 5802 saslname: ',' and '=' are escaped. */
function saslName(name: string): string {
  return name.replaceAll('=', '=3D').replaceAll(',', '=2C');
}

type State = 'initial' | 'first-sent' | 'final-sent' | 'done';

export class ScramSha256Client {
  readonly #password: string;
  readonly #nonce: string;
  readonly #username: string;
  readonly #channelBinding: ChannelBinding | undefined;
  #state: State = 'initial';
  #clientFirstBare = '';
  #serverSignature: Buffer | undefined;

  constructor(password: string, options: ScramClientOptions = {}) {
    const nonce = options.nonce ?? randomBytes(18).toString('base64');
    if (!NONCE_RE.test(nonce)) throw new ScramError('SCRAM: client nonce must be printable ASCII without commas');
    if (options.channelBinding) {
      if (options.channelBinding.type !== 'tls-server-end-point') {
        throw new ScramError(`SCRAM: unsupported channel binding type ${String(options.channelBinding.type)}`);
      }
      if (options.channelBinding.data.length === 0) throw new ScramError('SCRAM: channel binding data is empty');
    }
    this.#password = password;
    this.#nonce = nonce;
    this.#username = options.username ?? '*';
    this.#channelBinding = options.channelBinding;
  }

  get mechanism(): ScramMechanism {
    return this.#channelBinding ? 'SCRAM-SHA-256-PLUS' : 'SCRAM-SHA-256';
  }

  /** The initial response to put in SASLInitialResponse. */
  clientFirstMessage(): Buffer {
    this.#expect('initial', 'clientFirstMessage');
    this.#clientFirstBare = `n=${saslName(this.#username)},r=${this.#nonce}`;
    this.#state = 'first-sent';
    return Buffer.from(this.#gs2Header() + this.#clientFirstBare, 'utf8');
  }

  /** Answers the server-first message (AuthenticationSASLContinue data) with the client proof. */
  clientFinalMessage(serverFirst: Buffer): Buffer {
    this.#expect('first-sent', 'clientFinalMessage');
    const text = serverFirst.toString('utf8');
    if (text.startsWith('e=')) throw new ScramError(`SCRAM: server error: ${text.slice(2)}`);
    if (text.startsWith('m=')) throw new ScramError('SCRAM: server requires an unsupported mandatory extension');
    const [r, s, i] = text.split(',');
    if (!r?.startsWith('r=') || !s?.startsWith('s=') || !i?.startsWith('i=')) {
      throw new ScramError('SCRAM: malformed server-first message (expected r=, s=, i=)');
    }
    const nonce = r.slice(2);
    if (!nonce.startsWith(this.#nonce) || nonce.length <= this.#nonce.length || !NONCE_RE.test(nonce)) {
      throw new ScramError('SCRAM: server nonce does not extend the client nonce');
    }
    const salt = decodeBase64(s.slice(2), 'salt');
    const iterText = i.slice(2);
    const iterations = /^[1-9][0-9]{0,9}$/.test(iterText) ? Number(iterText) : Number.NaN;
    if (!(iterations >= 1 && iterations <= SCRAM_MAX_ITERATIONS)) {
      throw new ScramError(`SCRAM: iteration count ${JSON.stringify(iterText)} outside 1..${SCRAM_MAX_ITERATIONS}`);
    }

    const gs2 = Buffer.from(this.#gs2Header(), 'utf8');
    const cbind = (this.#channelBinding ? Buffer.concat([gs2, this.#channelBinding.data]) : gs2).toString('base64');
    const withoutProof = `c=${cbind},r=${nonce}`;
    const authMessage = `${this.#clientFirstBare},${text},${withoutProof}`;

    const keys = deriveKeys(this.#password, salt, iterations);
    const proof = hmac(keys.storedKey, authMessage);
    for (let k = 0; k < proof.length; k++) proof[k] = proof[k]! ^ keys.clientKey[k]!;
    this.#serverSignature = hmac(keys.serverKey, authMessage);
    this.#state = 'final-sent';
    return Buffer.from(`${withoutProof},p=${proof.toString('base64')}`, 'utf8');
  }

  /**
   * Checks the server-final message (AuthenticationSASLFinal data). Throws unless the server proved
   * it knows the verifier: a server that only relays AuthenticationOk must not be trusted.
   */
  verifyServerFinal(serverFinal: Buffer): void {
    this.#expect('final-sent', 'verifyServerFinal');
    this.#state = 'done';
    const text = serverFinal.toString('utf8');
    const first = text.split(',', 1)[0] ?? '';
    if (first.startsWith('e=')) throw new ScramError(`SCRAM: server rejected authentication: ${first.slice(2)}`);
    if (!first.startsWith('v=')) throw new ScramError('SCRAM: malformed server-final message (expected v=)');
    const signature = decodeBase64(first.slice(2), 'server signature');
    const expected = this.#serverSignature!;
    if (signature.length !== expected.length || !timingSafeEqual(signature, expected)) {
      throw new ScramError('SCRAM: server signature mismatch: the server does not hold this credential');
    }
  }

  #gs2Header(): string {
    return this.#channelBinding ? `p=${this.#channelBinding.type},,` : 'n,,';
  }

  #expect(state: State, step: string): void {
    if (this.#state !== state) throw new ScramError(`SCRAM: ${step}() called out of order (state ${this.#state})`);
  }
}

/**
 * Picks the mechanism to answer AuthenticationSASL with: -PLUS when the server offers it and we have
 * channel binding data (a TLS connection), plain SCRAM-SHA-256 otherwise.
 */
export function chooseMechanism(offered: string[], channelBindingData?: Buffer): ScramMechanism {
  if (channelBindingData && channelBindingData.length > 0 && offered.includes('SCRAM-SHA-256-PLUS')) {
    return 'SCRAM-SHA-256-PLUS';
  }
  if (offered.includes('SCRAM-SHA-256')) return 'SCRAM-SHA-256';
  throw new ScramError(`SCRAM: server offered no usable SASL mechanism (offered: ${offered.join(', ') || 'none'})`);
}

// ---- SASLprep (RFC 4013), as Postgres applies it to passwords -------------------------------------
//
// Postgres runs SASLprep when it stores a SCRAM verifier and libpq runs it before hashing; when prep
// fails (prohibited or unassigned code points) both silently use the raw password. So must we, or a
// password that Postgres kept raw would never match. Pure-ASCII passwords pass through untouched, as
// in Postgres. Deviations: NFKC and the unassigned check use the JS runtime's Unicode tables (RFC
// 3454 pins Unicode 3.2), and the bidi rule's LCat set is approximated by letter categories outside
// right-to-left scripts; both matter only for passwords mixing characters assigned after Unicode 3.2
// or unusual bidi classes with characters that prep changes.

// B.1: commonly mapped to nothing.
const MAPPED_TO_NOTHING = [
  0x00ad, 0x00ad, 0x034f, 0x034f, 0x1806, 0x1806, 0x180b, 0x180d, 0x200b, 0x200d, 0x2060, 0x2060, 0xfe00, 0xfe0f,
  0xfeff, 0xfeff,
];
// C.1.2: non-ASCII space characters, mapped to U+0020 (and prohibited in the output).
const NON_ASCII_SPACE = [
  0x00a0, 0x00a0, 0x1680, 0x1680, 0x2000, 0x200b, 0x202f, 0x202f, 0x205f, 0x205f, 0x3000, 0x3000,
];
// C.1.2, C.2.1, C.2.2, C.3, C.5, C.6, C.7, C.8, C.9 (C.4 non-characters are checked arithmetically).
const PROHIBITED = [
  ...NON_ASCII_SPACE,
  0x0000,
  0x001f,
  0x007f,
  0x009f,
  0x0340,
  0x0341,
  0x06dd,
  0x06dd,
  0x070f,
  0x070f,
  0x180e,
  0x180e,
  0x200c,
  0x200f,
  0x2028,
  0x202e,
  0x2060,
  0x2063,
  0x206a,
  0x206f,
  0x2ff0,
  0x2ffb,
  0xd800,
  0xf8ff,
  0xfdd0,
  0xfdef,
  0xfeff,
  0xfeff,
  0xfff9,
  0xfffd,
  0x1d173,
  0x1d17a,
  0xe0001,
  0xe0001,
  0xe0020,
  0xe007f,
  0xf0000,
  0xffffd,
  0x100000,
  0x10fffd,
];
// D.1: characters with bidirectional property R or AL.
const RAND_AL_CAT = [
  0x05be, 0x05be, 0x05c0, 0x05c0, 0x05c3, 0x05c3, 0x05d0, 0x05ea, 0x05f0, 0x05f4, 0x061b, 0x061b, 0x061f, 0x061f,
  0x0621, 0x063a, 0x0640, 0x064a, 0x066d, 0x066f, 0x0671, 0x06d5, 0x06dd, 0x06dd, 0x06e5, 0x06e6, 0x06fa, 0x06fe,
  0x0700, 0x070d, 0x0710, 0x0710, 0x0712, 0x072c, 0x0780, 0x07a5, 0x07b1, 0x07b1, 0x200f, 0x200f, 0xfb1d, 0xfb1d,
  0xfb1f, 0xfb28, 0xfb2a, 0xfb36, 0xfb38, 0xfb3c, 0xfb3e, 0xfb3e, 0xfb40, 0xfb41, 0xfb43, 0xfb44, 0xfb46, 0xfbb1,
  0xfbd3, 0xfd3d, 0xfd50, 0xfd8f, 0xfd92, 0xfdc7, 0xfdf0, 0xfdfc, 0xfe70, 0xfe74, 0xfe76, 0xfefc,
];
const UNASSIGNED = /\p{Cn}/u;
// Approximates D.2 (bidi class L): letters and spacing marks outside the right-to-left scripts.
const L_CAT = /(?![\p{Script=Hebrew}\p{Script=Arabic}\p{Script=Syriac}\p{Script=Thaana}\p{Script=Nko}])[\p{L}\p{Mc}]/u;

function inRanges(cp: number, ranges: readonly number[]): boolean {
  for (let k = 0; k < ranges.length; k += 2) if (cp >= ranges[k]! && cp <= ranges[k + 1]!) return true;
  return false;
}

/**
 * SASLprep of a password as Postgres does it, or undefined when prep fails (the caller then uses the
 * raw password, like Postgres and libpq).
 */
export function saslPrep(input: string): string | undefined {
  if (/^[\x00-\x7f]*$/.test(input)) return input;
  let mapped = '';
  for (const ch of input) {
    const cp = ch.codePointAt(0)!;
    if (inRanges(cp, NON_ASCII_SPACE)) mapped += ' ';
    else if (!inRanges(cp, MAPPED_TO_NOTHING)) mapped += ch;
  }
  const output = mapped.normalize('NFKC');
  const chars = Array.from(output);
  if (chars.length === 0) return undefined; // Postgres does not let prep empty a password
  let randAl = false;
  let lCat = false;
  for (const ch of chars) {
    const cp = ch.codePointAt(0)!;
    if (inRanges(cp, PROHIBITED) || (cp & 0xfffe) === 0xfffe || UNASSIGNED.test(ch)) return undefined;
    if (inRanges(cp, RAND_AL_CAT)) randAl = true;
    else if (L_CAT.test(ch)) lCat = true;
  }
  if (randAl) {
    const first = chars[0]!.codePointAt(0)!;
    const last = chars[chars.length - 1]!.codePointAt(0)!;
    if (lCat || !inRanges(first, RAND_AL_CAT) || !inRanges(last, RAND_AL_CAT)) return undefined;
  }
  return output;
}

function prepPassword(password: string): string {
  return saslPrep(password) ?? password;
}

// ---- tls-server-end-point (RFC 5929 §4.1) -------------------------------------------------------

const HASH_BY_SIGNATURE_OID: Record<string, string> = {
  '1.2.840.113549.1.1.4': 'sha256', // md5WithRSAEncryption: MD5 and SHA-1 are replaced by SHA-256
  '1.2.840.113549.1.1.5': 'sha256', // sha1WithRSAEncryption
  '1.2.840.113549.1.1.11': 'sha256',
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.2.840.113549.1.1.14': 'sha224',
  '1.2.840.10045.4.1': 'sha256', // ecdsa-with-SHA1
  '1.2.840.10045.4.3.1': 'sha224',
  '1.2.840.10045.4.3.2': 'sha256',
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
  '1.2.840.10040.4.3': 'sha256', // dsa-with-sha1
  '2.16.840.1.101.3.4.3.1': 'sha224',
  '2.16.840.1.101.3.4.3.2': 'sha256',
};
const HASH_BY_DIGEST_OID: Record<string, string> = {
  '1.3.14.3.2.26': 'sha256', // SHA-1
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
  '2.16.840.1.101.3.4.2.4': 'sha224',
};
const RSASSA_PSS = '1.2.840.113549.1.1.10';

/**
 * The channel binding data for `tls-server-end-point`: the server certificate (DER, e.g.
 * `tlsSocket.getPeerCertificate().raw`) hashed with the hash of its signature algorithm, SHA-256
 * when that is MD5 or SHA-1. Node 20's X509Certificate does not expose the signature algorithm, so
 * it is read from the DER unless given. Throws for algorithms without a single hash (Ed25519, Ed448)
 * or unknown ones, as Postgres does: guessing would only fail later as a binding mismatch.
 */
export function tlsServerEndPointHash(certDer: Buffer, signatureAlgorithmOid?: string): Buffer {
  let hash: string | undefined;
  if (signatureAlgorithmOid !== undefined) {
    hash = HASH_BY_SIGNATURE_OID[signatureAlgorithmOid];
  } else {
    const algorithm = readSignatureAlgorithm(certDer);
    signatureAlgorithmOid = algorithm.oid;
    hash = algorithm.oid === RSASSA_PSS ? pssHash(certDer, algorithm.params) : HASH_BY_SIGNATURE_OID[algorithm.oid];
  }
  if (!hash)
    throw new Error(`tls-server-end-point: unsupported certificate signature algorithm ${signatureAlgorithmOid}`);
  return createHash(hash).update(certDer).digest();
}

interface Tlv {
  tag: number;
  start: number;
  end: number;
}

function readTlv(der: Buffer, offset: number, limit: number): Tlv {
  const bad = () => new Error('tls-server-end-point: certificate is not valid DER');
  if (offset + 2 > limit) throw bad();
  const tag = der[offset]!;
  let length = der[offset + 1]!;
  let start = offset + 2;
  if (length & 0x80) {
    const bytes = length & 0x7f;
    if (bytes === 0 || bytes > 4 || start + bytes > limit) throw bad();
    length = 0;
    for (let k = 0; k < bytes; k++) length = length * 256 + der[start + k]!;
    start += bytes;
  }
  if (start + length > limit) throw bad();
  return { tag, start, end: start + length };
}

function readOid(der: Buffer, tlv: Tlv): string {
  if (tlv.tag !== 0x06 || tlv.end === tlv.start) throw new Error('tls-server-end-point: expected an OID');
  const first = der[tlv.start]!;
  const arcs = first < 80 ? [Math.floor(first / 40), first % 40] : [2, first - 80];
  let value = 0;
  for (let k = tlv.start + 1; k < tlv.end; k++) {
    const byte = der[k]!;
    value = value * 128 + (byte & 0x7f);
    if (!(byte & 0x80)) {
      arcs.push(value);
      value = 0;
    }
  }
  return arcs.join('.');
}

/** Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm AlgorithmIdentifier, signatureValue } */
function readSignatureAlgorithm(der: Buffer): { oid: string; params: Tlv | undefined } {
  const cert = readTlv(der, 0, der.length);
  if (cert.tag !== 0x30) throw new Error('tls-server-end-point: certificate is not a DER SEQUENCE');
  const tbs = readTlv(der, cert.start, cert.end);
  return readAlgorithmIdentifier(der, readTlv(der, tbs.end, cert.end));
}

function readAlgorithmIdentifier(der: Buffer, seq: Tlv): { oid: string; params: Tlv | undefined } {
  if (seq.tag !== 0x30) throw new Error('tls-server-end-point: expected an AlgorithmIdentifier');
  const oidTlv = readTlv(der, seq.start, seq.end);
  const params = oidTlv.end < seq.end ? readTlv(der, oidTlv.end, seq.end) : undefined;
  return { oid: readOid(der, oidTlv), params };
}

/** RSASSA-PSS-params ::= SEQUENCE { hashAlgorithm [0] AlgorithmIdentifier DEFAULT sha1, ... } */
function pssHash(der: Buffer, params: Tlv | undefined): string | undefined {
  if (params?.tag !== 0x30) return undefined;
  if (params.start === params.end) return HASH_BY_DIGEST_OID['1.3.14.3.2.26'];
  const first = readTlv(der, params.start, params.end);
  if (first.tag !== 0xa0) return HASH_BY_DIGEST_OID['1.3.14.3.2.26'];
  return HASH_BY_DIGEST_OID[readAlgorithmIdentifier(der, readTlv(der, first.start, first.end)).oid];
}
