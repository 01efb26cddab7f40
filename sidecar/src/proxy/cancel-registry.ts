/**
 * Cancel keys. Clients see Postgres's real backend pid (so pg_backend_pid(), NotificationResponse
 * and pg_terminate_backend agree with BackendKeyData) but a secret key issued by the sidecar, never
 * Postgres's own: a CancelRequest must come through the sidecar, which maps the issued key back
 * to the upstream one and to the upstream of the session that received it.
 *
 * Shared by every route, so entries are keyed by (pid, key): two routes' Postgres servers may
 * hand out the same pid.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { UpstreamConfig } from '@byline/api';
import type { CancelKey } from '../protocol/messages.js';

export interface CancelTarget {
  /** Where the session's own upstream connection went. */
  upstream: UpstreamConfig;
  /** Postgres's real key for that connection. */
  key: CancelKey;
}

interface Entry {
  key: Buffer;
  target: CancelTarget;
}

export class CancelRegistry {
  private readonly byPid = new Map<number, Entry[]>();
  private count = 0;

  /**
   * The key the client gets: Postgres's pid, and a fresh secret of the same length as Postgres's
   * (4 bytes in protocol 3.0, up to 256 in 3.2).
   */
  issue(target: CancelTarget): CancelKey {
    const pid = target.key.pid;
    let entries = this.byPid.get(pid);
    if (!entries) {
      entries = [];
      this.byPid.set(pid, entries);
    }
    let key: Buffer;
    do key = randomBytes(target.key.key.length);
    while (entries.some((e) => e.key.equals(key)));
    entries.push({ key, target });
    this.count += 1;
    return { pid, key };
  }

  release(issued: CancelKey): void {
    const entries = this.byPid.get(issued.pid);
    if (!entries) return;
    const i = entries.findIndex((e) => e.key.equals(issued.key));
    if (i < 0) return;
    entries.splice(i, 1);
    this.count -= 1;
    if (entries.length === 0) this.byPid.delete(issued.pid);
  }

  /** The upstream target for a presented key, compared in constant time. */
  resolve(presented: CancelKey): CancelTarget | undefined {
    const entries = this.byPid.get(presented.pid);
    if (!entries) return undefined;
    let found: CancelTarget | undefined;
    for (const e of entries) {
      if (e.key.length === presented.key.length && timingSafeEqual(e.key, presented.key)) found = e.target;
    }
    return found;
  }

  get size(): number {
    return this.count;
  }
}
