/**
 * The sidecar's upstream authentication modules against a real Postgres: a hand-built StartupMessage
 * on a raw socket, then SCRAM-SHA-256(-PLUS), md5 and cleartext exchanges driven by our code until
 * AuthenticationOk + ReadyForQuery, or the ErrorResponse a wrong password earns.
 */
import { readFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import type { Duplex } from 'node:stream';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { md5PasswordResponse } from '../../sidecar/src/auth/md5.js';
import { chooseMechanism, ScramSha256Client, tlsServerEndPointHash } from '../../sidecar/src/auth/scram.js';
import { AUTH_USERS, startPostgres, TEST_PASSWORD, type TestPostgres } from '../harness/postgres.js';

// ---- minimal frontend framing, local to this test ------------------------------------------------

function int32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
}

function typed(type: string, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from(type, 'latin1'), int32(body.length + 4), body]);
}

function cstring(s: string): Buffer {
  return Buffer.from(`${s}\0`, 'utf8');
}

function startupMessage(user: string, database = 'postgres'): Buffer {
  const body = Buffer.concat([
    int32(196608),
    cstring('user'),
    cstring(user),
    cstring('database'),
    cstring(database),
    Buffer.from([0]),
  ]);
  return Buffer.concat([int32(body.length + 4), body]);
}

const sslRequest = Buffer.concat([int32(8), int32(80877103)]);
const terminate = typed('X', Buffer.alloc(0));

interface BackendMessage {
  type: string;
  body: Buffer;
}

