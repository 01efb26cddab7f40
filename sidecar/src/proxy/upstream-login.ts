/**
 * The upstream side of the startup conversation: Postgres's messages until its first
 * ReadyForQuery. In inject mode the sidecar answers the authentication itself; in passthrough
 * the client does (minus SCRAM -PLUS, which cannot cross a proxy). BackendKeyData reaches the
 * client with Postgres's real pid and a secret the sidecar issued, so cancels come through it.
 */
import type { UpstreamConfig } from '@byline/api';
import { Verdict } from '../protocol/frame-reader.js';
import {
  AUTHENTICATION_OK,
  authenticationCode,
  B,
  type CancelKey,
  decodeBackendKeyData,
  decodeErrorFields,
  encodeBackendKeyData,
  readCString,
} from '../protocol/messages.js';
import type { CancelRegistry } from './cancel-registry.js';
import type { InjectedAuthenticator } from './upstream-auth.js';

export interface LoginEvents {
  /** Forward `buf` in place of the message being handled (which is then dropped). */
  inject(buf: Buffer): void;
  /** Send to Postgres. */
  reply(buf: Buffer): void;
  /** A ParameterStatus, forwarded to the client; the session follows the settings it reports. */
  parameterStatus(buf: Buffer, start: number, end: number): void;
  /** Postgres refused the session (its ErrorResponse is forwarded as is). */
  refused(e: { code: string; message: string }): void;
  /** The sidecar's own answer to Postgres failed; the client gets this FATAL. */
  failed(sqlstate: string, message: string): void;
  /** The first ReadyForQuery: the session is ready. */
  ready(): void;
}

export class UpstreamLogin {
  /** The key handed to the client, to release when the session ends. */
  issuedKey: CancelKey | null = null;

  constructor(
    private readonly authenticator: InjectedAuthenticator | null,
    private readonly cancels: CancelRegistry,
    private readonly upstream: UpstreamConfig,
    private readonly events: LoginEvents,
  ) {}

  onMessage(type: number, buf: Buffer, start: number, end: number): Verdict {
    switch (type) {
      case B.authentication:
        return this.onAuthentication(buf, start, end);
      case B.backendKeyData: {
        const key = decodeBackendKeyData(buf, start, end);
        this.issuedKey = this.cancels.issue({ upstream: this.upstream, key });
        this.events.inject(encodeBackendKeyData(this.issuedKey));
        return Verdict.drop;
      }
      case B.parameterStatus:
        this.events.parameterStatus(buf, start, end);
        return Verdict.forward;
      case B.readyForQuery:
        this.events.ready();
        return Verdict.forward;
      case B.errorResponse:
        this.events.refused(decodeErrorFields(buf, start, end));
        return Verdict.forward;
      default:
        // NegotiateProtocolVersion, notices: the client needs them as they are.
        return Verdict.forward;
    }
  }

  private onAuthentication(buf: Buffer, start: number, end: number): Verdict {
    const auth = this.authenticator;
    if (!auth) {
      // passthrough: the client answers; but SCRAM channel binding cannot cross the proxy (the
      // client would bind to the sidecar's TLS, Postgres to its own), so -PLUS is not offered.
      if (authenticationCode(buf, start, end) === 10) {
        this.events.inject(withoutPlus(buf, start, end));
        return Verdict.drop;
      }
      return Verdict.forward;
    }
    const step = auth.step(buf, start, end);
    if ('reply' in step) {
      this.events.reply(step.reply);
      return Verdict.drop;
    }
    if ('error' in step) {
      this.events.failed('28000', `cannot log in to the database server: ${step.error}`);
      return Verdict.stop;
    }
    if ('ok' in step) {
      this.events.inject(AUTHENTICATION_OK);
      return Verdict.drop;
    }
    return Verdict.drop; // SASLFinal verified; AuthenticationOk follows
  }
}

/** AuthenticationSASL with the -PLUS mechanisms removed. */
function withoutPlus(buf: Buffer, start: number, end: number): Buffer {
  const mechanisms: string[] = [];
  let pos = start + 9;
  while (pos < end && buf[pos] !== 0) {
    const m = readCString(buf, pos, end, 'AuthenticationSASL');
    if (!m.value.endsWith('-PLUS')) mechanisms.push(m.value);
    pos = m.next;
  }
  const body = Buffer.from(`${mechanisms.map((m) => `${m}\0`).join('')}\0`);
  const out = Buffer.allocUnsafe(9 + body.length);
  out[0] = B.authentication;
  out.writeInt32BE(8 + body.length, 1);
  out.writeInt32BE(10, 5);
  body.copy(out, 9);
  return out;
}
