/**
 * One client connection through the sidecar. The I/O edge around the pure parts: it owns the two
 * sockets and moves bytes between them, and hands each concern to its own module —
 *   startup.ts          the startup conversation's decisions (what a packet asks, who may log in)
 *   upstream.ts         opening the connection to Postgres (TLS per sslMode)
 *   upstream-login.ts   Postgres's side of the startup: authentication, BackendKeyData
 *   cancel-forwarding   CancelRequests, to the upstream of the session they name
 *   relay.ts            the outboxes and when each side is read: backpressure, and strict
 *                       durability's hold on results (flow-control.ts, durability-gate.ts)
 *   refusal.ts          statements not forwarded (spool full or unwritable) and how that is told
 *   denial-placeholder  statements the policy denies: answered exactly as a Postgres error would be
 *
 * Phases:
 *   startup        untyped messages: SSLRequest (→ TLS), GSSENCRequest (→ N), CancelRequest, StartupMessage
 *   client-auth    (inject mode with clientPasswordFile, or a gateway's clientAuth) waiting for the
 *                  client's password; with clientAuth it decides the session's identity and how long it may last
 *   connecting     opening the upstream connection and negotiating TLS with Postgres
 *   upstream-auth  inject: the sidecar answers Postgres's challenge; passthrough: relayed
 *   ready          every frontend message is tracked then forwarded; every backend message forwarded then tracked
 *   closed
 * Client messages that arrive before `ready` are held and replayed through the tracker, so none
 * reaches Postgres unrecorded. A session that is not ready within authenticationTimeoutMs is closed.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { type SecureContext, TLSSocket } from 'node:tls';
import type { AuditIdentity, DurabilityName, ParamsModeName, RouteConfig } from '@byline/api';
import type { Logger } from 'pino';
import type { SessionInfo } from '../audit/event-builder.js';
import type { AuditPipeline } from '../audit/pipeline.js';
import type { AuthzDecision, RecordSink, StatementRecord } from '../capture/records.js';
import type { Prepared } from '../capture/sql-prepared.js';
import { StatementTracker } from '../capture/statement-tracker.js';
import type { ClientAuthenticator, SessionLease } from '../identity/client-auth.js';
import type { SidecarMetrics } from '../metrics.js';
import type { Authorizer } from '../policy/authorizer.js';
import { denialResponse } from '../policy/denial.js';
import { type MessageHandler, MessageReader, Verdict } from '../protocol/frame-reader.js';
import {
  AUTHENTICATION_CLEARTEXT,
  B,
  decodeCancelRequest,
  decodeErrorFields,
  decodeParameterStatus,
  decodeStartup,
  encodeError,
  encodeReadyForQuery,
  encodeStartup,
  F,
  ProtocolError,
  readCString,
  requestCode,
  SSL_NO,
  SSL_YES,
  type StartupMessage,
  TERMINATE,
} from '../protocol/messages.js';
import type { Spool } from '../spool/spool.js';
import { forwardCancel } from './cancel-forwarding.js';
import type { CancelRegistry } from './cancel-registry.js';
import {
  PLACEHOLDER_EXECUTE_SQLSTATE,
  PLACEHOLDER_QUERY,
  PLACEHOLDER_QUERY_SQLSTATE,
  placeholderExecute,
} from './denial-placeholder.js';
import type { ReusedReadBuffer } from './read-buffer.js';
import { backlogRefusal, type Refusal, refusalKeepsSession, spoolWriteRefusal } from './refusal.js';
import { Relay } from './relay.js';
import { checkStartup, passwordMatches, startupRequest, upstreamOverrides } from './startup.js';
import { connectUpstream } from './upstream.js';
import { InjectedAuthenticator } from './upstream-auth.js';
import { UpstreamLogin } from './upstream-login.js';

export interface SessionContext {
  route: RouteConfig;
  /** Asked once per session, when it connects upstream: a rotated token's identity applies to new sessions. */
  identity: { current(): AuditIdentity };
  pipeline: AuditPipeline;
  cancels: CancelRegistry;
  logger: Logger;
  maxMessageBytes: number;
  /** Startup and authentication must be over within this time (Postgres's authentication_timeout). */
  authenticationTimeoutMs: number;
  paramsMode: ParamsModeName;
  clientTls: SecureContext | null;
  metrics: SidecarMetrics;
  /** The durable spool; statements are recorded in it before they are forwarded. */
  spool: Spool | null;
  durability: DurabilityName;
  onBacklogFull: 'reject' | 'drop';
  /** Decides every statement before it is forwarded. */
  authorizer: Authorizer;
  /** Called once when the session is over. */
  onClosed?: (session: ProxySession) => void;
  /** byline gateway: the client's password (an OIDC token) decides the identity, per connection. */
  clientAuth?: ClientAuthenticator | undefined;
}

