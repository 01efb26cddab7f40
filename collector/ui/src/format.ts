/** How times and events are shown: in the reader's time zone, named on the page. */
import type { TrailEvent } from './events.js';

export function timeZoneLabel(now = new Date()): string {
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  const offset = -now.getTimezoneOffset();
  const sign = offset >= 0 ? '+' : '-';
  const abs = Math.abs(offset);
  const hh = String(Math.floor(abs / 60)).padStart(2, '0');
  const mm = String(abs % 60).padStart(2, '0');
  return `${zone} (UTC${sign}${hh}:${mm})`;
}

/** `2026-11-27 03:18:27.401` in the reader's zone (the event's own offset is in its JSON). */
export function formatTime(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return (
    `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ` +
    `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`
  );
}

export function formatDuration(us: number | null | undefined): string {
  if (us === null || us === undefined) return '';
  if (us < 1000) return `${us} µs`;
  if (us < 1_000_000) return `${(us / 1000).toFixed(1)} ms`;
  return `${(us / 1_000_000).toFixed(2)} s`;
}

/** One line for the statement column: the SQL, or what kind of session event it is. */
export function summary(e: TrailEvent): string {
  if (e.type === 'statement') return e.statement?.text ?? '';
  if (e.type === 'session.start') return `session started (${e.session.client ?? 'unknown client'})`;
  return 'session ended';
}
