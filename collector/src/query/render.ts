/**
 * The query response, built as text: each stored event is spliced in exactly as stored (it is
 * canonical JSON, checked at ingest), never parsed and re-serialized, so what a reader parses back
 * has the canonical text the chain hash covers.
 */
import type { ChainMarker, StoredEvent } from '../store/types.js';

export function renderEventPage(
  events: readonly StoredEvent[],
  markers: readonly ChainMarker[],
  nextCursor: string | null,
): string {
  // `stream` and `seq` are where the store holds the event (its columns), beside the event's own
  // claim inside it: `byline verify` compares the two to find events moved or reordered.
  const items = events.map(
    (e) =>
      `{"event":${e.json},"receivedAt":${JSON.stringify(e.receivedAt)},"stream":${JSON.stringify(e.key.stream)},"seq":${e.key.seq}}`,
  );
  return `{"events":[${items.join(',')}],"markers":${JSON.stringify(markers)},"nextCursor":${JSON.stringify(nextCursor)}}`;
}
