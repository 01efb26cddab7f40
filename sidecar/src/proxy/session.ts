/**
 * One client connection through the sidecar. The I/O edge around the pure parts (framing,
 * statement tracking, authentication): it owns the two sockets and moves bytes between them.
 *
 * Phases:
 *   startup        untyped messages: SSLRequest (→ TLS), GSSENCRequest (→ N), CancelRequest, StartupMessage
 *   client-auth    (inject mode with clientPasswordFile) waiting for the client's password
 *   connecting     opening the upstream connection and negotiating TLS with Postgres
 *   upstream-auth  inject: the sidecar answers Postgres's challenge; passthrough: relayed
 *   ready          every frontend message is tracked then forwarded; every backend message forwarded then tracked
 *   closed
 * Client messages that arrive before `ready` are held and replayed through the tracker, so none
 * reaches Postgres unrecorded.
 */
import { randomUUID, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { type SecureContext, TLSSocket } from 'node:tls';
import type { AuditIdentity, DurabilityName, ParamsModeName, RouteConfig } from '@byline/api';
import type { Logger } from 'pino';
import type { SessionInfo } from '../audit/event-builder.js';
import type { AuditPipeline } from '../audit/pipeline.js';
import type { RecordSink, StatementRecord } from '../capture/records.js';
import { StatementTracker } from '../capture/statement-tracker.js';
import type { SidecarMetrics } from '../metrics.js';
import { type MessageHandler, MessageReader, Verdict } from '../protocol/frame-reader.js';
import {
  AUTHENTICATION_CLEARTEXT,
  AUTHENTICATION_OK,
  authenticationCode,
  B,
  decodeBackendKeyData,
  decodeCancelRequest,
  decodeErrorFields,
  decodeParameterStatus,
  decodeStartup,
  encodeBackendKeyData,
  encodeCancelRequest,
  encodeError,
  encodeReadyForQuery,
  encodeStartup,
  F,
  ProtocolError,
  REQUEST,
  readCString,
  requestCode,
  SSL_NO,
  SSL_YES,
  type StartupMessage,
  TERMINATE,
} from '../protocol/messages.js';
import type { Spool } from '../spool/spool.js';
import type { CancelRegistry } from './cancel-registry.js';
import { Outbox } from './outbox.js';
import { connectUpstream } from './upstream.js';
import { InjectedAuthenticator } from './upstream-auth.js';

export interface SessionContext {
  route: RouteConfig;
  /** Asked once per session, when it connects upstream: a rotated token's identity applies to new sessions. */
  identity: { current(): AuditIdentity };
  pipeline: AuditPipeline;
  cancels: CancelRegistry;
  logger: Logger;
  maxMessageBytes: number;
  paramsMode: ParamsModeName;
  clientTls: SecureContext | null;
  metrics: SidecarMetrics;
  /** The durable spool; statements are recorded in it before they are forwarded. */
  spool: Spool | null;
  durability: DurabilityName;
  onBacklogFull: 'reject' | 'drop';
  /** Called once when the session is over. */
  onClosed?: (session: ProxySession) => void;
}

type Phase = 'startup' | 'client-auth' | 'connecting' | 'upstream-auth' | 'ready' | 'closed';

const PREFIX = 'byline: ';

export class ProxySession implements RecordSink {
  readonly id = randomUUID();
  private phase: Phase = 'startup';
  private client: Socket;
  private upstream: Socket | null = null;
  private readonly clientReader: MessageReader;
  private upstreamReader: MessageReader | null = null;
  private readonly toUpstream = new Outbox();
  private readonly toClient = new Outbox();
  private readonly tracker: StatementTracker;
  private readonly log: Logger;
  private startupMessage: StartupMessage | null = null;
  private authenticator: InjectedAuthenticator | null = null;
  private held: Buffer[] = [];
  private issuedPid: number | null = null;
  private info: SessionInfo | null = null;
  private started = false;
  private endReason: { ok: boolean; sqlstate?: string | null; error?: string | null } = { ok: true };
  /** The client's own Terminate went upstream; a second one would make Postgres reset the connection. */
  private clientTerminated = false;

  constructor(
    socket: Socket,
    private readonly ctx: SessionContext,
  ) {
    this.client = socket;
    this.log = ctx.logger.child({ session: this.id, route: ctx.route.name });
    this.tracker = new StatementTracker(this, { captureParamValues: ctx.paramsMode === 'full' });
    this.clientReader = new MessageReader(this.clientHandler, this.toUpstream, ctx.maxMessageBytes, {
      untyped: true,
      streamedTypes: 'd',
    });
    socket.setNoDelay(true);
    this.attachClient(socket);
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

  private readonly onClientData = (chunk: Buffer): void => {
    this.unsentFrom = this.tracker.recordCount + 1;
    this.clientReader.push(chunk);
    this.ctx.spool?.flushPending();
    this.flushUpstream();
    this.flushClient();
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
        if (this.clientReader.untyped) return this.onStartupPhase(buf, start, end);
        return this.onEarlyClientMessage(type, buf, start, end);
      } catch (e) {
        this.failClient(e);
        return Verdict.stop;
      }
    },
    onStreamed: () => {
      if (this.phase !== 'ready') this.fatalToClient('08P01', 'CopyData before the session started');
    },
    onFramingError: (reason) => this.fatalToClient('08P01', `invalid message from the client: ${reason}`),
  };

  private onClientMessage(type: number, buf: Buffer, start: number, end: number): Verdict {
    const spool = this.ctx.spool;
    if (spool && !spool.accepting && (type === F.query || type === F.execute || type === F.functionCall)) {
      if (this.ctx.onBacklogFull === 'drop') {
        this.runUnrecorded = true;
      } else {
        return this.refuse(spool.refusalReason);
      }
    }
    this.tracker.onFrontend(type, buf, start, end);
    if (type === F.terminate) {
      this.endReason = { ok: true };
      this.clientTerminated = true;
    }
    return Verdict.forward;
  }

  /**
   * Refuses a statement the spool cannot take (fail closed). An idle session gets an ERROR and
   * stays usable; in the middle of a pipeline or a transaction nothing short of closing the
   * session keeps client and server in agreement, so it gets a FATAL and Postgres rolls back.
   */
  private refuse(reason: string): Verdict {
    this.ctx.metrics.refused.inc({ reason: 'backlog' });
    const message = `${PREFIX}statement refused: ${reason}`;
    if (this.tracker.idle && this.tracker.transactionStatus === 'I') {
      this.toClient.push(encodeError('ERROR', '53400', message));
      this.toClient.push(encodeReadyForQuery('I'));
      return Verdict.drop;
    }
    this.fatalToClient('53400', `statement refused: ${reason}`);
    return Verdict.stop;
  }

  private onStartupPhase(buf: Buffer, start: number, end: number): Verdict {
    const code = requestCode(buf, start, end);
    if (code === REQUEST.ssl) return this.onSslRequest();
    if (code === REQUEST.gssenc) {
      this.toClient.push(SSL_NO);
      return Verdict.drop;
    }
    if (code === REQUEST.cancel) {
      this.forwardCancel(decodeCancelRequest(buf, start, end));
      return Verdict.stop;
    }
    if (code >> 16 !== 3) {
      this.fatalToClient('0A000', `unsupported frontend protocol ${code >> 16}.${code & 0xffff}`);
      return Verdict.stop;
    }
    this.startupMessage = decodeStartup(buf, start, end);
    this.clientReader.untyped = false;
    this.onStartup(this.startupMessage);
    return Verdict.drop;
  }

  private onSslRequest(): Verdict {
    const tls = this.ctx.clientTls;
    if (!tls || this.client instanceof TLSSocket) {
      this.toClient.push(SSL_NO);
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
      this.clientReader.reset(true);
      this.attachClient(secure);
    });
    return Verdict.stop;
  }

  private onStartup(startup: StartupMessage): void {
    const route = this.ctx.route;
    const params = startup.params;
    if (params.has('replication')) {
      throw new ProtocolError('replication connections cannot go through the Byline sidecar', '0A000');
    }
    const user = params.get('user');
    if (!user) throw new ProtocolError('no PostgreSQL user name specified in startup packet', '28000');
    const requested = params.get('database');
    const served = route.upstream.database;
    if (served && requested && requested !== served && requested !== user) {
      throw new ProtocolError(
        `database "${requested}" is not served by route "${route.name}" (it serves "${served}")`,
        '3D000',
      );
    }
    this.tracker.applicationName = params.get('application_name') ?? null;
    if (route.credentials.mode === 'inject' && route.credentials.clientPasswordFile) {
      this.phase = 'client-auth';
      this.toClient.push(AUTHENTICATION_CLEARTEXT);
      return;
    }
    void this.connect();
  }

  /** Before `ready`: the client's password (client-auth or passthrough), or messages to hold. */
  private onEarlyClientMessage(type: number, buf: Buffer, start: number, end: number): Verdict {
    if (type === F.password && this.phase === 'client-auth') {
      const presented = readCString(buf, start + 5, end, 'PasswordMessage').value;
      const credentials = this.ctx.route.credentials;
      const expected =
        credentials.mode === 'inject' && credentials.clientPasswordFile
          ? readSecret(credentials.clientPasswordFile)
          : '';
      const a = Buffer.from(presented);
      const b = Buffer.from(expected);
      if (a.length !== b.length || !timingSafeEqual(a, b)) {
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

  // ------------------------------------------------------------------ upstream side

  private async connect(): Promise<void> {
    this.phase = 'connecting';
    const route = this.ctx.route;
    const startup = this.startupMessage!;
    const params = new Map(startup.params);
    if (route.upstream.database) params.set('database', route.upstream.database);
    let password: string | null = null;
    if (route.credentials.mode === 'inject') {
      try {
        // Both are read per session, so a rotated Secret takes effect without a restart.
        params.set('user', route.credentials.username ?? readSecret(route.credentials.usernameFile!));
        password = readSecret(route.credentials.passwordFile);
      } catch (e) {
        this.fatalToClient('08006', `cannot read the route's credential: ${(e as Error).message}`);
        return;
      }
    }
    this.info = {
      id: this.id,
      identity: this.ctx.identity.current(),
      target: {
        database: params.get('database') ?? params.get('user') ?? null,
        host: route.upstream.host,
        port: route.upstream.port,
        route: route.name,
      },
      client: this.client.remoteAddress ? `${this.client.remoteAddress}:${this.client.remotePort}` : null,
      dbUser: params.get('user') ?? null,
      applicationName: params.get('application_name') ?? null,
      nextSeq: 0,
    };
    let conn: Awaited<ReturnType<typeof connectUpstream>>;
    try {
      conn = await connectUpstream(route.upstream);
    } catch (e) {
      this.fatalToClient('08006', (e as Error).message);
      return;
    }
    if ((this.phase as Phase) === 'closed') {
      conn.socket.destroy();
      return;
    }
    this.upstream = conn.socket;
    this.phase = 'upstream-auth';
    if (password !== null) {
      this.authenticator = new InjectedAuthenticator(params.get('user')!, password, conn.channelBinding);
    }
    this.upstreamReader = new MessageReader(this.upstreamHandler, this.toClient, this.ctx.maxMessageBytes, {
      streamedTypes: 'Dd',
    });
    conn.socket.on('data', this.onUpstreamData);
    conn.socket.on('error', this.onUpstreamError);
    conn.socket.on('close', this.onUpstreamClose);
    // A plaintext fallback after SSLRequest comes back paused; a 'data' listener alone does not resume it.
    conn.socket.resume();
    conn.socket.write(encodeStartup(startup.protocol, params));
    // Anything the client sent meanwhile (a passthrough password) can go now.
    this.flushUpstream();
  }

  private readonly onUpstreamData = (chunk: Buffer): void => {
    this.upstreamReader!.push(chunk);
    const spool = this.ctx.spool;
    if (spool && this.ctx.durability === 'strict' && !this.toClient.empty && this.phase === 'ready') {
      // Strict: results wait until the statements they answer are fsynced (one fsync for all waiting).
      const upstream = this.upstream!;
      upstream.pause();
      spool.whenDurable(() => {
        upstream.resume();
        this.flushClient();
      });
    } else {
      this.flushClient();
    }
    this.flushUpstream();
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
    this.toClient.flushTo(this.client);
    this.close(this.endReason);
  };

  private readonly upstreamHandler: MessageHandler = {
    onMessage: (type, buf, start, end) => {
      try {
        // Postgres may still answer after the client left (a query running when it vanished):
        // the session is over and recorded, so none of it may start or end it again.
        if (this.phase === 'closed') return Verdict.stop;
        if (this.phase === 'ready') {
          // A FATAL (pg_terminate_backend's 57P01, a shutdown) is why the session ends.
          if (type === B.errorResponse) this.noteFatal(buf, start, end);
          const problem = this.tracker.onBackend(type, buf, start, end);
          if (problem) this.log.warn({ problem }, 'statement tracking out of step; results may be unknown');
          return Verdict.forward;
        }
        return this.onUpstreamStartup(type, buf, start, end);
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

  private onUpstreamStartup(type: number, buf: Buffer, start: number, end: number): Verdict {
    switch (type) {
      case B.authentication:
        return this.onUpstreamAuthentication(buf, start, end);
      case B.backendKeyData: {
        const upstreamKey = decodeBackendKeyData(buf, start, end);
        const issued = this.ctx.cancels.issue({ routeName: this.ctx.route.name, upstream: upstreamKey });
        this.issuedPid = issued.pid;
        this.upstreamReader!.inject(encodeBackendKeyData(issued));
        return Verdict.drop;
      }
      case B.parameterStatus: {
        const { name, value } = decodeParameterStatus(buf, start, end);
        this.tracker.onBackend(type, buf, start, end);
        if (name === 'application_name' && this.info) this.info.applicationName = value || null;
        return Verdict.forward;
      }
      case B.readyForQuery:
        // Not shown to the tracker: it answers the startup, not a statement.
        this.becomeReady();
        return Verdict.forward;
      case B.errorResponse: {
        const e = decodeErrorFields(buf, start, end);
        this.endReason = { ok: false, sqlstate: e.code || null, error: e.message };
        if (this.info && !this.started) {
          this.started = true;
          this.ctx.pipeline.session(this.info, 'session.start', this.endReason);
        }
        return Verdict.forward;
      }
      default:
        // NegotiateProtocolVersion, notices: the client needs them as they are.
        return Verdict.forward;
    }
  }

  private onUpstreamAuthentication(buf: Buffer, start: number, end: number): Verdict {
    const auth = this.authenticator;
    if (!auth) {
      // passthrough: the client answers; but SCRAM channel binding cannot cross the proxy (the
      // client would bind to the sidecar's TLS, Postgres to its own), so -PLUS is not offered.
      if (authenticationCode(buf, start, end) === 10) {
        this.upstreamReader!.inject(withoutPlus(buf, start, end));
        return Verdict.drop;
      }
      return Verdict.forward;
    }
    const step = auth.step(buf, start, end);
    if ('reply' in step) {
      this.toUpstream.push(step.reply);
      return Verdict.drop;
    }
    if ('error' in step) {
      this.fatalToClient('28000', `cannot log in to the database server: ${step.error}`);
      return Verdict.stop;
    }
    if ('ok' in step) {
      this.upstreamReader!.inject(AUTHENTICATION_OK);
      return Verdict.drop;
    }
    return Verdict.drop; // SASLFinal verified; AuthenticationOk follows
  }

  private becomeReady(): void {
    this.phase = 'ready';
    this.started = true;
    this.ctx.metrics.sessions.inc();
    this.ctx.spool?.sessionStarted(this.info!);
    this.ctx.pipeline.session(this.info!, 'session.start', { ok: true });
    this.log.debug('session ready');
    // Replay what the client sent early, in order, through the same path as everything else.
    const held = this.held;
    this.held = [];
    for (const message of held) {
      let verdict: Verdict;
      try {
        verdict = this.onClientMessage(message[0]!, message, 0, message.length);
      } catch (e) {
        this.failClient(e);
        return;
      }
      if (verdict === Verdict.forward) this.toUpstream.push(message);
    }
  }

  // ------------------------------------------------------------------ cancel

  private forwardCancel(presented: { pid: number; key: Buffer }): void {
    const target = this.ctx.cancels.resolve(presented);
    // As Postgres does: no answer either way, the connection just closes.
    this.client.end();
    if (!target) {
      this.log.info({ pid: presented.pid }, 'cancel request with an unknown key ignored');
      return;
    }
    connectUpstream({ ...this.ctx.route.upstream })
      .then(({ socket }) => {
        socket.on('error', () => {});
        socket.end(encodeCancelRequest(target.upstream));
      })
      .catch((e) => this.log.warn({ err: e }, 'could not forward a cancel request'));
  }

  // ------------------------------------------------------------------ writing and closing

  private flushUpstream(): void {
    const upstream = this.upstream;
    if (!upstream || this.toUpstream.empty || this.phase === 'closed') return;
    if (!this.toUpstream.flushTo(upstream)) {
      // Backpressure: stop reading the client until Postgres has taken what it was sent.
      this.client.pause();
      upstream.once('drain', () => this.client.resume());
    }
  }

  private flushClient(): void {
    // Once closed, the client socket has been ended: a late write would fail and destroy it,
    // resetting the connection so that the client may never read the FATAL error it was sent.
    if (this.toClient.empty || this.phase === 'closed') return;
    if (!this.toClient.flushTo(this.client) && this.upstream) {
      const upstream = this.upstream;
      upstream.pause();
      this.client.once('drain', () => upstream.resume());
    }
  }

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
    if (!this.toUpstream.empty) {
      // Messages framed before the bad one never leave: Postgres runs none of them.
      this.toUpstream.clear();
      this.tracker.abandonFrom(this.unsentFrom, `not executed: ${message}`);
    }
    this.toClient.push(encodeError('FATAL', sqlstate, PREFIX + message));
    this.toClient.flushTo(this.client);
    this.client.end();
    this.endReason = { ok: false, sqlstate, error: message };
    if (this.info && !this.started) {
      this.started = true;
      this.ctx.pipeline.session(this.info, 'session.start', this.endReason);
    }
    this.close(this.endReason);
  }

  close(reason: { ok: boolean; sqlstate?: string | null; error?: string | null }): void {
    if (this.phase === 'closed') return;
    const wasReady = this.phase === 'ready';
    this.phase = 'closed';
    if (wasReady) this.ctx.metrics.sessions.dec();
    if (this.issuedPid !== null) this.ctx.cancels.release(this.issuedPid);
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

/** Secrets are read when a session starts, so a rotated Secret takes effect without a restart. */
function readSecret(path: string): string {
  return readFileSync(path, 'utf8').replace(/\r?\n$/, '');
}
