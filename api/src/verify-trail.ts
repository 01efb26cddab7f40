/**
 * Re-checks hash chains from stored events alone. Each stored event is given with the position
 * the store holds it at (stream and seq columns) and its exact text; for every stream, walked in
 * position order:
 *
 *  - edited:    the text no longer hashes to its own `chain.hash`;
 *  - moved:     the text sits at a position other than its own `chain.stream`/`chain.seq`
 *               (two of these swapped is a reordering);
 *  - removed:   positions are missing between the first and the last event;
 *  - unlinked:  `chain.prev` is not the hash of the event before it.
 */
import type { AuditEvent } from './audit-event.js';
import { chainHash } from './chain.js';

export interface StoredPosition {
  stream: string;
  seq: number;
  /** The stored text (canonical JSON). */
  json: string;
}

export type TrailProblem =
  | { kind: 'unparsable'; stream: string; seq: number; detail: string }
  | { kind: 'edited'; stream: string; seq: number; id: string }
  | { kind: 'moved'; stream: string; seq: number; id: string; claims: { stream: string; seq: number } }
  | { kind: 'removed'; stream: string; from: number; to: number }
  | { kind: 'unlinked'; stream: string; seq: number; id: string };

export interface TrailReport {
  streams: number;
  events: number;
  problems: TrailProblem[];
}

export function verifyTrail(stored: Iterable<StoredPosition>): TrailReport {
  const byStream = new Map<string, StoredPosition[]>();
  let events = 0;
  for (const s of stored) {
    events++;
    const list = byStream.get(s.stream);
    if (list) list.push(s);
    else byStream.set(s.stream, [s]);
  }
  const problems: TrailProblem[] = [];
  for (const [stream, list] of byStream) {
    list.sort((a, b) => a.seq - b.seq);
    // The event before, if it stands where it belongs (a link to a moved event proves nothing).
    let previous: { seq: number; hash: string; inPlace: boolean } | null = null;
    for (const s of list) {
      let event: AuditEvent;
      try {
        event = JSON.parse(s.json) as AuditEvent;
        if (!event?.chain || typeof event.chain.hash !== 'string') throw new Error('no chain');
      } catch (e) {
        problems.push({ kind: 'unparsable', stream, seq: s.seq, detail: (e as Error).message });
        previous = null;
        continue;
      }
      if (previous && s.seq > previous.seq + 1)
        problems.push({ kind: 'removed', stream, from: previous.seq + 1, to: s.seq - 1 });
      let inPlace = false;
      if (chainHash(event) !== event.chain.hash) {
        problems.push({ kind: 'edited', stream, seq: s.seq, id: event.id });
      } else if (event.chain.stream !== stream || event.chain.seq !== s.seq) {
        problems.push({
          kind: 'moved',
          stream,
          seq: s.seq,
          id: event.id,
          claims: { stream: event.chain.stream, seq: event.chain.seq },
        });
      } else {
        inPlace = true;
        if (previous?.inPlace && s.seq === previous.seq + 1 && event.chain.prev !== previous.hash) {
          problems.push({ kind: 'unlinked', stream, seq: s.seq, id: event.id });
        }
      }
      previous = { seq: s.seq, hash: event.chain.hash, inPlace };
    }
  }
  return { streams: byStream.size, events, problems };
}

export function describeProblem(p: TrailProblem): string {
  switch (p.kind) {
    case 'unparsable':
      return `stream ${p.stream} seq ${p.seq}: the stored event is not a readable AuditEvent (${p.detail})`;
    case 'edited':
      return `stream ${p.stream} seq ${p.seq}: event ${p.id} was edited (its content no longer matches its hash)`;
    case 'moved':
      return `stream ${p.stream} seq ${p.seq}: event ${p.id} was moved or reordered (it belongs at stream ${p.claims.stream} seq ${p.claims.seq})`;
    case 'removed':
      return p.from === p.to
        ? `stream ${p.stream} seq ${p.from}: an event was removed`
        : `stream ${p.stream} seq ${p.from}–${p.to}: ${p.to - p.from + 1} events were removed`;
    case 'unlinked':
      return `stream ${p.stream} seq ${p.seq}: event ${p.id} does not link to the event before it (replaced or reordered)`;
  }
}