type Phase = 'startup' | 'client-auth' | 'connecting' | 'upstream-auth' | 'ready' | 'closed';

type EndReason = { ok: boolean; sqlstate?: string | null; error?: string | null };

const PREFIX = 'byline: ';

export class ProxySession implements RecordSink {
  readonly id = randomUUID();
  private phase: Phase = 'startup';
  private client: Socket;
  private upstream: Socket | null = null;
  private readonly clientReader: MessageReader;
  private upstreamReader: MessageReader | null = null;
  /** Set when Postgres is read into a reused buffer rather than through 'data' events. */
  private upstreamReads: ReusedReadBuffer | null = null;
  private readonly relay: Relay;
  private login: UpstreamLogin | null = null;
  private readonly tracker: StatementTracker;
  private readonly log: Logger;
  private startupMessage: StartupMessage | null = null;
  /** The role the sidecar logs in as (inject mode), read from the route when the startup arrives. */
  private injectedUser: string | null = null;
  private held: Buffer[] = [];
  private info: SessionInfo | null = null;
  private started = false;
  private endReason: EndReason = { ok: true };
  /** The client's own Terminate went upstream; a second one would make Postgres reset the connection. */
  private clientTerminated = false;
  private authTimer: NodeJS.Timeout | null = null;
  /** Postgres closed while results were waiting for durability: close once they are out. */
  private closeWhenDurable = false;
  /** The record of the message being handled, when the policy denied it (set by authorize()). */
  private denied: StatementRecord | null = null;
  /** This session's Execute placeholder (made on its first denied Execute). */
  private executePlaceholder: Buffer | null = null;
  /** The route's access was read at connect: the upstream session is read-only and must stay so. */
  private readOnly = false;
  /** Held messages are being replayed (not read from the client socket). */
  private replaying = false;
  /** With clientAuth: who the client's credential names, and when the session must end. */
  private clientIdentity: AuditIdentity | null = null;
  private endsAtMs: number | null = null;
  private authenticating = false;
  private ageTimer: NodeJS.Timeout | null = null;
  /** With clientAuth: the session's hold on the policy that let it in, released when it ends. */
  private lease: SessionLease | null = null;
  /** The route's, or with clientAuth the signed-in person's (the gateway: per connection). */
  private authorizer: Authorizer;

  constructor(
    socket: Socket,
    private readonly ctx: SessionContext,
  ) {
    this.client = socket;
    this.authorizer = ctx.authorizer;
    this.relay = new Relay(socket, this.onDurable);
    this.log = ctx.logger.child({ session: this.id, route: ctx.route.name });
    this.tracker = new StatementTracker(this, { captureParamValues: ctx.paramsMode === 'full' });
    this.clientReader = new MessageReader(this.clientHandler, this.relay.toUpstream, ctx.maxMessageBytes, {
      untyped: true,
      streamedTypes: 'd',
    });
    socket.setNoDelay(true);
    this.attachClient(socket);
    this.authTimer = setTimeout(this.onAuthenticationTimeout, ctx.authenticationTimeoutMs);
  }

  // ------------------------------------------------------------------ RecordSink (from the tracker)

  /** Set for the next record when the spool is full and the route drops rather than refuses. */
  private runUnrecorded = false;

  begin(record: StatementRecord): void {
    if (this.runUnrecorded) {
      record.unrecorded = true;
      this.runUnrecorded = false;
      return;
    }
    // In the spool before it is forwarded: onClientData writes it out before flushing upstream.
    if (this.ctx.spool && this.info) this.ctx.spool.begin(this.info, record);
  }

  /** The policy's decisions, before the record is begun and before anything is forwarded. */
  authorize(record: StatementRecord, statement: Prepared | undefined | null): void {
    const authorizer = this.authorizer;
    const route = this.ctx.route.name;
    const decisions =
      record.kind === 'query'
        ? authorizer.query(route, record.text, record.scanFlags ?? 0, record.receivedAt)
        : record.kind === 'execute'
          ? authorizer.execute(route, statement ?? undefined, record.receivedAt)
          : authorizer.functionCall(route);
    record.authz = decisions;
    for (let i = 0; i < decisions.length; i++) if (!decisions[i]!.allow) this.denied = record;
  }

  finish(record: StatementRecord): void {
    if (this.info) this.ctx.pipeline.statement(this.info, record);
  }

  // ------------------------------------------------------------------ client side

  private attachClient(socket: Socket): void {
    socket.on('data', this.onClientData);
    socket.on('error', this.onClientError);
    socket.on('close', this.onClientClose);
  }

  private detachClient(socket: Socket): void {
    socket.removeListener('data', this.onClientData);
    socket.removeListener('error', this.onClientError);
    socket.removeListener('close', this.onClientClose);
  }

