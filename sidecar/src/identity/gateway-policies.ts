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
 *   - the last document is kept while the collector is away; approvals expire by the engine's clock.
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
import { configPolicy, withGatewayLimits } from './gateway-limits.js';

export interface SignedInAs {
  /** The AgentIdentity that claims the person. */
  name: string;
  namespace: string | null;
}

export interface GatewayPolicies {
  /** The authorizer for this person's session, or why there is none (the sign-in is then refused). */
  authorizerFor(identity: SignedInAs, person: string): Promise<Authorizer | { error: string }>;
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
  /** The policy clients' retry pace (tests shorten it). */
  backoff?: { baseMs?: number; capMs?: number };
}

/** From the first collector sink when the gateway ships to one, else from the config. */
export function gatewayPolicies(options: GatewayPoliciesOptions): GatewayPolicies {
  const sink = options.config.audit.sinks.find((s) => 'collector' in s);
  return sink && 'collector' in sink ? new CollectorPolicies(sink.collector, options) : new ConfigPolicies(options);
}

/** Per AgentIdentity: the document as served, and each person's engine fed from it. */
interface Followed {
  readonly engine: PolicyEngine;
  readonly people: Map<string, Authorizer>;
  /** Settles when the first policy is applied (or the client is stopped first). */
  readonly first: Promise<void>;
  client: PolicyClient | null;
}

class CollectorPolicies implements GatewayPolicies {
  metrics: SidecarMetrics | null = null;
  readonly #followed = new Map<string, Followed>();
  readonly #abort = new AbortController();

  constructor(
    private readonly collector: CollectorSink,
    private readonly options: GatewayPoliciesOptions,
  ) {}

  async authorizerFor(identity: SignedInAs, person: string): Promise<Authorizer | { error: string }> {
    if (identity.namespace === null)
      return { error: `AgentIdentity "${identity.name}" has no namespace, so it has no policy` };
    const key = `${identity.namespace}/${identity.name}`;
    const followed = this.#followed.get(key) ?? this.#follow(key);
    if (followed.engine.document === null) await settledWithin(followed.first, this.options.firstPolicyWaitMs ?? 5000);
    const document = followed.engine.document;
    if (document === null || this.#abort.signal.aborted) {
      return {
        error: `the gateway has no policy for AgentIdentity ${key} yet (the collector has not served one); nothing runs without it, retry shortly`,
      };
    }
    let authorizer = followed.people.get(person);
    if (authorizer === undefined) {
      const engine = new PolicyEngine();
      engine.setPolicy(this.#limited(document), person);
      authorizer = new Authorizer(engine, this.options.analyzer, this.metrics);
      followed.people.set(person, authorizer);
    }
    return authorizer;
  }

  #limited(document: PolicyDocument): PolicyDocument {
    return withGatewayLimits(document, this.options.config.routes, this.options.config.guardrails);
  }

  #follow(key: string): Followed {
    const engine = new PolicyEngine();
    const people = new Map<string, Authorizer>();
    const { logger, backoff } = this.options;
    const collector = this.collector;
    const started = PolicyClient.start(
      {
        url: collector.url,
        token: () => readFileSync(collector.tokenFile, 'utf8').trim(),
        ...trustOf(collector),
        logger: logger.child({ agentIdentity: key }),
        engine,
        identity: key,
        ...(backoff ? { backoff } : {}),
        onUpdate: (result) => {
          this.metrics?.policyUpdates.inc({ result });
          // Every person signed in as this identity gets the new document for their next statement.
          if (result === 'applied' && engine.document !== null) {
            const limited = this.#limited(engine.document);
            for (const [person, authorizer] of people) authorizer.engine.setPolicy(limited, person);
          }
        },
      },
      this.#abort.signal,
    );
    const followed: Followed = {
      engine,
      people,
      client: null,
      first: started.then(
        (client) => {
          followed.client = client;
          if (this.#abort.signal.aborted) void client.stop();
        },
        () => {},
      ),
    };
    this.#followed.set(key, followed);
    return followed;
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    await Promise.all([...this.#followed.values()].map((f) => f.first.then(() => f.client?.stop())));
  }
}

class ConfigPolicies implements GatewayPolicies {
  metrics: SidecarMetrics | null = null;

  constructor(private readonly options: GatewayPoliciesOptions) {}

  async authorizerFor(identity: SignedInAs, person: string): Promise<Authorizer> {
    const engine = new PolicyEngine();
    engine.setPolicy(configPolicy(this.options.config, identity), person);
    return new Authorizer(engine, this.options.analyzer, this.metrics);
  }

  async stop(): Promise<void> {}
}

/** Waits for `p`, at most `ms`. */
async function settledWithin(p: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}
