/**
 * The store-independent halves of stream ownership and of the evidence `byline verify` reads.
 * Pure; both stores run them on what they read.
 */
import type { RegisteredKey, SignedHead, StreamEvidence } from '@byline/api';
import { type ChainMarker, StreamOwnerError } from './types.js';

/** Throws unless `owner` may append to every stream of the batch (`ownerOf`: null for a stream no one owns yet). */
export function checkOwnership(streams: Iterable<string>, ownerOf: (stream: string) => string | null, owner: string) {
  for (const stream of streams) {
    const current = ownerOf(stream);
    if (current !== null && current !== owner) throw new StreamOwnerError(stream, current, owner);
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
): StreamEvidence[] {
  const out = new Map<string, StreamEvidence & { markers: StreamEvidence['markers'][number][] }>();
  for (const stream of streams) {
    const lastSeq = lastSeqs.get(stream);
    out.set(stream, { stream, ...(lastSeq !== undefined ? { lastSeq } : {}), markers: [], keys: [], heads: [] });
  }
  for (const m of markers) {
    out.get(m.stream)?.markers.push({ seq: m.seq, kind: m.kind, detail: m.detail, resolvedAt: m.resolvedAt });
  }
  for (const { stream, ...key } of keys) (out.get(stream)?.keys as RegisteredKey[] | undefined)?.push(key);
  for (const h of heads) (out.get(h.stream)?.heads as SignedHead[] | undefined)?.push(h);
  return [...out.values()];
}
