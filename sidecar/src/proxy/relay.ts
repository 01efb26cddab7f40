/**
 * Moves bytes between the two sockets of a session and decides when each side is read: the two
 * outboxes, backpressure in both directions, and strict durability's hold on results. Every
 * pause is recorded with its reason (flow-control.ts), so one party's resume cannot undo
 * another's pause: a client `drain` cannot resume an upstream that is waiting for an fsync.
 *
 * Writes: what one read produced goes out in one write. A bulk read (a large result, COPY data)
 * is not written at once: libuv reads a socket again in the same event-loop turn while reads
 * fill its buffer, so everything read in that turn leaves as one writev at the end of it (or
 * with the next small read, which ends the run, whichever comes first). A small read (every
 * answer of an OLTP statement) is written at once: deferring it would add a loop phase of
 * latency and save no write.
 */
import type { Socket } from 'node:net';
import type { Spool } from '../spool/spool.js';
import { DurabilityGate } from './durability-gate.js';
import { PauseReason, ReadGate } from './flow-control.js';
import { Outbox } from './outbox.js';

/**
 * A read at least this large is bulk data, likely followed by more in the same turn (Node reads
 * up to 64 KiB at a time and libuv reads again at once when a read filled it).
 */
export const BULK_READ_BYTES = 16 * 1024;
/**
 * At most this much waits for the end of the turn per direction: beyond it the outbox is written
 * at once, so that a slow reader's backpressure stops the reads as soon as it did without deferral
 * (libuv may read 32 × 64 KiB from one socket in one turn; many sessions would hold that much each).
 */
export const MAX_DEFERRED_BYTES = 256 * 1024;

export class Relay {
  readonly toUpstream = new Outbox();
  readonly toClient = new Outbox();
  private client: Socket;
  private upstream: Socket | null = null;
  /** Why the client is not being read. */
  private readonly clientReading: ReadGate;
  /** Why Postgres is not being read (once connected). */
  private upstreamReading: ReadGate | null = null;
  private durabilityGate: DurabilityGate | null = null;
  private awaitingClientDrain = false;
  private awaitingUpstreamDrain = false;
  private closed = false;
  /** Bulk reads wait in the outboxes for the write at the end of this event-loop turn. */
  private flushScheduled = false;
  /**
   * What is in `toUpstream` includes statements whose begin records wait for the spool's write
   * at the end of this event-loop turn: nothing goes to Postgres until then.
   */
  awaitingSpool = false;

  /** `onDurable` runs after results held for an fsync have been written to the client. */
  constructor(
    client: Socket,
    private readonly onDurable: () => void,
  ) {
    this.client = client;
    this.clientReading = new ReadGate(client);
  }

  /** TLS took over the client connection. */
  replaceClient(socket: Socket): void {
    this.client = socket;
    this.clientReading.retarget(socket);
  }

  /** Postgres is connected; with `strictSpool`, results wait for their begin records' fsync. */
  attachUpstream(socket: Socket, strictSpool: Spool | null): void {
    this.upstream = socket;
    this.upstreamReading = new ReadGate(socket);
    if (strictSpool) this.durabilityGate = new DurabilityGate(strictSpool, this.upstreamReading, this.released);
  }

  /**
   * After a read of `bytes` from Postgres: pass results on, or (strict, in a session) hold them
   * until durable. Bulk reads are written once, at the end of the turn.
   */
  afterUpstreamRead(inSession: boolean, bytes: number): void {
    if (this.durabilityGate && inSession && !this.toClient.empty) {
      this.durabilityGate.hold();
      this.flushUpstream();
    } else if (bytes >= BULK_READ_BYTES && this.toClient.bytes < MAX_DEFERRED_BYTES) this.flushAtEndOfTurn();
    else {
      this.flushClient();
      this.flushUpstream();
    }
  }

  /** After a read of `bytes` from the client whose messages may all go now (nothing awaits the spool). */
  afterClientRead(bytes: number): void {
    if (bytes >= BULK_READ_BYTES && this.toUpstream.bytes < MAX_DEFERRED_BYTES) this.flushAtEndOfTurn();
    else {
      this.flushUpstream();
      this.flushClient();
    }
  }

  private flushAtEndOfTurn(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(this.flushDeferred);
  }

  private readonly flushDeferred = (): void => {
    this.flushScheduled = false;
    this.flushUpstream();
    this.flushClient();
  };

  /**
   * Bytes for the client are still referenced: in the outbox (deferred, held for an fsync,
   * backpressure) or taken by the socket but not yet by the kernel.
   */
  get holdsClientBytes(): boolean {
    return !this.toClient.empty || this.client.writableLength > 0;
  }

  /** Results are waiting for an fsync: nothing may be written to the client before it completes. */
  get holding(): boolean {
    return this.durabilityGate?.holding ?? false;
  }

  flushUpstream(): void {
    const upstream = this.upstream;
    if (!upstream || this.toUpstream.empty || this.closed || this.awaitingSpool) return;
    if (!this.toUpstream.flushTo(upstream) && !this.awaitingUpstreamDrain) {
      // Backpressure: stop reading the client until Postgres has taken what it was sent.
      this.awaitingUpstreamDrain = true;
      this.clientReading.pause(PauseReason.backpressure);
      upstream.once('drain', this.onUpstreamDrain);
    }
  }

  flushClient(): void {
    // Once closed, the client socket has been ended: a late write would fail and destroy it,
    // resetting the connection so that the client may never read the FATAL error it was sent.
    if (this.toClient.empty || this.closed) return;
    // Results waiting for their begin records' fsync go when it completes, not with the next read.
    if (this.holding) return;
    if (!this.toClient.flushTo(this.client) && this.upstreamReading && !this.awaitingClientDrain) {
      this.awaitingClientDrain = true;
      this.upstreamReading.pause(PauseReason.backpressure);
      this.client.once('drain', this.onClientDrain);
    }
  }

  /**
   * Last words to the client before the session closes (a FATAL, or what Postgres said before it
   * closed). Results still waiting for their fsync are dropped rather than shown undurable.
   */
  finalWrite(message: Buffer | null): void {
    if (this.holding) this.toClient.clear();
    if (message) this.toClient.push(message);
    this.toClient.flushTo(this.client);
  }

  close(): void {
    this.closed = true;
  }

  private readonly onUpstreamDrain = (): void => {
    this.awaitingUpstreamDrain = false;
    this.clientReading.release(PauseReason.backpressure);
  };

  /** Releases only the backpressure reason: an upstream paused for durability stays paused. */
  private readonly onClientDrain = (): void => {
    this.awaitingClientDrain = false;
    this.upstreamReading?.release(PauseReason.backpressure);
  };

  private readonly released = (): void => {
    this.flushClient();
    this.onDurable();
  };
}