  /** Records from this sequence number on are still in `toUpstream`, not yet sent. */
  private unsentFrom = 1;
  /** Messages of the current chunk forwarded so far, and the type of the last one. */
  private forwardedInChunk = 0;
  /** Whether the session could be refused and kept when the chunk(s) waiting for the spool began. */
  private chunkWasIdle = false;
  private lastForwardedType = 0;

  private readonly onClientData = (chunk: Buffer): void => {
    // Chunks that arrive while begin records wait for the spool's write join them (one unit).
    if (!this.relay.awaitingSpool) {
      this.unsentFrom = this.tracker.recordCount + 1;
      this.chunkWasIdle = refusalKeepsSession(this.tracker.idle, this.tracker.transactionStatus);
      this.forwardedInChunk = 0;
    }
    this.clientReader.push(chunk);
    // Nothing begun in this chunk may reach Postgres unless its begin record was written: the
    // spool writes once per event-loop turn for every session, then onSpoolWritten forwards.
    const spool = this.ctx.spool;
    if (spool && this.phase === 'ready' && (this.relay.awaitingSpool || this.tracker.recordCount >= this.unsentFrom)) {
      if (!this.relay.awaitingSpool) {
        this.relay.awaitingSpool = true;
        spool.writeThisTurn(this.onSpoolWritten);
      }
      return;
    }
    this.relay.afterClientRead(chunk.length);
  };

  private readonly onSpoolWritten = (written: boolean): void => {
    this.relay.awaitingSpool = false;
    if (this.phase !== 'ready') return;
    if (!written && !this.refuseUnwritten(this.chunkWasIdle)) return;
    this.relay.flushUpstream();
    this.relay.flushClient();
  };

  private readonly onClientError = (e: Error): void => {
    this.log.debug({ err: e }, 'client connection error');
    this.close({ ok: false, error: `client connection error: ${e.message}` });
  };

  private readonly onClientClose = (): void => {
    this.close(this.endReason);
  };

  private readonly clientHandler: MessageHandler = {
    onMessage: (type, buf, start, end) => {
      try {
        if (this.phase === 'ready') return this.onClientMessage(type, buf, start, end);
        // How the message was framed, not its type byte: a typed message may start with a 0 byte.
        if (this.clientReader.untyped) return this.onStartupPacket(buf, start, end);
        return this.onEarlyClientMessage(type, buf, start, end);
      } catch (e) {
        this.failClient(e);
        return Verdict.stop;
      }
    },
    onStreamed: () => {
      if (this.phase !== 'ready') this.fatalToClient('08P01', 'CopyData before the session started');
    },
    onFramingError: (reason) => {
      // Before a startup packet (bytes that are not one, an absurd length), Postgres only logs
      // and closes: a client that did not speak the protocol gets no protocol answer.
      if (this.phase === 'startup' && this.clientReader.untyped) this.closeSilently(reason);
      else this.fatalToClient('08P01', `invalid message from the client: ${reason}`);
    },
  };

  private onClientMessage(type: number, buf: Buffer, start: number, end: number): Verdict {
    if (type === F.query || type === F.execute || type === F.functionCall) {
      // The one place a statement may be stopped before it is tracked and forwarded.
      const refusal = this.admit();
      if (refusal) return this.refuse(refusal);
    }
    this.denied = null;
    this.tracker.onFrontend(type, buf, start, end);
    if (type === F.terminate) {
      this.endReason = { ok: true };
      this.clientTerminated = true;
    }
    this.forwardedInChunk += 1;
    this.lastForwardedType = type;
    if (this.denied !== null) {
      // Never forwarded: a placeholder that fails in Postgres goes in its place (denial-placeholder.ts).
      this.denied = null;
      if (type === F.execute) this.executePlaceholder ??= placeholderExecute();
      return this.forwardInstead(type === F.execute ? this.executePlaceholder! : PLACEHOLDER_QUERY);
    }
    return Verdict.forward;
  }

  private forwardInstead(message: Buffer): Verdict {
    if (this.replaying) this.relay.toUpstream.push(message);
    else this.clientReader.inject(message);
    return Verdict.drop;
  }

  /**
   * The error Postgres gave a placeholder, replaced by the denial it stands for. Only that error:
   * anything else (a FATAL shutdown) goes through as Postgres sent it.
   */
  private denialFor(buf: Buffer, start: number, end: number): Buffer | null {
    const record = this.tracker.headRecord;
    const decisions = record?.authz;
    if (!record || !decisions || record.results.length > 0) return null;
    let denial: AuthzDecision | null = null;
    for (let i = 0; i < decisions.length && denial === null; i++) if (!decisions[i]!.allow) denial = decisions[i]!;
    if (denial === null) return null;
    const e = decodeErrorFields(buf, start, end);
    const expected = record.kind === 'execute' ? PLACEHOLDER_EXECUTE_SQLSTATE : PLACEHOLDER_QUERY_SQLSTATE;
    if (e.severity !== 'ERROR' || e.code !== expected) return null;
    return denialResponse(denial);
  }

