import type { ChainMarker, StreamSummary } from './types.js';

/** Streams with their open markers attached (both stores read the two separately). */
export function withOpenMarkers(
  streams: readonly Omit<StreamSummary, 'openMarkers'>[],
  open: readonly ChainMarker[],
): StreamSummary[] {
  const byStream = new Map<string, ChainMarker[]>();
  for (const m of open) {
    const list = byStream.get(m.stream);
    if (list) list.push(m);
    else byStream.set(m.stream, [m]);
  }
  return streams.map((s) => ({ ...s, openMarkers: byStream.get(s.stream) ?? [] }));
}
