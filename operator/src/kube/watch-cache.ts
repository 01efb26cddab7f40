/**
 * A list+watch cache of one resource type, the informer pattern without client-go.
 *
 * State machine (one loop per cache):
 *
 *   LISTING ──ok──▶ WATCHING(rv = list's resourceVersion)
 *      │ error                │
 *      └─▶ BACKOFF ─▶ LISTING │  event: apply it, rv = event's rv, re-arm the inactivity timer
 *                             │  server closed the stream (its timeoutSeconds ran out) ─▶ WATCHING(rv)
 *                             │  inactivity timer fired (no event, not even a bookmark) ─▶ WATCHING(rv)
 *                             │  HTTP 410, or an ERROR event with code 410 (rv compacted) ─▶ LISTING
 *                             │  other error ─▶ BACKOFF ─▶ WATCHING(rv)   (a stale rv then earns a 410)
 *
 * Backoff is exponential with full jitter and resets after a successful list or a watch event.
 * A relist replaces the store and reports the difference (added / modified / deleted), so a
 * delete missed while the watch was down is still seen.
 */
import type { KubeClient, StreamHandle } from './client.js';
import { KubeError } from './client.js';

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    generation?: number;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
}

export interface ListResult<T> {
  items: T[];
  resourceVersion: string;
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
export interface WatchEvent {
  type: WatchEventType;
  object: unknown;
}

/** How a cache lists and watches; the real one speaks HTTP, tests inject a fake. */
export interface WatchTransport<T> {
  list(): Promise<ListResult<T>>;
  /** Streams events after `resourceVersion`; `onClose` runs once (no error: the server ended it). */
  watch(
    resourceVersion: string,
    timeoutSeconds: number,
    onEvent: (event: WatchEvent) => void,
    onClose: (err?: Error) => void,
  ): StreamHandle;
}

export type ChangeType = 'added' | 'modified' | 'deleted';
export interface Change<T> {
  type: ChangeType;
  object: T;
  /** The previous version, for `modified` (and for `deleted`, the last one known). */
  old?: T;
}

export type RestartCause = 'closed' | 'silent' | 'error';
export type RelistCause = 'gone' | 'error';

export interface WatchCacheOptions<T> {
  /** For logs and metrics, e.g. `secrets`. */
  name: string;
  transport: WatchTransport<T>;
  /** Asked of the server per watch request (default 300 s; the server ends the watch then). */
  timeoutSeconds?: number;
  /** A watch with no event (bookmarks count) for this long is restarted; default timeoutSeconds + 30 s. */
  inactivityMs?: number;
  backoff?: { initialMs?: number; maxMs?: number };
  /** [0, 1); injectable for tests. */
  random?: () => number;
  /** Applied to every object before it is stored (e.g. drop a Secret's values, keep its key names). */
  transform?: (object: T) => T;
  onRestart?: (cause: RestartCause) => void;
  onRelist?: (cause: RelistCause) => void;
  log?: (level: 'debug' | 'warn', message: string, err?: unknown) => void;
}

export const keyOf = (namespace: string | undefined, name: string): string =>
  namespace ? `${namespace}/${name}` : name;
const objectKey = (o: KubeObject): string => keyOf(o.metadata.namespace, o.metadata.name);

export class WatchCache<T extends KubeObject> {
  readonly name: string;
  private readonly store = new Map<string, T>();
  private readonly listeners = new Set<(change: Change<T>) => void>();
  private readonly timeoutSeconds: number;
  private readonly inactivityMs: number;
  private readonly initialBackoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly random: () => number;
  private resourceVersion = '';
  private attempt = 0;
  private stopped = false;
  private watch: StreamHandle | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private inactivity: ReturnType<typeof setTimeout> | undefined;
  private generation = 0; // bumps per watch, so callbacks of an abandoned watch are ignored
  private hasSynced = false;
  private resolveSynced!: () => void;
  private readonly syncedPromise = new Promise<void>((resolve) => {
    this.resolveSynced = resolve;
  });
  /** Where the loop is, for tests and debugging. */
  state: 'idle' | 'listing' | 'watching' | 'backoff' | 'stopped' = 'idle';

