/**
 * Kubernetes Events (events.k8s.io/v1) for condition transitions. Reconcilers record one only when
 * they write a changed condition, so a steady state emits nothing; on top of that an in-memory
 * window drops the same (object, reason, note) seen recently, which covers retried writes.
 */
import type { KubeClient } from '../kube/client.js';

export interface Regarding {
  apiVersion: string;
  kind: string;
  name: string;
  namespace: string;
  uid?: string;
  resourceVersion?: string;
}

export interface EventRecorderOptions {
  client: KubeClient;
  /** This replica, e.g. the pod name (events.k8s.io reportingInstance). */
  instance: string;
  dedupeWindowMs?: number;
  now?: () => Date;
  log?: (message: string, err: unknown) => void;
}

export const REPORTING_CONTROLLER = 'byline.dev/operator';
const MAX_REMEMBERED = 4096;

/** MicroTime as the API server wants it: RFC 3339 with six fractional digits. */
export const microTime = (d: Date): string => d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');

let sequence = 0;
function eventName(object: string, now: Date): string {
  const suffix = (BigInt(now.getTime()) * 1_000_000n + BigInt(sequence++ % 1_000_000)).toString(16);
  return `${object.slice(0, 253 - suffix.length - 1)}.${suffix}`;
}

export class EventRecorder {
  private readonly recent = new Map<string, number>();
  private readonly window: number;
  private readonly now: () => Date;

  constructor(private readonly options: EventRecorderOptions) {
    this.window = options.dedupeWindowMs ?? 10 * 60_000;
    this.now = options.now ?? (() => new Date());
  }

  /** Posts the event unless an identical one went out within the window; never throws. */
  async record(regarding: Regarding, type: 'Normal' | 'Warning', reason: string, note: string): Promise<boolean> {
    const key = `${regarding.uid ?? `${regarding.kind}/${regarding.namespace}/${regarding.name}`}|${type}|${reason}|${note}`;
    const now = this.now();
    const last = this.recent.get(key);
    if (last !== undefined && now.getTime() - last < this.window) return false;
    this.remember(key, now.getTime());
    const body = {
      apiVersion: 'events.k8s.io/v1',
      kind: 'Event',
      // client-go's naming: <object>.<hex nanoseconds>; a generateName ending in "." is refused.
      metadata: { name: eventName(regarding.name, now), namespace: regarding.namespace },
      eventTime: microTime(now),
      reportingController: REPORTING_CONTROLLER,
      reportingInstance: this.options.instance,
      action: 'Reconcile',
      type,
      reason,
      // The API server caps a note at 1 kB.
      note: note.length > 1024 ? `${note.slice(0, 1021)}...` : note,
      regarding,
    };
    try {
      await this.options.client.create(`/apis/events.k8s.io/v1/namespaces/${regarding.namespace}/events`, body);
      return true;
    } catch (err) {
      this.recent.delete(key);
      this.options.log?.(`recording event ${reason} for ${regarding.kind} ${regarding.name} failed`, err);
      return false;
    }
  }

  private remember(key: string, at: number): void {
    this.recent.delete(key);
    this.recent.set(key, at);
    if (this.recent.size > MAX_REMEMBERED) {
      const oldest = this.recent.keys().next().value;
      if (oldest !== undefined) this.recent.delete(oldest);
    }
  }
}
