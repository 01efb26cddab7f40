/**
 * Answers Postgres's authentication requests with the injected credential (`credentials.mode:
 * inject`). Pure: takes the Authentication message, returns what to send back.
 */
import { md5PasswordResponse } from '../auth/md5.js';
import { chooseMechanism, ScramSha256Client } from '../auth/scram.js';
import {
  authenticationCode,
  decodeSaslMechanisms,
  encodePassword,
  encodeSaslInitialResponse,
  encodeSaslResponse,
} from '../protocol/messages.js';

export type AuthStep = { reply: Buffer } | { ok: true } | { wait: true } | { error: string };

const METHOD_NAMES: Record<number, string> = { 2: 'Kerberos V5', 7: 'GSSAPI', 8: 'GSSAPI continue', 9: 'SSPI' };

export class InjectedAuthenticator {
  private scram: ScramSha256Client | null = null;
  private scramVerified = false;

  constructor(
    private readonly username: string,
    private readonly password: string,
    private readonly channelBinding: Buffer | null,
  ) {}

  /** One Authentication ('R') message from Postgres. */
  step(buf: Buffer, start: number, end: number): AuthStep {
    const code = authenticationCode(buf, start, end);
    switch (code) {
      case 0:
        // A server that asked for SCRAM must have proven it knows the verifier before saying Ok.
        if (this.scram && !this.scramVerified) return { error: 'the database server skipped the SCRAM server proof' };
        return { ok: true };
      case 3:
        return { reply: encodePassword(this.password) };
      case 5: {
        if (end - start < 13) return { error: 'malformed AuthenticationMD5Password' };
        const salt = buf.subarray(start + 9, start + 13);
        return { reply: encodePassword(md5PasswordResponse(this.username, this.password, salt)) };
      }
      case 10: {
        const offered = decodeSaslMechanisms(buf, start, end);
        let mechanism: string;
        try {
          mechanism = chooseMechanism(offered, this.channelBinding ?? undefined);
        } catch (e) {
          return { error: (e as Error).message };
        }
        this.scram = new ScramSha256Client(
          this.password,
          mechanism === 'SCRAM-SHA-256-PLUS' && this.channelBinding
            ? { channelBinding: { type: 'tls-server-end-point', data: this.channelBinding } }
            : {},
        );
        return { reply: encodeSaslInitialResponse(this.scram.mechanism, this.scram.clientFirstMessage()) };
      }
      case 11:
        if (!this.scram) return { error: 'SASLContinue without SASL' };
        return { reply: encodeSaslResponse(this.scram.clientFinalMessage(buf.subarray(start + 9, end))) };
      case 12:
        if (!this.scram) return { error: 'SASLFinal without SASL' };
        this.scram.verifyServerFinal(buf.subarray(start + 9, end));
        this.scramVerified = true;
        return { wait: true };
      default:
        return {
          error: `the database server asked for ${METHOD_NAMES[code] ?? `authentication method ${code}`}, which the sidecar cannot answer`,
        };
    }
  }
}