  constructor(private readonly options: WatchCacheOptions<T>) {
    this.name = options.name;
    this.timeoutSeconds = options.timeoutSeconds ?? 300;
    this.inactivityMs = options.inactivityMs ?? (this.timeoutSeconds + 30) * 1000;
    this.initialBackoffMs = options.backoff?.initialMs ?? 200;
    this.maxBackoffMs = options.backoff?.maxMs ?? 30_000;
    this.random = options.random ?? Math.random;
  }

  start(): this {
    if (this.state === 'idle') void this.runList();
    return this;
  }

  stop(): void {
    this.stopped = true;
    this.state = 'stopped';
    this.generation++;
    this.clearTimers();
    this.watch?.stop();
    this.watch = undefined;
  }

  /** Resolves once the first list has been stored. */
  synced(): Promise<void> {
    return this.syncedPromise;
  }
  isSynced(): boolean {
    return this.hasSynced;
  }

  get(namespace: string | undefined, name: string): T | undefined {
    return this.store.get(keyOf(namespace, name));
  }
  list(): T[] {
    return [...this.store.values()];
  }
  byNamespace(namespace: string): T[] {
    return this.list().filter((o) => o.metadata.namespace === namespace);
  }
  /** The resourceVersion the next watch starts from. */
  get lastResourceVersion(): string {
    return this.resourceVersion;
  }

  /** Called after each change is applied to the store; returns an unsubscribe function. */
  onChange(listener: (change: Change<T>) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private async runList(): Promise<void> {
    if (this.stopped) return;
    this.state = 'listing';
    const generation = ++this.generation;
    let result: ListResult<T>;
    try {
      result = await this.options.transport.list();
    } catch (err) {
      if (generation !== this.generation) return;
      this.log('warn', `list ${this.name} failed`, err);
      this.options.onRelist?.('error');
      this.backoff(() => this.runList());
      return;
    }
    if (generation !== this.generation || this.stopped) return;
    this.attempt = 0;
    this.replace(result.items.map((o) => this.transform(o)));
    this.resourceVersion = result.resourceVersion;
    if (!this.hasSynced) {
      this.hasSynced = true;
      this.resolveSynced();
    }
    this.startWatch();
  }

  private startWatch(): void {
    if (this.stopped) return;
    this.state = 'watching';
    const generation = ++this.generation;
    const current = () => generation === this.generation && !this.stopped;
    const startedAt = Date.now();
    let events = 0;
    this.armInactivity(generation);
    this.watch = this.options.transport.watch(
      this.resourceVersion,
      this.timeoutSeconds,
      (event) => {
        if (!current()) return;
        events++;
        this.onEvent(event, generation);
      },
      (err) => {
        if (!current()) return;
        this.watch = undefined;
        this.clearTimers();
        if (err instanceof KubeError && err.status === 410) {
          this.relist();
          return;
        }
        if (err) {
          this.log('warn', `watch ${this.name} failed`, err);
          this.options.onRestart?.('error');
          this.backoff(() => this.startWatch());
          return;
        }
        this.log('debug', `watch ${this.name} closed by the server; resuming from ${this.resourceVersion}`);
        this.options.onRestart?.('closed');
        // A server that ends every watch at once must not turn this into a busy loop.
        if (events === 0 && Date.now() - startedAt < 1000) this.backoff(() => this.startWatch());
        else this.startWatch();
      },
    );
  }

  private onEvent(event: WatchEvent, generation: number): void {
    this.armInactivity(generation);
    if (event.type === 'ERROR') {
      const status = (event.object ?? {}) as { code?: number; message?: string };
      this.abandonWatch();
      if (status.code === 410) {
        this.relist();
        return;
      }
      this.log('warn', `watch ${this.name}: error event ${status.code ?? '?'} ${status.message ?? ''}`);
      this.options.onRestart?.('error');
      this.backoff(() => this.startWatch());
      return;
    }
    const object = event.object as T;
    const rv = object?.metadata?.resourceVersion;
    if (rv) this.resourceVersion = rv;
    this.attempt = 0;
    if (event.type === 'BOOKMARK') return;
    if (!object?.metadata?.name) return;
    const key = objectKey(object);
    const old = this.store.get(key);
    if (event.type === 'DELETED') {
      this.store.delete(key);
      this.emit({ type: 'deleted', object: this.transform(object), ...(old ? { old } : {}) });
      return;
    }
    const stored = this.transform(object);
    this.store.set(key, stored);
    this.emit(old ? { type: 'modified', object: stored, old } : { type: 'added', object: stored });
  }

  private relist(): void {
    this.log('debug', `watch ${this.name}: resourceVersion ${this.resourceVersion} is gone; relisting`);
    this.options.onRelist?.('gone');
    void this.runList();
  }

  private abandonWatch(): void {
    this.generation++;
    this.clearTimers();
    this.watch?.stop();
    this.watch = undefined;
  }

  private armInactivity(generation: number): void {
    if (this.inactivity) clearTimeout(this.inactivity);
    this.inactivity = setTimeout(() => {
      if (generation !== this.generation || this.stopped) return;
      this.log('warn', `watch ${this.name} silent for ${this.inactivityMs} ms; restarting`);
      this.abandonWatch();
      this.options.onRestart?.('silent');
      this.startWatch();
    }, this.inactivityMs);
    this.inactivity.unref?.();
  }

  /** Delay before the next try: full jitter over an exponentially growing cap. */
  backoffDelay(attempt: number): number {
    const cap = Math.min(this.maxBackoffMs, this.initialBackoffMs * 2 ** attempt);
    return Math.floor(cap / 2 + (this.random() * cap) / 2);
  }

  private backoff(next: () => void): void {
    if (this.stopped) return;
    this.state = 'backoff';
    const delay = this.backoffDelay(this.attempt);
    this.attempt++;
    const generation = ++this.generation;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (generation === this.generation && !this.stopped) next();
    }, delay);
    this.timer.unref?.();
  }