/** Reads backend messages (or single bytes, for the SSLRequest answer) from a socket. */
class Wire {
  #buf = Buffer.alloc(0);
  #wake: (() => void) | undefined;
  #closed: Error | undefined;
  readonly #onData = (chunk: Buffer) => {
    this.#buf = Buffer.concat([this.#buf, chunk]);
    this.#wake?.();
  };

  constructor(readonly socket: Duplex) {
    socket.on('data', this.#onData);
    const close = (err?: Error) => {
      this.#closed ??= err ?? new Error('connection closed');
      this.#wake?.();
    };
    socket.on('error', close);
    socket.on('close', () => close());
  }

  write(data: Buffer): void {
    this.socket.write(data);
  }

  async #need(n: number): Promise<void> {
    while (this.#buf.length < n) {
      if (this.#closed) throw this.#closed;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
      this.#wake = undefined;
    }
  }

  async byte(): Promise<string> {
    await this.#need(1);
    const b = this.#buf.subarray(0, 1).toString('latin1');
    this.#buf = this.#buf.subarray(1);
    return b;
  }

  async message(): Promise<BackendMessage> {
    await this.#need(5);
    const length = this.#buf.readInt32BE(1);
    await this.#need(1 + length);
    const msg = { type: this.#buf.subarray(0, 1).toString('latin1'), body: this.#buf.subarray(5, 1 + length) };
    this.#buf = this.#buf.subarray(1 + length);
    return msg;
  }

  /** Stops reading so another layer (TLS) can take the socket over. */
  detach(): Duplex {
    this.socket.off('data', this.#onData);
    this.socket.pause();
    return this.socket;
  }
}

function errorFields(body: Buffer): Record<string, string> {
  const fields: Record<string, string> = {};
  let at = 0;
  while (at < body.length && body[at] !== 0) {
    const end = body.indexOf(0, at + 1);
    fields[String.fromCharCode(body[at]!)] = body.subarray(at + 1, end).toString('utf8');
    at = end + 1;
  }
  return fields;
}

// ---- the authentication exchange, driven by the modules under test -------------------------------

interface Outcome {
  /** Methods seen, in order: 'SCRAM-SHA-256', 'SCRAM-SHA-256-PLUS', 'md5', 'password'. */
  method?: string;
  offered?: string[];
  error?: { code: string; message: string };
  ready?: boolean;
}

interface AuthOptions {
  /** The tls-server-end-point hash to bind to; wrong on purpose in one test. */
  channelBindingData?: Buffer;
}

async function authenticate(wire: Wire, user: string, password: string, options: AuthOptions = {}): Promise<Outcome> {
  const outcome: Outcome = {};
  let scram: ScramSha256Client | undefined;
  let serverVerified = false;
  let authOk = false;
  wire.write(startupMessage(user));
  for (;;) {
    const { type, body } = await wire.message();
    if (type === 'E') {
      const f = errorFields(body);
      outcome.error = { code: f.C ?? '', message: f.M ?? '' };
      return outcome;
    }
    if (type === 'Z') {
      expect(authOk).toBe(true);
      if (scram) expect(serverVerified).toBe(true);
      outcome.ready = true;
      wire.write(terminate);
      return outcome;
    }
    if (type !== 'R') continue; // ParameterStatus, BackendKeyData, notices
    const code = body.readInt32BE(0);
    switch (code) {
      case 0:
        authOk = true;
        break;
      case 3:
        outcome.method = 'password';
        wire.write(typed('p', cstring(password)));
        break;
      case 5:
        outcome.method = 'md5';
        wire.write(typed('p', cstring(md5PasswordResponse(user, password, body.subarray(4, 8)))));
        break;
      case 10: {
        const offered = body.subarray(4).toString('utf8').split('\0').filter(Boolean);
        outcome.offered = offered;
        const mechanism = chooseMechanism(offered, options.channelBindingData);
        scram = new ScramSha256Client(
          password,
          mechanism === 'SCRAM-SHA-256-PLUS' && options.channelBindingData
            ? { channelBinding: { type: 'tls-server-end-point', data: options.channelBindingData } }
            : {},
        );
        expect(scram.mechanism).toBe(mechanism);
        outcome.method = mechanism;
        const first = scram.clientFirstMessage();
        wire.write(typed('p', Buffer.concat([cstring(mechanism), int32(first.length), first])));
        break;
      }
      case 11:
        wire.write(typed('p', scram!.clientFinalMessage(body.subarray(4))));
        break;
      case 12:
        scram!.verifyServerFinal(body.subarray(4));
        serverVerified = true;
        break;
      default:
        throw new Error(`unexpected authentication request ${code}`);
    }
  }
}

async function plainWire(): Promise<Wire> {
  const socket = netConnect({ host: pg.host, port: pg.port });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return new Wire(socket);
}

async function tlsWire(): Promise<{ wire: Wire; channelBindingData: Buffer }> {
  const plain = await plainWire();
  plain.write(sslRequest);
  expect(await plain.byte()).toBe('S');
  const socket = tlsConnect({ socket: plain.detach(), ca: readFileSync(pg.caFile!), servername: 'localhost' });
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', resolve);
    socket.once('error', reject);
  });
  const channelBindingData = tlsServerEndPointHash(socket.getPeerCertificate().raw);
  return { wire: new Wire(socket), channelBindingData };
}

async function login(user: string, password: string): Promise<Outcome> {
  const wire = await plainWire();
  try {
    return await authenticate(wire, user, password);
  } finally {
    wire.socket.destroy();
  }
}

let pg: TestPostgres;
beforeAll(async () => {
  pg = await startPostgres({ ssl: true });
});
afterAll(async () => pg?.stop());

