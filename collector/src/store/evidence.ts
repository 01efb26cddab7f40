/**
 * The store-independent halves of stream ownership and of the evidence `byline verify` reads.
 * Pure; both stores run them on what they read.
 */
import type { RegisteredKey, Retirement, SignedHead, StreamEvidence } from '@byline/api';
import { type ChainMarker, type IngestEvent, StreamOwnerError } from './types.js';

/** A stored stream's owner; for one opened before owners were recorded, the identity its events carry. */
export interface StoredOwner {
  owner: string | null;
  identity: string | null;
}

/**
 * Throws unless `owner` may append to every stream of the batch (`ownerOf`: undefined for a new
 * stream). A stream opened before owners were recorded is taken by its next writer, but only by
 * one writing for the identity its stored events carry.
 */
export function checkOwnership(
  events: readonly IngestEvent[],
  ownerOf: (stream: string) => StoredOwner | undefined,
  owner: string,
): void {
  const checked = new Set<string>();
  for (const e of events) {
    if (checked.has(e.stream)) continue;
    checked.add(e.stream);
    const stored = ownerOf(e.stream);
    if (!stored) continue;
    if (stored.owner !== null) {
      if (stored.owner !== owner) throw new StreamOwnerError(e.stream, stored.owner, owner);
    } else if (stored.identity !== null && stored.identity !== e.identity) {
      const legacy = `the identity "${stored.identity}" (opened before stream owners were recorded)`;
      throw new StreamOwnerError(e.stream, legacy, owner);
    }
  }
}

export interface KeyRow extends RegisteredKey {
  stream: string;
}

export function assembleEvidence(
  streams: readonly string[],
  lastSeqs: ReadonlyMap<string, number>,
  markers: readonly ChainMarker[],
  keys: readonly KeyRow[],
  heads: readonly SignedHead[],
  retirements: ReadonlyMap<string, Retirement> = new Map(),
): StreamEvidence[] {
  const out = new Map<string, StreamEvidence & { markers: StreamEvidence['markers'][number][] }>();
  for (const stream of streams) {
    const lastSeq = lastSeqs.get(stream);
    const retired = retirements.get(stream);
    out.set(stream, {
      stream,
      ...(lastSeq !== undefined ? { lastSeq } : {}),
      ...(retired ? { retired } : {}),
      markers: [],
      keys: [],
      heads: [],
    });
  }
  for (const m of markers) {
    out.get(m.stream)?.markers.push({ seq: m.seq, kind: m.kind, detail: m.detail, resolvedAt: m.resolvedAt });
  }
  for (const { stream, ...key } of keys) (out.get(stream)?.keys as RegisteredKey[] | undefined)?.push(key);
  for (const h of heads) (out.get(h.stream)?.heads as SignedHead[] | undefined)?.push(h);
  return [...out.values()];
}