  /** A read session reporting default_transaction_read_only=off has left read-only mode: end it. */
  private leftReadOnly(buf: Buffer, start: number, end: number): boolean {
    const { name, value } = decodeParameterStatus(buf, start, end);
    if (name !== 'default_transaction_read_only' || value.toLowerCase() === 'on') return false;
    const record = this.tracker.headRecord;
    const message =
      `the database session left read-only mode (default_transaction_read_only=${value}) ` +
      `although ${this.ctx.route.name}'s access is read; byline ends it`;
    this.log.warn({ statement: record?.text ?? null }, message);
    this.fatalToClient('42501', message);
    return true;
  }

  /** Whether a statement may run: null to forward it, or why it is refused. */
  private admit(): Refusal | null {
    const spool = this.ctx.spool;
    if (!spool) return null;
    const refusal = backlogRefusal(spool);
    // onBacklogFull: drop is the explicit choice to keep running, unrecorded, when the spool cannot take more.
    if (refusal && this.ctx.onBacklogFull === 'drop') {
      this.runUnrecorded = true;
      return null;
    }
    return refusal;
  }

  /** Answers a statement that is not forwarded, keeping the session where the protocol allows. */
  private refuse(refusal: Refusal): Verdict {
    this.ctx.metrics.refused.inc({ reason: refusal.metric });
    if (refusalKeepsSession(this.tracker.idle, this.tracker.transactionStatus)) {
      this.relay.toClient.push(encodeError('ERROR', refusal.sqlstate, PREFIX + refusal.message));
      this.relay.toClient.push(encodeReadyForQuery('I'));
      return Verdict.drop;
    }
    this.fatalToClient(refusal.sqlstate, refusal.message);
    return Verdict.stop;
  }

  /**
   * The begin records of what was just framed could not be written: nothing of it is forwarded.
   * A lone Query on an idle session gets an ERROR (the tracker sees the same answer the client
   * does, so the statement is recorded as refused) and the session stays usable; anything else
   * closes the session, as a refusal mid-pipeline does. True when forwarding may go on.
   */
  private refuseUnwritten(wasIdle: boolean): boolean {
    const spool = this.ctx.spool;
    if (!spool || this.tracker.recordCount < this.unsentFrom) return true; // nothing begun in this chunk
    // drop: run anyway; the begin records stay buffered and are written once the disk allows.
    if (this.ctx.onBacklogFull === 'drop') return true;
    const refusal = spoolWriteRefusal(spool);
    this.ctx.metrics.refused.inc({ reason: refusal.metric });
    if (wasIdle && this.forwardedInChunk === 1 && this.lastForwardedType === F.query) {
      this.relay.toUpstream.clear();
      const error = encodeError('ERROR', refusal.sqlstate, PREFIX + refusal.message);
      const ready = encodeReadyForQuery('I');
      this.tracker.onBackend(B.errorResponse, error, 0, error.length);
      this.tracker.onBackend(B.readyForQuery, ready, 0, ready.length);
      this.relay.toClient.push(error);
      this.relay.toClient.push(ready);
      this.relay.flushClient();
      return false;
    }
    this.fatalToClient(refusal.sqlstate, refusal.message);
    return false;
  }

  private onStartupPacket(buf: Buffer, start: number, end: number): Verdict {
    const code = requestCode(buf, start, end);
    switch (startupRequest(code)) {
      case 'ssl':
        return this.onSslRequest();
      case 'gssenc':
        this.relay.toClient.push(SSL_NO);
        return Verdict.drop;
      case 'cancel':
        forwardCancel(this.ctx.cancels, decodeCancelRequest(buf, start, end), this.log);
        // As Postgres does: no answer either way, the connection just closes.
        this.client.end();
        return Verdict.stop;
      case 'unsupported':
        this.fatalToClient('0A000', `unsupported frontend protocol ${code >> 16}.${code & 0xffff}`);
        return Verdict.stop;
      case 'startup':
        break;
    }
    const startup = decodeStartup(buf, start, end);
    this.startupMessage = startup;
    this.clientReader.untyped = false;
    const credentials = this.ctx.route.credentials;
    if (credentials.mode === 'inject') {
      try {
        // Read per session, so a rotated Secret takes effect without a restart.
        this.injectedUser = credentials.username ?? readSecret(credentials.usernameFile!);
      } catch (e) {
        this.fatalToClient('08006', `cannot read the route's credential: ${(e as Error).message}`);
        return Verdict.stop;
      }
    }
    checkStartup(this.ctx.route, startup, this.injectedUser);
    this.tracker.applicationName = startup.params.get('application_name') ?? null;
    const clientAuth = this.ctx.clientAuth;
    if (clientAuth) {
      // The password is a person's token: it must never cross the network in clear.
      if (clientAuth.requireTls && !(this.client instanceof TLSSocket)) {
        this.fatalToClient(
          '28000',
          'this gateway accepts only TLS connections (the password is an OIDC token): connect with sslmode=verify-full or require',
        );
        return Verdict.stop;
      }
      this.phase = 'client-auth';
      this.relay.toClient.push(AUTHENTICATION_CLEARTEXT);
      return Verdict.drop;
    }
    if (credentials.mode === 'inject' && credentials.clientPasswordFile) {
      this.phase = 'client-auth';
      this.relay.toClient.push(AUTHENTICATION_CLEARTEXT);
      return Verdict.drop;
    }
    void this.connect();
    return Verdict.drop;
  }

