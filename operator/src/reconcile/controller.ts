/**
 * Drives the two state machines (database-route.ts, agent-identity.ts): cache changes enqueue keys,
 * workers compute the Ready condition from the caches and write it through the status subresource
 * when it differs, recording an Event on each change. Triggers:
 *
 *   DatabaseRoute changed   → that route, and every identity of its namespace that uses it
 *   AgentIdentity changed   → every identity of its namespace (claims are a namespace-wide fact:
 *                             deleting one claimer must clear the other's ServiceAccountClaimedTwice),
 *                           and, when it claims or claimed OIDC subjects, every identity that does
 *                           (OIDC claims clash across namespaces: OidcClaimedTwice)
 *   Secret changed          → the routes naming it, and the identities using those routes
 *   ServiceAccount changed  → the identities claiming it
 *
 * Only the leader works: `resume()` on gaining the Lease enqueues everything, `pause()` on losing it
 * drops the queue at once, and every write checks `isLeader()` first.
 */
import type { Logger } from 'pino';
import type { AgentIdentity, DatabaseRoute } from '../injection/types.js';
import type { Caches } from '../kube/caches.js';
import { isConflict, isNotFound, type KubeClient, paths } from '../kube/client.js';
import type { Change, KubeObject } from '../kube/watch-cache.js';
import type { OperatorMetrics } from '../metrics.js';
import { evaluateIdentity } from './agent-identity.js';
import { type DesiredCondition, nextStatus, type ObjectStatus } from './conditions.js';
import { evaluateRoute, secretsOf } from './database-route.js';
import type { EventRecorder } from './events.js';
import { WorkQueue } from './queue.js';

export type Kind = 'DatabaseRoute' | 'AgentIdentity';
const PLURAL: Record<Kind, string> = { DatabaseRoute: 'databaseroutes', AgentIdentity: 'agentidentities' };

export interface ControllerOptions {
  client: KubeClient;
  caches: Caches;
  events: EventRecorder;
  metrics: OperatorMetrics;
  isLeader: () => boolean;
  logger: Logger;
  now?: () => Date;
  concurrency?: number;
}

type Custom = (AgentIdentity | DatabaseRoute) & { status?: ObjectStatus };

export const keyFor = (kind: Kind, namespace: string, name: string) => `${kind}/${namespace}/${name}`;

export class Controller {
  private readonly queue: WorkQueue;
  private readonly unsubscribe: Array<() => void> = [];
  private readonly now: () => Date;

  constructor(private readonly o: ControllerOptions) {
    this.now = o.now ?? (() => new Date());
    this.queue = new WorkQueue((key) => this.reconcile(key), {
      concurrency: o.concurrency ?? 2,
      onError: (key, err, retryInMs) =>
        o.logger.warn({ key, err: (err as Error).message, retryInMs }, 'reconcile failed; retrying'),
    });
  }

  /** Subscribes to the caches (always: changes only enqueue while working). */
  start(): void {
    const { caches } = this.o;
    this.unsubscribe.push(
      caches.routes.onChange((c) => this.onRoute(c)),
      caches.identities.onChange((c) => this.onIdentity(c)),
      caches.secrets.onChange((c) => this.onSecret(c)),
      caches.serviceAccounts.onChange((c) => this.onServiceAccount(c)),
    );
  }

  /** Gained the Lease: start working and look at everything once. */
  resume(): void {
    this.queue.start();
    for (const r of this.o.caches.routes.list()) this.add('DatabaseRoute', r);
    for (const i of this.o.caches.identities.list()) this.add('AgentIdentity', i);
  }

  /** Lost the Lease (or stopping): nothing more is handed out; writes in flight check isLeader(). */
  pause(): void {
    this.queue.stop();
    this.o.metrics.queueDepth.set(0);
  }

  stop(): void {
    this.pause();
    for (const u of this.unsubscribe.splice(0)) u();
  }

  /** Resolves when the queue is empty and nothing runs (tests). */
  idle(): Promise<void> {
    return this.queue.idle();
  }

  private add(kind: Kind, o: KubeObject): void {
    if (!o.metadata.namespace) return;
    this.queue.add(keyFor(kind, o.metadata.namespace, o.metadata.name));
    this.o.metrics.queueDepth.set(this.queue.depth);
  }

  private identitiesUsing(namespace: string, routes: Set<string>): AgentIdentity[] {
    return this.o.caches.identities
      .byNamespace(namespace)
      .filter((i) => (i.spec?.routes ?? []).some((r) => routes.has(r.name)));
  }

  private onRoute(c: Change<DatabaseRoute>): void {
    this.add('DatabaseRoute', c.object);
    const ns = c.object.metadata.namespace ?? '';
    for (const i of this.identitiesUsing(ns, new Set([c.object.metadata.name]))) this.add('AgentIdentity', i);
  }

