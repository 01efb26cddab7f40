/**
 * A hand-built Postgres frontend for differential protocol tests: the frontend encoders (shared
 * with the sidecar's unit tests, from its test-support module), a test-only framer for the backend
 * side, and a conversation runner over a raw `net` socket. Deliberately independent of
 * sidecar/src, so the sidecar's own codec is not used to check itself.
 */
import { connect, type Socket } from 'node:net';
import { cancelRequest } from '@byline/sidecar/test-support/frontend-messages';

export * from '@byline/sidecar/test-support/frontend-messages';

/** A backend message: its type character and its body (after the length word). */
export interface BackendMessage {
  type: string;
  body: Buffer;
}

// ------------------------------------------------------------------ backend decoding, for assertions

/** The type characters of a message list, e.g. `TDCZ`. */
export function types(messages: BackendMessage[]): string {
  return messages.map((m) => m.type).join('');
}

/** ErrorResponse / NoticeResponse fields by their code letter (S, V, C, M, …). */
export function fields(m: BackendMessage): Record<string, string> {
  const out: Record<string, string> = {};
  let pos = 0;
  while (pos < m.body.length && m.body[pos] !== 0) {
    const nul = m.body.indexOf(0, pos + 1);
    out[String.fromCharCode(m.body[pos]!)] = m.body.toString('utf8', pos + 1, nul);
    pos = nul + 1;
  }
  return out;
}

export function commandTag(m: BackendMessage): string {
  return m.body.toString('utf8', 0, m.body.indexOf(0));
}

/** DataRow columns as text (null for SQL NULL). */
export function dataRow(m: BackendMessage): (string | null)[] {
  const out: (string | null)[] = [];
  const n = m.body.readInt16BE(0);
  let pos = 2;
  for (let i = 0; i < n; i++) {
    const len = m.body.readInt32BE(pos);
    pos += 4;
    out.push(len < 0 ? null : m.body.toString('utf8', pos, pos + len));
    if (len > 0) pos += len;
  }
  return out;
}

export function keyData(m: BackendMessage): { pid: number; key: Buffer } {
  return { pid: m.body.readInt32BE(0), key: Buffer.from(m.body.subarray(4)) };
}

export function parameterStatus(m: BackendMessage): { name: string; value: string } {
  const nul = m.body.indexOf(0);
  return { name: m.body.toString('utf8', 0, nul), value: m.body.toString('utf8', nul + 1, m.body.length - 1) };
}

/**
 * For comparing two runs: only per-connection values are blanked — BackendKeyData contents (its
 * length is kept), NotificationResponse's sender pid, and the ParameterStatus values named in
 * `varying`. Bodies become latin1 strings so a mismatch shows readably, byte for byte.
 */
export function normalise(
  messages: BackendMessage[],
  varying: readonly string[] = [],
): { type: string; body: string }[] {
  return messages.map((m) => {
    let body = m.body;
    if (m.type === 'K') body = Buffer.alloc(body.length);
    else if (m.type === 'A') body = Buffer.concat([Buffer.alloc(4), body.subarray(4)]);
    else if (m.type === 'S') {
      const { name } = parameterStatus(m);
      if (varying.includes(name)) body = Buffer.from(`${name}\0<varies>\0`, 'utf8');
    }
    return { type: m.type, body: body.toString('latin1') };
  });
}

// ------------------------------------------------------------------ connection and conversations

/** Read until a message of this type (the `times`-th one), until `count` messages, or until the server closes. */
export type Until = string | { type: string; times: number } | { count: number };

export interface Target {
  host: string;
  port: number;
}

export interface StepContext {
  target: Target;
  /** Every backend message received so far in this conversation. */
  received: BackendMessage[];
}

export interface Step {
  /** Written in one go; a function builds them from what came back earlier. */
  send?: Buffer[] | ((ctx: StepContext) => Buffer[]);
  /** Runs after sending and before reading: a NOTIFY from elsewhere, a cancel request. */
  meanwhile?: (ctx: StepContext) => Promise<void>;
  /** A message type character, `{ type, times }`, `{ count }`, or `'close'`. */
  until: Until;
}

export interface ConversationResult {
  /** Messages read in each step. */
  steps: BackendMessage[][];
  messages: BackendMessage[];
  /** The client-side port: the sidecar records the session's client as 127.0.0.1:<port>. */
  localPort: number;
  /** Messages that had arrived beyond the last step's stop condition. */
  leftover: BackendMessage[];
}