  private onSslRequest(): Verdict {
    const tls = this.ctx.clientTls;
    if (!tls || this.client instanceof TLSSocket) {
      this.relay.toClient.push(SSL_NO);
      return Verdict.drop;
    }
    // Wait for the reader to stop, then answer and wrap the socket.
    queueMicrotask(() => {
      if (this.clientReader.leftoverAfterStop > 0) {
        // Data sent after SSLRequest but before the handshake would be trusted as if encrypted.
        this.fatalToClient('08P01', 'received unencrypted data after SSL request');
        return;
      }
      const raw = this.client;
      this.detachClient(raw);
      raw.write(SSL_YES);
      const secure = new TLSSocket(raw, { isServer: true, secureContext: tls });
      this.client = secure;
      this.relay.replaceClient(secure);
      this.clientReader.reset(true);
      this.attachClient(secure);
    });
    return Verdict.stop;
  }

  /** Before `ready`: the client's password (client-auth or passthrough), or messages to hold. */
  private onEarlyClientMessage(type: number, buf: Buffer, start: number, end: number): Verdict {
    if (type === F.password && this.phase === 'client-auth' && this.ctx.clientAuth) {
      if (this.authenticating) throw new ProtocolError('a second password message during authentication', '08P01');
      this.authenticating = true;
      void this.authenticateClient(this.ctx.clientAuth, readCString(buf, start + 5, end, 'PasswordMessage').value);
      return Verdict.drop;
    }
    if (type === F.password && this.phase === 'client-auth') {
      const presented = readCString(buf, start + 5, end, 'PasswordMessage').value;
      const credentials = this.ctx.route.credentials;
      const expected =
        credentials.mode === 'inject' && credentials.clientPasswordFile
          ? readSecret(credentials.clientPasswordFile)
          : '';
      if (!passwordMatches(presented, expected)) {
        const user = this.startupMessage?.params.get('user') ?? '';
        this.fatalToClient('28P01', `password authentication failed for user "${user}"`);
        return Verdict.stop;
      }
      void this.connect();
      return Verdict.drop;
    }
    if (type === F.password && this.ctx.route.credentials.mode === 'passthrough' && this.phase === 'upstream-auth') {
      return Verdict.forward;
    }
    // Messages sent ahead of Terminate still run first, as Postgres would run them.
    if (type === F.terminate && this.held.length === 0) {
      this.close({ ok: true });
      return Verdict.stop;
    }
    // Held until the session is ready, then tracked like any other message.
    this.held.push(Buffer.from(buf.subarray(start, end)));
    return Verdict.drop;
  }

  private readonly onAuthenticationTimeout = (): void => {
    this.authTimer = null;
    if (this.phase === 'ready' || this.phase === 'closed') return;
    const limit = `${this.ctx.authenticationTimeoutMs} ms`;
    // Like Postgres: a client that never sent a startup packet gets no answer, only a closed socket.
    if (this.phase === 'startup') this.closeSilently(`no startup packet within ${limit}`);
    else this.fatalToClient('08006', `startup and authentication did not finish within ${limit}`);
  };