  private onIdentity(c: Change<AgentIdentity>): void {
    const ns = c.object.metadata.namespace ?? '';
    for (const i of this.o.caches.identities.byNamespace(ns)) this.add('AgentIdentity', i);
    // OIDC claims clash across namespaces: an identity that claims (or claimed) any concerns every
    // other identity that claims any (adding a claim, or dropping one, sets or clears theirs).
    if (!hasOidc(c.object) && !(c.old && hasOidc(c.old))) return;
    for (const i of this.o.caches.identities.list()) if (hasOidc(i)) this.add('AgentIdentity', i);
  }

  private onSecret(c: Change<KubeObject>): void {
    const ns = c.object.metadata.namespace ?? '';
    const routes = this.o.caches.routes.byNamespace(ns).filter((r) => secretsOf(r).includes(c.object.metadata.name));
    for (const r of routes) this.add('DatabaseRoute', r);
    if (routes.length > 0) {
      for (const i of this.identitiesUsing(ns, new Set(routes.map((r) => r.metadata.name)))) {
        this.add('AgentIdentity', i);
      }
    }
  }

  private onServiceAccount(c: Change<KubeObject>): void {
    const ns = c.object.metadata.namespace ?? '';
    for (const i of this.o.caches.identities.byNamespace(ns)) {
      if ((i.spec?.serviceAccounts ?? []).includes(c.object.metadata.name)) this.add('AgentIdentity', i);
    }
  }

  private async reconcile(key: string): Promise<void> {
    this.o.metrics.queueDepth.set(this.queue.depth);
    const [kind, namespace, name] = key.split('/') as [Kind, string, string];
    const end = this.o.metrics.reconcileDuration.startTimer({ kind });
    try {
      const outcome = await this.reconcileOne(kind, namespace, name);
      this.o.metrics.reconciles.inc({ kind, outcome });
    } catch (err) {
      this.o.metrics.reconciles.inc({ kind, outcome: 'error' });
      throw err;
    } finally {
      end();
    }
  }

  private async reconcileOne(kind: Kind, namespace: string, name: string): Promise<'unchanged' | 'updated' | 'gone'> {
    const { caches } = this.o;
    const secret = (ns: string, n: string) => caches.secrets.get(ns, n);
    let object: Custom | undefined;
    let desired: DesiredCondition;
    if (kind === 'DatabaseRoute') {
      const route = caches.routes.get(namespace, name);
      if (!route) return 'gone';
      object = route;
      desired = evaluateRoute(route, secret);
    } else {
      const identity = caches.identities.get(namespace, name);
      if (!identity) return 'gone';
      object = identity;
      desired = evaluateIdentity(identity, {
        identities: caches.identities.byNamespace(namespace),
        clusterIdentities: caches.identities.list(),
        route: (ns, n) => caches.routes.get(ns, n),
        secret,
        serviceAccountExists: (ns, n) => caches.serviceAccounts.get(ns, n) !== undefined,
      });
    }
    const update = nextStatus(object.status, desired, object.metadata.generation, this.now());
    if (!update.changed) return 'unchanged';
    if (!this.o.isLeader()) return 'unchanged';
    const path = `${paths.group('byline.dev', 'v1alpha1', PLURAL[kind], namespace, name)}/status`;
    let written: Custom;
    try {
      // The resourceVersion makes the write conditional: a status computed from a stale object is refused (409)
      // and retried once the cache has the newer one.
      written = await this.o.client.patch<Custom>(path, {
        metadata: { resourceVersion: object.metadata.resourceVersion },
        status: update.status,
      });
    } catch (err) {
      if (isNotFound(err)) return 'gone';
      if (isConflict(err)) throw new Error(`${kind} ${namespace}/${name} changed while reconciling; retrying`);
      throw err;
    }
    this.o.metrics.statusWrites.inc({ kind, reason: desired.reason });
    const prev = update.previous;
    if (!prev || prev.status !== desired.status || prev.reason !== desired.reason || prev.message !== desired.message) {
      const warning = desired.status !== 'True' || desired.reason !== 'Valid';
      this.o.logger.info(
        { kind, namespace, name, status: desired.status, reason: desired.reason, message: desired.message },
        'condition Ready changed',
      );
      await this.o.events.record(
        {
          apiVersion: 'byline.dev/v1alpha1',
          kind,
          name,
          namespace,
          ...(written.metadata.uid ? { uid: written.metadata.uid } : {}),
          ...(written.metadata.resourceVersion ? { resourceVersion: written.metadata.resourceVersion } : {}),
        },
        warning ? 'Warning' : 'Normal',
        desired.reason,
        desired.message,
      );
    }
    return 'updated';
  }
}

const hasOidc = (i: AgentIdentity): boolean => Array.isArray(i.spec?.oidc) && i.spec.oidc.length > 0;
