/**
 * The gateway's policies, one per person signed in: the AgentIdentity they signed in as decides
 * (access, guardrails, active Approvals), as a sidecar's identity does, and the gateway's own config
 * may only tighten it (gateway-limits.ts). Denials name the person, rules the identity.
 *
 * From the collector (a gateway that ships to one), with its writer token:
 *   - one PolicyClient per AgentIdentity, started at its first sign-in, following
 *     `/v1/policy?identity=<ns>/<name>` (a long-poll: changes and new Approvals apply at once);
 *   - fail closed: a sign-in waits up to `firstPolicyWaitMs` for the identity's first document and
 *     is refused without one (the client keeps asking, so a later sign-in may succeed);
 *   - the last document is kept while the collector is away; approvals expire by the engine's clock;
 *   - the collector answering 404/410 (the AgentIdentity is gone) ends every session signed in as it
 *     with a FATAL naming why (a person removed during an incident loses access at once), and the
 *     identity is no longer followed;
 *   - an identity no session has held for `idleMs` is let go (its client stopped, its engines
 *     dropped); the next sign-in follows it afresh and waits for its policy like the first.
 * Without a collector (a gateway run by hand with file sinks): the config's routes for everyone.
 */
import { readFileSync } from 'node:fs';
import type { GatewayConfig, PolicyDocument } from '@byline/api';
import type { Logger } from 'pino';
import { trustOf } from '../collector-ca.js';
import type { SidecarMetrics } from '../metrics.js';
import type { StatementAnalyzer } from '../policy/analyzer.js';
import { Authorizer } from '../policy/authorizer.js';
import { PolicyClient } from '../policy/client.js';
import { PolicyEngine } from '../policy/engine.js';
import type { SessionLease } from './client-auth.js';
import { configPolicy, withGatewayLimits } from './gateway-limits.js';

export interface SignedInAs {
  /** The AgentIdentity that claims the person. */
  name: string;
  namespace: string | null;
}

/** What a sign-in gets: the person's authorizer, and the lease their session holds on it. */
export interface PolicyGrant {
  authorizer: Authorizer;
  lease: SessionLease;
}

export interface GatewayPolicies {
  /** The person's authorizer and lease, or why there is none (the sign-in is then refused). */
  authorizerFor(identity: SignedInAs, person: string): Promise<PolicyGrant | { error: string }>;
  /** The AgentIdentities (`<namespace>/<name>`) whose policy is followed now. */
  following(): string[];
  /** Decision counts and policy updates go here once the proxy runs. */
  metrics: SidecarMetrics | null;
  stop(): Promise<void>;
}

type CollectorSink = Extract<GatewayConfig['audit']['sinks'][number], { collector: unknown }>['collector'];

export interface GatewayPoliciesOptions {
  config: GatewayConfig;
  analyzer: StatementAnalyzer;
  logger: Logger;
  /** How long a sign-in waits for its identity's first policy (default 5 s). */
  firstPolicyWaitMs?: number;
  /** How long an identity's policy is followed with no session signed in as it (default 5 min). */
  idleMs?: number;
  /** The policy clients' retry pace (tests shorten it). */
  backoff?: { baseMs?: number; capMs?: number };
}

export const DEFAULT_POLICY_IDLE_MS = 5 * 60_000;

/** From the first collector sink when the gateway ships to one, else from the config. */
export function gatewayPolicies(options: GatewayPoliciesOptions): GatewayPolicies {
  const sink = options.config.audit.sinks.find((s) => 'collector' in s);
  return sink && 'collector' in sink ? new CollectorPolicies(sink.collector, options) : new ConfigPolicies(options);
}

/** One person signed in as a followed identity: their engine, fed from its document, and their open sessions. */
interface Person {
  readonly authorizer: Authorizer;
  sessions: number;
}