  /** The gateway's per-connection identity: verified, then connect; refused, and recorded when it names someone. */
  private async authenticateClient(clientAuth: ClientAuthenticator, password: string): Promise<void> {
    let result: Awaited<ReturnType<ClientAuthenticator['authenticate']>>;
    try {
      result = await clientAuth.authenticate(password);
    } catch (e) {
      this.log.error({ err: e }, 'client authentication failed unexpectedly');
      this.fatalToClient('XX000', `internal error while authenticating: ${(e as Error).message}`);
      return;
    }
    if (this.phase === 'closed') {
      if (result.ok) result.lease.release();
      return;
    }
    if (!result.ok) {
      this.ctx.metrics.clientAuthRefused.inc({ sqlstate: result.sqlstate });
      if (result.identity) {
        this.clientIdentity = result.identity;
        this.info = this.sessionInfo();
      }
      this.fatalToClient(result.sqlstate, result.message);
      return;
    }
    this.clientIdentity = result.identity;
    this.authorizer = result.authorizer;
    this.endsAtMs = result.endsAtMs;
    this.lease = result.lease;
    result.lease.onRevoked(this.onAccessRevoked);
    this.log.info({ identity: result.identity.name }, 'client authenticated');
    void this.connect();
  }

  /** What let the client in was withdrawn (the gateway: its AgentIdentity is gone): the session ends now. */
  private readonly onAccessRevoked = (reason: string): void => {
    this.fatalToClient('28000', reason);
  };

  private readonly onSessionAge = (): void => {
    this.ageTimer = null;
    if (this.phase === 'closed') return;
    const left = (this.endsAtMs ?? 0) - Date.now();
    if (left > 1000) {
      this.scheduleSessionAge(); // it was beyond one timer's reach: wait again
      return;
    }
    const at = this.endsAtMs === null ? '' : ` at ${new Date(this.endsAtMs).toISOString()}`;
    this.fatalToClient(
      '28000',
      `the session reached its maximum age${at} (its sign-in has lapsed): sign in again and reconnect`,
    );
  };

  private scheduleSessionAge(): void {
    if (this.endsAtMs === null) return;
    // setTimeout holds at most 2^31-1 ms (about 24.8 days); a longer session waits again then.
    this.ageTimer = setTimeout(this.onSessionAge, Math.min(Math.max(0, this.endsAtMs - Date.now()), 2 ** 31 - 1));
    this.ageTimer.unref();
  }

  // ------------------------------------------------------------------ upstream side

  /** What every event of the session says about it, from the startup message and the route. */
  private sessionInfo(): SessionInfo {
    const route = this.ctx.route;
    const startup = this.startupMessage!;
    const overrides = upstreamOverrides(route, this.injectedUser);
    const user = overrides.get('user') ?? startup.params.get('user') ?? null;
    return {
      id: this.id,
      identity: this.clientIdentity ?? this.ctx.identity.current(),
      target: {
        database: overrides.get('database') ?? startup.params.get('database') ?? user,
        host: route.upstream.host,
        port: route.upstream.port,
        route: route.name,
      },
      client: this.client.remoteAddress ? `${this.client.remoteAddress}:${this.client.remotePort}` : null,
      dbUser: user,
      applicationName: startup.params.get('application_name') ?? null,
      nextSeq: 0,
    };
  }

  private async connect(): Promise<void> {
    this.phase = 'connecting';
    const route = this.ctx.route;
    const startup = this.startupMessage!;
    let password: string | null = null;
    if (route.credentials.mode === 'inject') {
      try {
        password = readSecret(route.credentials.passwordFile);
      } catch (e) {
        this.fatalToClient('08006', `cannot read the route's credential: ${(e as Error).message}`);
        return;
      }
    }
    const overrides = upstreamOverrides(route, this.injectedUser);
    // read is enforced by Postgres too. A startup parameter, not `options`: Postgres applies the
    // parameters after the options, so a client's own `-c default_transaction_read_only=off` (or
    // parameter of that name) cannot undo it, and the client's options go through untouched.
    if (this.authorizer.engine.accessOf(route.name) === 'read') {
      this.readOnly = true;
      overrides.set('default_transaction_read_only', 'on');
    }
    this.info = this.sessionInfo();
    let conn: Awaited<ReturnType<typeof connectUpstream>>;
    try {
      conn = await connectUpstream(route.upstream, { reuseReadBuffer: true });
    } catch (e) {
      this.fatalToClient('08006', (e as Error).message);
      return;
    }
    if ((this.phase as Phase) === 'closed') {
      conn.socket.destroy();
      return;
    }
    const socket = conn.socket;
    this.upstream = socket;
    this.phase = 'upstream-auth';
    this.relay.attachUpstream(socket, this.ctx.durability === 'strict' ? this.ctx.spool : null);
    const authenticator =
      password !== null ? new InjectedAuthenticator(this.injectedUser!, password, conn.channelBinding) : null;
    this.login = new UpstreamLogin(authenticator, this.ctx.cancels, route.upstream, this.loginEvents);
    this.upstreamReader = new MessageReader(this.upstreamHandler, this.relay.toClient, this.ctx.maxMessageBytes, {
      streamedTypes: 'Dd',
    });
    this.upstreamReads = conn.reads;
    if (conn.reads) conn.reads.attach(this.onUpstreamData);
    else socket.on('data', this.onUpstreamData);
    socket.on('error', this.onUpstreamError);
    socket.on('close', this.onUpstreamClose);
    // A plaintext fallback after SSLRequest comes back paused; a 'data' listener alone does not resume it.
    socket.resume();
    socket.write(encodeStartup(startup.protocol, startup.pairs, overrides));
    // Anything the client sent meanwhile (a passthrough password) can go now.
    this.relay.flushUpstream();
  }

