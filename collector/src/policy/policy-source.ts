/**
 * The collector's view of policy objects: watch caches (list + watch, relist on 410, restart when
 * silent: the operator's WatchCache) over AgentIdentities, DatabaseRoutes and Approvals, all
 * namespaces. Serving needs the first two; Approvals are optional (until their CRD exists, or
 * while their list fails, documents carry none, which only tightens).
 */
import {
  type ApprovalObject,
  type EffectivePolicy,
  effectivePolicy,
  type IdentityObject,
  type RouteObject,
} from '@byline/api';
import type { KubeClient, KubeObject, WatchCache } from '@byline/operator';

const GROUP_PATH = '/apis/byline.dev/v1alpha1';

export interface PolicySourceOptions {
  /** Warnings from the caches (list/watch failures). */
  log?: (level: 'debug' | 'warn', message: string, err?: unknown) => void;
  /** Asked of the API server per watch (default 300 s). */
  timeoutSeconds?: number;
}

type Cache<T> = WatchCache<T & KubeObject>;

export class PolicySource {
  readonly #identities: Cache<IdentityObject>;
  readonly #routes: Cache<RouteObject>;
  readonly #approvals: Cache<ApprovalObject>;
  readonly #waiters = new Set<() => void>();
  #stopped = false;

  private constructor(caches: {
    identities: Cache<IdentityObject>;
    routes: Cache<RouteObject>;
    approvals: Cache<ApprovalObject>;
  }) {
    this.#identities = caches.identities;
    this.#routes = caches.routes;
    this.#approvals = caches.approvals;
    for (const cache of [this.#identities, this.#routes, this.#approvals] as Cache<unknown>[])
      cache.onChange(() => this.#wake());
  }

  /** Loads the operator's Kubernetes client code (only a collector with auth.kubernetes needs it). */
  static async create(client: KubeClient, options: PolicySourceOptions = {}): Promise<PolicySource> {
    const { WatchCache, httpTransport } = await import('@byline/operator');
    const make = <T>(plural: string) =>
      new WatchCache<T & KubeObject>({
        name: plural,
        transport: httpTransport<T & KubeObject>(client, `${GROUP_PATH}/${plural}`),
        ...(options.timeoutSeconds !== undefined ? { timeoutSeconds: options.timeoutSeconds } : {}),
        ...(options.log ? { log: options.log } : {}),
      });
    return new PolicySource({
      identities: make<IdentityObject>('agentidentities'),
      routes: make<RouteObject>('databaseroutes'),
      approvals: make<ApprovalObject>('approvals'),
    });
  }

  start(): this {
    this.#identities.start();
    this.#routes.start();
    this.#approvals.start();
    return this;
  }

  stop(): void {
    this.#stopped = true;
    this.#identities.stop();
    this.#routes.stop();
    this.#approvals.stop();
    this.#wake();
  }

  /** True once AgentIdentities and DatabaseRoutes have been listed, until stopped. */
  isReady(): boolean {
    return !this.#stopped && this.#identities.isSynced() && this.#routes.isSynced();
  }

  /** The identity's effective policy now, or null when no such AgentIdentity exists. */
  policyFor(namespace: string, name: string, now: number): EffectivePolicy | null {
    const identity = this.#identities.get(namespace, name);
    if (identity === undefined) return null;
    const routes = new Map(this.#routes.byNamespace(namespace).map((r) => [r.metadata.name, r] as const));
    return effectivePolicy(identity, routes, this.#approvals.byNamespace(namespace), now);
  }

  /** Whether the AgentIdentity claims OIDC subjects (spec.oidc has an entry): people sign in as it at a gateway. */
  claimsOidc(namespace: string, name: string): boolean {
    const oidc = (this.#identities.get(namespace, name)?.spec as { oidc?: unknown } | undefined)?.oidc;
    return Array.isArray(oidc) && oidc.length > 0;
  }

  /** Resolves at the next change of any watched object (or on stop); `cancel` forgets the wait. */
  nextChange(): { changed: Promise<void>; cancel: () => void } {
    let wake!: () => void;
    const changed = new Promise<void>((resolve) => {
      wake = resolve;
    });
    this.#waiters.add(wake);
    return { changed, cancel: () => this.#waiters.delete(wake) };
  }

  #wake(): void {
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const wake of waiters) wake();
  }
}
