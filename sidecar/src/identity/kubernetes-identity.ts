/**
 * `identity.kubernetes`: the collector reviews the pod's projected service-account token and says
 * which AgentIdentity it stands for (`GET /v1/whoami`). Asked at start — retried with backoff for as
 * long as it takes, because a sidecar that does not know who it is must not proxy anything (fail
 * closed) — and again whenever the token file changes (the kubelet rotates projected tokens).
 * Sessions take the identity current when they start; until a new token is answered for, the last
 * known identity stays current.
 */
import { readFileSync } from 'node:fs';
import type { AuditIdentity } from '@byline/api';
import type { Logger } from 'pino';
import { trustOf } from '../collector-ca.js';
import type { IdentitySource } from './identity-source.js';
import { askWhoami } from './whoami.js';

export interface KubernetesIdentityOptions {
  tokenPath: string;
  /** The collector's base URL. */
  url: string;
  /** The collector's CA (caPem inline or caFile); the system's trust store when neither. */
  caFile?: string;
  caPem?: string;
  logger: Logger;
  /** How often the token file is checked for a new token (default 2 s). */
  pollMs?: number;
}

const BACKOFF_BASE_MS = 250;
const BACKOFF_CAP_MS = 10_000;

export class KubernetesIdentity implements IdentitySource {
  private identity: AuditIdentity;
  /** The token the current identity was answered for. */
  private token: string;
  private stopped = false;
  private refreshing = false;
  private readonly timer: NodeJS.Timeout;
  private wake: (() => void) | null = null;

  private constructor(
    private readonly options: KubernetesIdentityOptions,
    first: { identity: AuditIdentity; token: string },
  ) {
    this.identity = first.identity;
    this.token = first.token;
    this.timer = setInterval(() => this.poll(), options.pollMs ?? 2000);
    this.timer.unref();
  }

  /** Resolves once the collector has said who this sidecar is; rejects only when `signal` aborts. */
  static async start(options: KubernetesIdentityOptions, signal?: AbortSignal): Promise<KubernetesIdentity> {
    options.logger.info(
      { tokenPath: options.tokenPath, collector: options.url },
      'asking the collector who this sidecar is; no connections are accepted until it answers',
    );
    let wake: (() => void) | null = null;
    const onAbort = () => wake?.();
    signal?.addEventListener('abort', onAbort, { once: true });
    const first = await resolve(
      options,
      () => signal?.aborted ?? false,
      (w) => {
        wake = w;
      },
    ).finally(() => signal?.removeEventListener('abort', onAbort));
    if (!first) throw new Error('stopped before the collector said who this sidecar is');
    options.logger.info({ identity: first.identity }, 'identity known');
    return new KubernetesIdentity(options, first);
  }

  current(): AuditIdentity {
    return this.identity;
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    this.wake?.();
  }

  async refresh(): Promise<void> {
    const read = readToken(this.options.tokenPath);
    if (!('token' in read)) return;
    const answer = await askWhoami({
      url: this.options.url,
      token: read.token,
      ...trustOf(this.options),
    });
    if (!answer.ok) {
      this.options.logger.warn({ reason: answer.error }, 'asking the collector again who this sidecar is failed');
      return;
    }
    this.adopt({ identity: answer.identity, token: read.token });
  }

  private adopt(next: { identity: AuditIdentity; token: string }): void {
    if (!sameIdentity(next.identity, this.identity)) {
      this.options.logger.warn(
        { before: this.identity, after: next.identity },
        'identity changed; sessions starting from now on carry the new one',
      );
    }
    this.identity = next.identity;
    this.token = next.token;
  }

  private poll(): void {
    if (this.refreshing || this.stopped) return;
    const token = readToken(this.options.tokenPath);
    if (!('token' in token) || token.token === this.token) return;
    this.refreshing = true;
    this.options.logger.info('the token changed; asking the collector again');
    void resolve(
      this.options,
      () => this.stopped,
      (wake) => {
        this.wake = wake;
      },
    )
      .then((next) => {
        if (next) this.adopt(next);
      })
      .finally(() => {
        this.refreshing = false;
      });
  }
}

/** Asks until the collector answers with an identity (re-reading the token each time), or stopped. */
async function resolve(
  options: KubernetesIdentityOptions,
  stopped: () => boolean,
  onWake: (wake: () => void) => void,
): Promise<{ identity: AuditIdentity; token: string } | null> {
  let lastError = '';
  for (let attempt = 1; !stopped(); attempt++) {
    const read = readToken(options.tokenPath);
    let error: string;
    if ('token' in read) {
      const answer = await askWhoami({
        url: options.url,
        token: read.token,
        ...trustOf(options),
      });
      if (answer.ok) {
        if (attempt > 1) options.logger.info({ attempts: attempt }, 'the collector answered');
        return { identity: answer.identity, token: read.token };
      }
      error = answer.error;
    } else {
      error = read.error;
    }
    // Loud once per distinct reason; the retries themselves are quiet.
    if (error !== lastError)
      options.logger.warn({ reason: error, attempt }, 'the collector has not said who this sidecar is yet; retrying');
    lastError = error;
    const cap = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** Math.min(attempt - 1, 16));
    await sleep(cap / 2 + (Math.random() * cap) / 2, onWake);
  }
  return null;
}

function readToken(path: string): { token: string } | { error: string } {
  try {
    const token = readFileSync(path, 'utf8').trim();
    return token ? { token } : { error: `the token file ${path} is empty` };
  } catch (e) {
    return { error: `cannot read the token file ${path}: ${(e as Error).message}` };
  }
}

function sameIdentity(a: AuditIdentity, b: AuditIdentity): boolean {
  return (
    a.name === b.name &&
    a.kind === b.kind &&
    a.namespace === b.namespace &&
    a.serviceAccount === b.serviceAccount &&
    a.pod === b.pod &&
    a.source === b.source
  );
}

function sleep(ms: number, onWake: (wake: () => void) => void): Promise<void> {
  return new Promise((done) => {
    const timer = setTimeout(done, ms);
    onWake(() => {
      clearTimeout(timer);
      done();
    });
  });
}