  private readonly loginEvents = {
    inject: (buf: Buffer) => this.upstreamReader!.inject(buf),
    reply: (buf: Buffer) => this.relay.toUpstream.push(buf),
    parameterStatus: (buf: Buffer, start: number, end: number) => {
      const { name, value } = decodeParameterStatus(buf, start, end);
      if (this.readOnly && name === 'default_transaction_read_only' && value.toLowerCase() !== 'on') {
        // A role or database setting cannot outrank a startup parameter; if it ever did, no session.
        this.fatalToClient(
          '42501',
          `the database session did not start read-only, though ${this.ctx.route.name}'s access is read`,
        );
        return;
      }
      this.tracker.onBackend(B.parameterStatus, buf, start, end);
      if (name === 'application_name' && this.info) this.info.applicationName = value || null;
    },
    refused: (e: { code: string; message: string }) => {
      this.endReason = { ok: false, sqlstate: e.code || null, error: e.message };
      if (this.info && !this.started) {
        this.started = true;
        this.ctx.pipeline.session(this.info, 'session.start', this.endReason);
      }
    },
    failed: (sqlstate: string, message: string) => this.fatalToClient(sqlstate, message),
    // Not shown to the tracker: the ReadyForQuery answers the startup, not a statement.
    ready: () => this.becomeReady(),
  };

  private readonly onUpstreamData = (chunk: Buffer): void => {
    this.upstreamReader!.push(chunk);
    this.relay.afterUpstreamRead(this.phase === 'ready', chunk.length);
    // Bytes of this read still to be written keep its buffer from the next read (read-buffer.ts).
    if (this.upstreamReads !== null && this.relay.holdsClientBytes) this.upstreamReads.pin();
  };

  private readonly onDurable = (): void => {
    if (this.closeWhenDurable) this.close(this.endReason);
  };

  private readonly onUpstreamError = (e: Error): void => {
    if (this.phase === 'closed') {
      this.log.debug({ err: e }, 'database connection error after the session ended');
      return;
    }
    this.log.warn({ err: e }, 'database connection error');
    this.endReason = { ok: false, sqlstate: '08006', error: `database connection error: ${e.message}` };
  };

  private readonly onUpstreamClose = (): void => {
    if (this.phase === 'closed') return;
    // After the client's own Terminate, Postgres closing is the normal end, not news.
    if (this.endReason.ok && this.phase === 'ready' && !this.clientTerminated) {
      this.endReason = { ok: true, error: 'the database server closed the connection' };
    }
    if (this.relay.holding) {
      this.closeWhenDurable = true;
      return;
    }
    this.relay.finalWrite(null);
    this.close(this.endReason);
  };

  private readonly upstreamHandler: MessageHandler = {
    onMessage: (type, buf, start, end) => {
      try {
        // Postgres may still answer after the client left (a query running when it vanished):
        // the session is over and recorded, so none of it may start or end it again.
        if (this.phase === 'closed') return Verdict.stop;
        if (this.phase === 'ready') {
          if (type === B.errorResponse) {
            const denial = this.denialFor(buf, start, end);
            if (denial !== null) {
              this.tracker.onBackend(type, denial, 0, denial.length);
              this.upstreamReader!.inject(denial);
              return Verdict.drop;
            }
            // A FATAL (pg_terminate_backend's 57P01, a shutdown) is why the session ends.
            this.noteFatal(buf, start, end);
          } else if (type === B.parameterStatus && this.readOnly && this.leftReadOnly(buf, start, end)) {
            return Verdict.stop;
          }
          const problem = this.tracker.onBackend(type, buf, start, end);
          if (problem) this.log.warn({ problem }, 'statement tracking out of step; results may be unknown');
          return Verdict.forward;
        }
        return this.login!.onMessage(type, buf, start, end);
      } catch (e) {
        this.log.error({ err: e }, 'cannot handle a message from the database server');
        this.fatalToClient('08P01', `invalid message from the database server: ${(e as Error).message}`);
        return Verdict.stop;
      }
    },
    onStreamed: (type) => this.tracker.onBackendStreamed(type),
    onFramingError: (reason) => this.fatalToClient('08P01', `invalid message from the database server: ${reason}`),
  };