describe('upstream authentication against a real Postgres', () => {
  test('SCRAM-SHA-256 without TLS: the server offers only the unbound mechanism', async () => {
    const outcome = await login(AUTH_USERS.scram, TEST_PASSWORD);
    expect(outcome).toMatchObject({ method: 'SCRAM-SHA-256', offered: ['SCRAM-SHA-256'], ready: true });
  });

  test('md5', async () => {
    expect(await login(AUTH_USERS.md5, TEST_PASSWORD)).toMatchObject({ method: 'md5', ready: true });
  });

  test('cleartext password', async () => {
    expect(await login(AUTH_USERS.password, TEST_PASSWORD)).toMatchObject({ method: 'password', ready: true });
  });

  test.each([AUTH_USERS.scram, AUTH_USERS.md5, AUTH_USERS.password])('wrong password for %s: 28P01', async (user) => {
    const outcome = await login(user, 'not-the-secret');
    expect(outcome.ready).toBeUndefined();
    expect(outcome.error?.code).toBe('28P01');
  });

  test('SCRAM-SHA-256-PLUS over TLS, bound to the server certificate', async () => {
    const { wire, channelBindingData } = await tlsWire();
    try {
      const outcome = await authenticate(wire, AUTH_USERS.scram, TEST_PASSWORD, { channelBindingData });
      expect(outcome.offered).toContain('SCRAM-SHA-256-PLUS');
      expect(outcome).toMatchObject({ method: 'SCRAM-SHA-256-PLUS', ready: true });
    } finally {
      wire.socket.destroy();
    }
  });

  test('SCRAM-SHA-256-PLUS with the wrong certificate hash is refused by the server', async () => {
    const { wire } = await tlsWire();
    try {
      const outcome = await authenticate(wire, AUTH_USERS.scram, TEST_PASSWORD, {
        channelBindingData: Buffer.alloc(32, 7),
      });
      expect(outcome.method).toBe('SCRAM-SHA-256-PLUS');
      expect(outcome.ready).toBeUndefined();
      expect(outcome.error?.message).toMatch(/channel binding/i);
    } finally {
      wire.socket.destroy();
    }
  });

  test('the md5 unit-test vector agrees with Postgres computing md5 over its stored verifier', async () => {
    const salt = Buffer.from([0x93, 0x1a, 0x00, 0xff]);
    const admin = pg.client();
    await admin.connect();
    try {
      const { rows } = await admin.query<{ r: string }>(
        `select 'md5' || md5(convert_to(substr(rolpassword, 4), 'UTF8') || $1::bytea) as r
           from pg_authid where rolname = $2`,
        [salt, AUTH_USERS.md5],
      );
      expect(rows[0]?.r).toBe(md5PasswordResponse(AUTH_USERS.md5, TEST_PASSWORD, salt));
      expect(rows[0]?.r).toBe('md501f6de9291a3f45ecf4a279bda31fa78');
    } finally {
      await admin.end();
    }
  });

  // Postgres applies SASLprep when it stores the verifier (falling back to the raw password when
  // prep fails); logging in with the same raw password only works if our prep agrees.
  test.each([
    ['non-ASCII spaces', 'se\u00A0cr\u3000et'],
    ['mapped to nothing', 'se\u00ADcret\u200D'],
    ['zero width space (in both B.1 and C.1.2)', 'se\u200Bcret'],
    ['NFKC', '\u2168\uFF53\u00E9\u0301'],
    ['only a character mapped to nothing', '\u00AD'],
    ['prohibited private use (raw fallback)', 'se\uE000cr\u00E9t\u00A0'],
    ['ASCII control beside non-ASCII (raw fallback)', 'se\u0007cr\u00E9t\u00A0'],
    ['bidi violation (raw fallback)', '\u0627\u00A01'],
    ['Hebrew', '\u05D0\u00A0\u05D1'],
  ])('SASLprep agrees with Postgres: %s', async (_name, password) => {
    const admin = pg.client();
    await admin.connect();
    try {
      await admin.query(`alter role ${AUTH_USERS.scram} password '${password.replaceAll("'", "''")}'`);
      const outcome = await login(AUTH_USERS.scram, password);
      expect(outcome.error).toBeUndefined();
      expect(outcome).toMatchObject({ method: 'SCRAM-SHA-256', ready: true });
    } finally {
      await admin.query(`alter role ${AUTH_USERS.scram} password '${TEST_PASSWORD}'`);
      await admin.end();
    }
  });
});
