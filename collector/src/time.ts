/**
 * RFC 3339 times as integer microseconds since the epoch: the sort key for `time`. Comparing the
 * strings would misorder offsets (`+02:00`) and differing numbers of fraction digits.
 */
const RFC3339 = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})$/i;

/** Microseconds since 1970 (fraction digits past the sixth are dropped), or undefined if not RFC 3339. */
export function timeMicros(text: string): number | undefined {
  const m = RFC3339.exec(text);
  if (!m) return undefined;
  const ms = Date.parse(`${m[1]}T${m[2]}${m[4]!.toUpperCase()}`);
  if (Number.isNaN(ms)) return undefined;
  const fraction = Number((m[3] ?? '').slice(0, 6).padEnd(6, '0'));
  return ms * 1000 + fraction;
}
