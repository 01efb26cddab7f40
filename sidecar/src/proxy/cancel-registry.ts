/**
 * Cancel keys. Clients get a BackendKeyData issued by the sidecar, never Postgres's own, so a
 * CancelRequest must come through the sidecar; this maps the issued key to the upstream one.
 */
import { randomBytes, randomInt, timingSafeEqual } from 'node:crypto';
import type { CancelKey } from '../protocol/messages.js';

export interface CancelTarget {
  routeName: string;
  upstream: CancelKey;
}

export class CancelRegistry {
  private readonly byPid = new Map<number, { key: Buffer; target: CancelTarget }>();

  /** Issues a key of the same length as the upstream one (4 bytes in protocol 3.0, up to 256 in 3.2). */
  issue(target: CancelTarget): CancelKey {
    let pid: number;
    do pid = randomInt(1, 0x7fffffff);
    while (this.byPid.has(pid));
    const key = randomBytes(target.upstream.key.length);
    this.byPid.set(pid, { key, target });
    return { pid, key };
  }

  release(pid: number): void {
    this.byPid.delete(pid);
  }

  /** The upstream target for a presented key, compared in constant time. */
  resolve(presented: CancelKey): CancelTarget | undefined {
    const entry = this.byPid.get(presented.pid);
    if (!entry || entry.key.length !== presented.key.length) return undefined;
    return timingSafeEqual(entry.key, presented.key) ? entry.target : undefined;
  }

  get size(): number {
    return this.byPid.size;
  }
}