  private replace(items: T[]): void {
    const seen = new Set<string>();
    const changes: Change<T>[] = [];
    for (const object of items) {
      const key = objectKey(object);
      seen.add(key);
      const old = this.store.get(key);
      this.store.set(key, object);
      if (!old) changes.push({ type: 'added', object });
      else if (old.metadata.resourceVersion !== object.metadata.resourceVersion)
        changes.push({ type: 'modified', object, old });
    }
    for (const [key, old] of this.store) {
      if (seen.has(key)) continue;
      this.store.delete(key);
      changes.push({ type: 'deleted', object: old, old });
    }
    for (const change of changes) this.emit(change);
  }

  private transform(object: T): T {
    return this.options.transform ? this.options.transform(object) : object;
  }

  private emit(change: Change<T>): void {
    for (const listener of this.listeners) {
      try {
        listener(change);
      } catch (err) {
        this.log('warn', `${this.name} change listener threw`, err);
      }
    }
  }

  private clearTimers(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.inactivity) clearTimeout(this.inactivity);
    this.timer = undefined;
    this.inactivity = undefined;
  }

  private log(level: 'debug' | 'warn', message: string, err?: unknown): void {
    this.options.log?.(level, message, err);
  }
}

/** The HTTP transport: `GET path` to list, `GET path?watch=1&resourceVersion=…` to watch. */
export function httpTransport<T>(
  client: KubeClient,
  path: string,
  selectors: { labelSelector?: string; fieldSelector?: string } = {},
): WatchTransport<T> {
  return {
    async list() {
      const res = await client.get<{ items?: T[]; metadata?: { resourceVersion?: string } }>(path, {
        query: { ...selectors },
        timeoutMs: 60_000,
      });
      return { items: res.items ?? [], resourceVersion: res.metadata?.resourceVersion ?? '' };
    },
    watch(resourceVersion, timeoutSeconds, onEvent, onClose) {
      return client.stream(
        path,
        {
          ...selectors,
          watch: 1,
          resourceVersion,
          allowWatchBookmarks: true,
          timeoutSeconds,
        },
        (line) => onEvent(line as WatchEvent),
        onClose,
      );
    },
  };
}
