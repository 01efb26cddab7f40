/**
 * The sidecar's policy client: a long-poll loop on the collector's `/v1/policy` that feeds the
 * PolicyEngine. Promises:
 *   - fail closed at start: `start()` resolves only once a valid policy is applied (until then the
 *     engine denies everything);
 *   - a new version is applied as soon as the collector answers the long-poll (a change is pushed
 *     at once; after an outage, retries are at most `backoff.capMs` apart, 2 s by default);
 *   - the collector going away keeps the last policy (approvals still expire by the engine's clock);
 *   - a document that does not parse or validate is rejected: the previous policy stays, the
 *     rejection is logged and counted, and the next poll waits past that version and reports it
 *     (`rejected=<version>`) so the collector counts it too (version skew shows on its side);
 *   - with `onGone` (a gateway's client for one AgentIdentity): a 404 or 410 means the collector no
 *     longer has that identity, so the client stops asking and reports why, instead of polling forever.
 */
import type { Logger } from 'pino';
import { trustOf } from '../collector-ca.js';
import type { PolicyEngine } from './engine.js';
import { fetchPolicy } from './policy-fetch.js';

export interface PolicyClientOptions {
  /** The collector's base URL. */
  url: string;
  /** The bearer token, read afresh per request (projected tokens rotate); throws with a reason when unreadable. */
  token: () => string;
  /** The collector's CA (caPem inline or caFile); the system's trust store when neither. */
  caFile?: string;
  caPem?: string;
  logger: Logger;
  engine: PolicyEngine;
  /** A gateway's: the AgentIdentity (`<namespace>/<name>`) whose policy this client follows. */
  identity?: string;
  /** The collector answered 404/410 (the identity is gone): the client has stopped; `reason` is the answer. */
  onGone?: (reason: string) => void;
  /** Per document received: applied, or rejected (kept the previous one). For the metric. */
  onUpdate?: (result: 'applied' | 'rejected') => void;
  backoff?: { baseMs?: number; capMs?: number };
  /** Per request; longer than the collector's long-poll wait (default 35 s). */
  requestTimeoutMs?: number;
}

export class PolicyClient {
  /** Counts since start, for tests and logs. */
  readonly stats = { applied: 0, rejected: 0, failures: 0 };
  #seen: string | null = null;
  #applied: string | null = null;
  /** A rejected version not yet reported to the collector. */
  #rejected: string | null = null;
  #stopped = false;
  /** Why the client stopped on its own (the collector answered 404/410 with `onGone` set). */
  #gone: string | null = null;
  readonly #abort = new AbortController();
  #wake: (() => void) | null = null;
  #firstApplied!: () => void;
  readonly #first = new Promise<void>((resolve) => {
    this.#firstApplied = resolve;
  });
  readonly #done: Promise<void>;

  private constructor(private readonly options: PolicyClientOptions) {
    this.#done = this.#run();
  }

  /** Resolves once the first valid policy is applied; rejects if stopped (or `signal` aborts) before. */
  static async start(options: PolicyClientOptions, signal?: AbortSignal): Promise<PolicyClient> {
    if (options.identity === undefined)
      options.logger.info(
        { collector: options.url },
        'waiting for this sidecar’s policy; every statement is denied until it arrives',
      );
    else
      options.logger.info(
        { collector: options.url, agentIdentity: options.identity },
        `gateway: waiting for the policy of AgentIdentity ${options.identity}; sign-ins as it are refused until it arrives`,
      );
    const client = new PolicyClient(options);
    const onAbort = () => client.stop();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await Promise.race([client.#first, client.#done]);
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
    if (client.#applied === null)
      throw new Error(client.#gone === null ? 'stopped before a policy arrived' : client.#gone);
    return client;
  }

  /** The version of the policy in force. */
  get version(): string | null {
    return this.#applied;
  }

  stop(): Promise<void> {
    this.#stopped = true;
    this.#abort.abort();
    this.#wake?.();
    return this.#done;
  }

  async #run(): Promise<void> {
    const { logger } = this.options;
    let attempt = 0;
    let lastError = '';
    while (!this.#stopped) {
      let token: string;
      try {
        token = this.options.token();
      } catch (e) {
        lastError = this.#failed(`cannot read the token: ${(e as Error).message}`, lastError);
        await this.#sleep(++attempt);
        continue;
      }
      const answer = await fetchPolicy({
        url: this.options.url,
        token,
        after: this.#seen,
        rejected: this.#rejected,
        ...(this.options.identity !== undefined ? { identity: this.options.identity } : {}),
        timeoutMs: this.options.requestTimeoutMs ?? 35_000,
        signal: this.#abort.signal,
        ...trustOf(this.options),
      });
      if (this.#stopped) return;
      // Any answer means the collector read the request, report included; a failure sends it again.
      if (answer.kind !== 'failed') this.#rejected = null;
      switch (answer.kind) {
        case 'policy': {
          attempt = 0;
          lastError = '';
          const { document } = answer;
          this.#seen = document.version;
          if (document.version === this.#applied) break;
          this.options.engine.setPolicy(document);
          this.#applied = document.version;
          this.stats.applied++;
          this.options.onUpdate?.('applied');
          logger.info(
            { version: document.version, routes: document.routes.map((r) => `${r.name}=${r.access}`) },
            'policy applied',
          );
          this.#firstApplied();
          break;
        }
        case 'unchanged':
          attempt = 0;
          break;
        case 'invalid':
          this.stats.rejected++;
          this.options.onUpdate?.('rejected');
          logger.error(
            { reason: answer.error, version: answer.version, keeping: this.#applied },
            'the collector sent a policy that cannot be used; keeping the previous one',
          );
          // With its version known, the next poll waits for another; without, back off.
          if (answer.version !== null) {
            this.#seen = answer.version;
            this.#rejected = answer.version;
          } else await this.#sleep(++attempt);
          break;
        case 'failed':
          if ((answer.status === 404 || answer.status === 410) && this.options.onGone) {
            this.#stopped = true;
            this.#gone = answer.error;
            logger.warn({ reason: answer.error }, 'the collector no longer serves this policy; not asking again');
            this.options.onGone(answer.error);
            return;
          }
          lastError = this.#failed(answer.error, lastError);
          await this.#sleep(++attempt);
          break;
      }
    }
  }

  /** Loud once per distinct reason; the retries themselves are quiet. */
  #failed(error: string, lastError: string): string {
    this.stats.failures++;
    if (error !== lastError)
      this.options.logger.warn(
        { reason: error, keeping: this.#applied },
        this.#applied === null ? 'no policy yet; retrying' : 'cannot reach the policy; keeping the last one',
      );
    return error;
  }

  #sleep(attempt: number): Promise<void> {
    const base = this.options.backoff?.baseMs ?? 250;
    const cap = Math.min(this.options.backoff?.capMs ?? 2000, base * 2 ** Math.min(attempt - 1, 16));
    const ms = cap / 2 + (Math.random() * cap) / 2;
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.#wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}
