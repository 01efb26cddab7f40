/**
 * Retention, the store-independent half: which prefix of a stream may go, and the checkpoint that
 * keeps the remainder verifiable. Only a prefix is ever retired (events 1..N of a stream), so the
 * remainder still starts with an event whose `chain.prev` is the checkpoint's hash.
 */
import { createHash } from 'node:crypto';
import type { Retirement } from '@byline/api';
import type { FollowPosition } from './follow-types.js';

/** Retention in days per namespace (`null`: events without one), and the default. */
export interface RetentionRules {
  days?: number;
  namespaces?: Record<string, number>;
  /**
   * With exporters configured: the position every one of them has delivered through. Events
   * stored after it are kept whatever their age, so retention never deletes what is still owed
   * to a receiver.
   */
  exportedThrough?: FollowPosition;
  /** Signs each new checkpoint (the collector's receipt key, when configured); stored beside it. */
  sign?: (stream: string, checkpoint: Retirement) => string;
}

/** The cutoff (µs) for a stream's namespace: events older than it may go; undefined keeps everything. */
export function cutoffFor(rules: RetentionRules, namespace: string | null, nowMs: number): number | undefined {
  const days = (namespace !== null ? rules.namespaces?.[namespace] : undefined) ?? rules.days;
  if (days === undefined) return undefined;
  return (nowMs - days * 86_400_000) * 1000;
}

/** The checkpoint after retiring `hashes` (the retired events' chain hashes in seq order) on top of `previous`. */
export function nextCheckpoint(
  previous: Retirement | undefined,
  throughSeq: number,
  hashes: readonly string[],
  retiredAt: string,
): Retirement {
  const digest = createHash('sha256');
  digest.update(previous?.digest ?? '');
  for (const h of hashes) digest.update(h);
  return {
    throughSeq,
    throughHash: hashes[hashes.length - 1]!,
    count: (previous?.count ?? 0) + hashes.length,
    digest: digest.digest('hex'),
    retiredAt,
  };
}

/** The checkpoint with the collector's signature, when the rules sign (a receipt key is configured). */
export function withSignature(rules: RetentionRules, stream: string, checkpoint: Retirement): Retirement {
  return rules.sign ? { ...checkpoint, signature: rules.sign(stream, checkpoint) } : checkpoint;
}

/** What one retirement pass did to one stream. */
export interface RetiredStream {
  stream: string;
  namespace: string | null;
  retired: number;
  checkpoint: Retirement;
}

/** The namespace a stream's events carry (null when none, or unreadable). */
export function namespaceOf(json: string): string | null {
  try {
    const ns = (JSON.parse(json) as { identity?: { namespace?: unknown } }).identity?.namespace;
    return typeof ns === 'string' ? ns : null;
  } catch {
    return null;
  }
}

/** One hash per seq, the first stored (a forked seq keeps the hash the stream's head would). */
export function firstPerSeq(rows: readonly { seq: number; hash: string }[]): string[] {
  const out: string[] = [];
  let last = -1;
  for (const r of rows) {
    if (r.seq !== last) out.push(r.hash);
    last = r.seq;
  }
  return out;
}