export class WireConnection {
  private pending: Buffer = Buffer.alloc(0);
  private readonly queue: BackendMessage[] = [];
  private ended = false;
  private wake: (() => void) | null = null;

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
      this.frame();
      this.notify();
    });
    const end = () => {
      this.ended = true;
      this.notify();
    };
    socket.on('close', end);
    socket.on('end', end);
    socket.on('error', end);
  }

  static open(target: Target): Promise<WireConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: target.host, port: target.port });
      socket.setNoDelay(true);
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.removeListener('error', reject);
        resolve(new WireConnection(socket));
      });
    });
  }

  get localPort(): number {
    return this.socket.localPort ?? 0;
  }

  get closed(): boolean {
    return this.ended;
  }

  /** Writes the messages at once, or in pieces of `chunkSize` bytes that each leave as their own write. */
  async send(messages: Buffer[], chunkSize = 0): Promise<void> {
    const bytes = Buffer.concat(messages);
    if (bytes.length === 0) return;
    if (chunkSize <= 0) {
      this.socket.write(bytes);
      return;
    }
    for (let i = 0; i < bytes.length; i += chunkSize) {
      await new Promise<void>((resolve, reject) =>
        this.socket.write(bytes.subarray(i, i + chunkSize), (e) => (e ? reject(e) : resolve())),
      );
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  /** Messages already framed and not yet read. */
  takeQueued(): BackendMessage[] {
    return this.queue.splice(0);
  }

  async read(until: Until, timeoutMs = 15_000): Promise<BackendMessage[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const n = this.satisfied(until);
      if (n !== null) return this.queue.splice(0, n);
      if (this.ended) {
        throw new Error(`server closed before ${JSON.stringify(until)}; got ${types(this.queue)}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${JSON.stringify(until)}; got ${types(this.queue)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** How many queued messages satisfy `until`, or null while waiting. */
  private satisfied(until: Until): number | null {
    if (until === 'close') return this.ended ? this.queue.length : null;
    if (typeof until === 'object' && 'count' in until) return this.queue.length >= until.count ? until.count : null;
    const type = typeof until === 'string' ? until : until.type;
    let times = typeof until === 'string' ? 1 : until.times;
    for (let i = 0; i < this.queue.length; i++) {
      if (this.queue[i]!.type === type && --times === 0) return i + 1;
    }
    return null;
  }

  private frame(): void {
    let pos = 0;
    const buf = this.pending;
    while (buf.length - pos >= 5) {
      const length = buf.readInt32BE(pos + 1);
      if (length < 4) throw new Error(`backend sent an invalid message length ${length}`);
      if (buf.length - pos < 1 + length) break;
      this.queue.push({
        type: String.fromCharCode(buf[pos]!),
        body: Buffer.from(buf.subarray(pos + 5, pos + 1 + length)),
      });
      pos += 1 + length;
    }
    this.pending = pos === buf.length ? Buffer.alloc(0) : buf.subarray(pos);
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }
}

export interface ConverseOptions {
  /** Split every write into pieces of this many bytes (1: byte by byte), to cross every framing boundary. */
  chunkSize?: number;
}

/** Runs the steps over a fresh connection and returns what the backend said, step by step. */
export async function converse(
  target: Target,
  steps: Step[],
  options: ConverseOptions = {},
): Promise<ConversationResult> {
  const conn = await WireConnection.open(target);
  const localPort = conn.localPort;
  const received: BackendMessage[] = [];
  const perStep: BackendMessage[][] = [];
  try {
    for (const step of steps) {
      const ctx: StepContext = { target, received };
      if (step.send) await conn.send(typeof step.send === 'function' ? step.send(ctx) : step.send, options.chunkSize);
      if (step.meanwhile) await step.meanwhile(ctx);
      const got = await conn.read(step.until);
      received.push(...got);
      perStep.push(got);
    }
    return { steps: perStep, messages: received, localPort, leftover: conn.takeQueued() };
  } finally {
    conn.destroy();
  }
}

/** Sends a CancelRequest on its own connection and waits for the server to close it (it never answers). */
export async function sendCancel(target: Target, pid: number, key: Buffer): Promise<BackendMessage[]> {
  const conn = await WireConnection.open(target);
  try {
    await conn.send([cancelRequest(pid, key)]);
    return await conn.read('close');
  } finally {
    conn.destroy();
  }
}