  private noteFatal(buf: Buffer, start: number, end: number): void {
    const e = decodeErrorFields(buf, start, end);
    if (e.severity === 'FATAL' || e.severity === 'PANIC') {
      this.endReason = { ok: false, sqlstate: e.code || null, error: e.message };
    }
  }

  private becomeReady(): void {
    this.phase = 'ready';
    this.started = true;
    this.clearAuthTimer();
    this.scheduleSessionAge();
    this.ctx.metrics.sessions.inc();
    this.ctx.spool?.sessionStarted(this.info!);
    this.ctx.pipeline.session(this.info!, 'session.start', { ok: true });
    this.log.debug('session ready');
    // Replay what the client sent early, in order, through the same path as everything else.
    const held = this.held;
    if (held.length === 0) return;
    this.held = [];
    this.unsentFrom = this.tracker.recordCount + 1;
    for (const message of held) {
      let verdict: Verdict;
      this.replaying = true;
      try {
        verdict = this.onClientMessage(message[0]!, message, 0, message.length);
      } catch (e) {
        this.failClient(e);
        return;
      } finally {
        this.replaying = false;
      }
      if (verdict === Verdict.forward) this.relay.toUpstream.push(message);
      if (this.phase !== 'ready') return;
    }
    // Their begin records reach the spool before they are flushed upstream (after this read).
    const spool = this.ctx.spool;
    if (spool && !spool.flushPending() && this.tracker.recordCount >= this.unsentFrom) {
      const refusal = spoolWriteRefusal(spool);
      this.ctx.metrics.refused.inc({ reason: refusal.metric });
      this.fatalToClient(refusal.sqlstate, refusal.message);
    }
  }

  // ------------------------------------------------------------------ closing

  private failClient(e: unknown): void {
    if (e instanceof ProtocolError) {
      this.ctx.metrics.protocolErrors.inc();
      this.fatalToClient(e.sqlstate, e.message);
    } else {
      this.log.error({ err: e }, 'unexpected error handling a client message');
      this.fatalToClient('XX000', `internal error: ${(e as Error).message}`);
    }
  }

  /** Answers the client with a FATAL error, closes the connection and ends the session. */
  private fatalToClient(sqlstate: string, message: string): void {
    if (this.phase === 'closed') return;
    this.log.info({ sqlstate, reason: message }, 'closing client connection');
    this.clientReader.stop();
    this.upstreamReader?.stop();
    if (!this.relay.toUpstream.empty) {
      // Messages framed before the bad one never leave: Postgres runs none of them.
      this.relay.toUpstream.clear();
      this.tracker.abandonFrom(this.unsentFrom, `not executed: ${message}`);
    }
    this.relay.finalWrite(encodeError('FATAL', sqlstate, PREFIX + message));
    this.client.end();
    this.endReason = { ok: false, sqlstate, error: message };
    if (this.info && !this.started) {
      this.started = true;
      this.ctx.pipeline.session(this.info, 'session.start', this.endReason);
    }
    this.close(this.endReason);
  }

  /** Closes without a word, as Postgres does with a client that never spoke the protocol. */
  private closeSilently(reason: string): void {
    this.log.info({ reason }, 'closing client connection before its startup packet');
    this.clientReader.stop();
    this.relay.toClient.clear();
    this.close({ ok: false, error: reason });
  }

  private clearAuthTimer(): void {
    if (this.authTimer) clearTimeout(this.authTimer);
    this.authTimer = null;
    if (this.ageTimer && this.phase === 'closed') {
      clearTimeout(this.ageTimer);
      this.ageTimer = null;
    }
  }

  close(reason: EndReason): void {
    if (this.phase === 'closed') return;
    const wasReady = this.phase === 'ready';
    this.phase = 'closed';
    this.relay.close();
    this.clearAuthTimer();
    this.lease?.release();
    this.lease = null;
    if (wasReady) this.ctx.metrics.sessions.dec();
    if (this.login?.issuedKey) this.ctx.cancels.release(this.login.issuedKey);
    const upstream = this.upstream;
    if (upstream && !upstream.destroyed) {
      // Tell Postgres the client is gone, so an open transaction is rolled back at once.
      if (wasReady && this.clientTerminated) upstream.end();
      else if (wasReady) upstream.end(TERMINATE);
      else upstream.destroy();
    }
    if (!this.client.destroyed) this.client.end();
    this.tracker.close();
    // SET application_name during the session shows in session.end as in the statements before it.
    if (this.info && wasReady) this.info.applicationName = this.tracker.applicationName;
    if (this.info && this.started) this.ctx.pipeline.session(this.info, 'session.end', reason);
    this.ctx.onClosed?.(this);
  }
}

/** Secrets are read when a session starts, so a rotated Secret takes effect without a restart. */
function readSecret(path: string): string {
  return readFileSync(path, 'utf8').replace(/\r?\n$/, '');
}