/** Per AgentIdentity: the document as served, each person's engine fed from it, and who holds it. */
interface Followed {
  readonly key: string;
  readonly engine: PolicyEngine;
  readonly people: Map<string, Person>;
  /** Settles when the first policy is applied (or the client stops first). */
  readonly first: Promise<void>;
  readonly abort: AbortController;
  client: PolicyClient | null;
  /** Sign-ins waiting plus sessions open: while above 0, the identity is not let go for idleness. */
  holders: number;
  idleTimer: NodeJS.Timeout | null;
  /** Listeners of the open sessions, called when the identity is gone at the collector. */
  readonly revokers: Set<(reason: string) => void>;
  /** Why the collector no longer serves it (404/410), once it said so. */
  gone: string | null;
}

/**
 * A session's hold on a followed identity. Released when the session ends: the person's engine
 * goes with their last session, the identity's client after `idleMs` without any.
 */
class FollowedLease implements SessionLease {
  #listener: ((reason: string) => void) | null = null;
  #released = false;

  constructor(
    private readonly followed: Followed,
    private readonly person: string,
    private readonly onIdle: (followed: Followed) => void,
  ) {}

  onRevoked(listener: (reason: string) => void): void {
    if (this.#released) return;
    const gone = this.followed.gone;
    if (gone !== null) {
      queueMicrotask(() => listener(gone));
      return;
    }
    this.#listener = listener;
    this.followed.revokers.add(listener);
  }

  release(): void {
    if (this.#released) return;
    this.#released = true;
    const { followed } = this;
    if (this.#listener) followed.revokers.delete(this.#listener);
    const person = followed.people.get(this.person);
    if (person !== undefined && --person.sessions === 0) followed.people.delete(this.person);
    if (--followed.holders === 0) this.onIdle(followed);
  }
}

class CollectorPolicies implements GatewayPolicies {
  metrics: SidecarMetrics | null = null;
  readonly #followed = new Map<string, Followed>();
  #stopped = false;

  constructor(
    private readonly collector: CollectorSink,
    private readonly options: GatewayPoliciesOptions,
  ) {}

  following(): string[] {
    return [...this.#followed.keys()];
  }

  async authorizerFor(identity: SignedInAs, person: string): Promise<PolicyGrant | { error: string }> {
    if (identity.namespace === null)
      return { error: `AgentIdentity "${identity.name}" has no namespace, so it has no policy` };
    const key = `${identity.namespace}/${identity.name}`;
    const followed = this.#followed.get(key) ?? this.#follow(key);
    // Held while waiting, so it is not let go for idleness under a sign-in.
    this.#hold(followed);
    if (followed.engine.document === null) await settledWithin(followed.first, this.options.firstPolicyWaitMs ?? 5000);
    const document = followed.engine.document;
    if (followed.gone !== null || document === null || this.#stopped) {
      this.#release(followed);
      return {
        error:
          followed.gone !== null
            ? `AgentIdentity ${key} has no policy at the collector (${followed.gone}); nothing runs without it`
            : `the gateway has no policy for AgentIdentity ${key} yet (the collector has not served one); nothing runs without it, retry shortly`,
      };
    }
    let entry = followed.people.get(person);
    if (entry === undefined) {
      const engine = new PolicyEngine();
      engine.setPolicy(this.#limited(document), person);
      entry = { authorizer: new Authorizer(engine, this.options.analyzer, this.metrics), sessions: 0 };
      followed.people.set(person, entry);
    }
    entry.sessions++;
    return { authorizer: entry.authorizer, lease: new FollowedLease(followed, person, this.#onIdle) };
  }

  #limited(document: PolicyDocument): PolicyDocument {
    return withGatewayLimits(document, this.options.config.routes, this.options.config.guardrails);
  }

  #hold(followed: Followed): void {
    followed.holders++;
    if (followed.idleTimer !== null) clearTimeout(followed.idleTimer);
    followed.idleTimer = null;
  }

  #release(followed: Followed): void {
    if (--followed.holders === 0) this.#onIdle(followed);
  }

  /** No sign-in and no session holds it: let it go after `idleMs`; the next sign-in follows it afresh. */
  readonly #onIdle = (followed: Followed): void => {
    if (followed.gone !== null || this.#stopped) return;
    followed.idleTimer = setTimeout(() => {
      followed.idleTimer = null;
      if (followed.holders > 0) return;
      this.options.logger.info(
        { agentIdentity: followed.key },
        'no session signed in as this identity for a while: no longer following its policy',
      );
      this.#unfollow(followed);
    }, this.options.idleMs ?? DEFAULT_POLICY_IDLE_MS);
    followed.idleTimer.unref();
  };

  /** The collector answered 404/410: every session signed in as it ends, and it is no longer followed. */
  #gone(followed: Followed, reason: string): void {
    followed.gone = reason;
    this.#unfollow(followed);
    const sessions = [...followed.revokers];
    followed.revokers.clear();
    followed.people.clear();
    this.options.logger.warn(
      { agentIdentity: followed.key, reason, sessions: sessions.length },
      'the collector no longer serves this identity’s policy: its sessions end and it is no longer followed',
    );
    const why = `access withdrawn: the policy of AgentIdentity ${followed.key}, which this session signed in as, is gone (${reason})`;
    for (const revoke of sessions) revoke(why);
  }

  #unfollow(followed: Followed): void {
    if (this.#followed.get(followed.key) === followed) this.#followed.delete(followed.key);
    if (followed.idleTimer !== null) clearTimeout(followed.idleTimer);
    followed.idleTimer = null;
    followed.abort.abort();
    void followed.client?.stop();
  }

  #follow(key: string): Followed {
    const engine = new PolicyEngine();
    const people = new Map<string, Person>();
    const { logger, backoff } = this.options;
    const collector = this.collector;
    const abort = new AbortController();
    const followed: Followed = {
      key,
      engine,
      people,
      abort,
      client: null,
      holders: 0,
      idleTimer: null,
      revokers: new Set(),
      gone: null,
      first: PolicyClient.start(
        {
          url: collector.url,
          token: () => readFileSync(collector.tokenFile, 'utf8').trim(),
          ...trustOf(collector),
          logger: logger.child({ agentIdentity: key }),
          engine,
          identity: key,
          ...(backoff ? { backoff } : {}),
          onGone: (reason) => this.#gone(followed, reason),
          onUpdate: (result) => {
            this.metrics?.policyUpdates.inc({ result });
            // Every person signed in as this identity gets the new document for their next statement.
            if (result === 'applied' && engine.document !== null) {
              const limited = this.#limited(engine.document);
              for (const [person, entry] of people) entry.authorizer.engine.setPolicy(limited, person);
            }
          },
        },
        abort.signal,
      ).then(
        (client) => {
          followed.client = client;
          if (abort.signal.aborted) void client.stop();
        },
        () => {},
      ),
    };
    this.#followed.set(key, followed);
    return followed;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    const all = [...this.#followed.values()];
    for (const followed of all) this.#unfollow(followed);
    await Promise.all(all.map((f) => f.first.then(() => f.client?.stop())));
  }
}

class ConfigPolicies implements GatewayPolicies {
  metrics: SidecarMetrics | null = null;

  constructor(private readonly options: GatewayPoliciesOptions) {}

  async authorizerFor(identity: SignedInAs, person: string): Promise<PolicyGrant> {
    const engine = new PolicyEngine();
    engine.setPolicy(configPolicy(this.options.config, identity), person);
    return { authorizer: new Authorizer(engine, this.options.analyzer, this.metrics), lease: UNREVOKED };
  }

  following(): string[] {
    return [];
  }

  async stop(): Promise<void> {}
}

/** The config's policy is never withdrawn while the gateway runs; nothing to let go. */
const UNREVOKED: SessionLease = { onRevoked() {}, release() {} };

/** Waits for `p`, at most `ms`. */
async function settledWithin(p: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}
