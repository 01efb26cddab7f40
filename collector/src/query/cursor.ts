/** Opaque page cursors: the sort key of the last event of a page, as base64url JSON. */
import type { CursorKey } from '../store/types.js';

export function encodeCursor(k: CursorKey): string {
  return Buffer.from(JSON.stringify([k.timeUs, k.stream, k.seq, k.id])).toString('base64url');
}

export function decodeCursor(text: string): CursorKey | undefined {
  if (!/^[A-Za-z0-9_-]{1,2048}$/.test(text)) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (!Array.isArray(v) || v.length !== 4) return undefined;
  const [timeUs, stream, seq, id] = v as unknown[];
  if (!Number.isSafeInteger(timeUs) || !Number.isSafeInteger(seq)) return undefined;
  if (typeof stream !== 'string' || typeof id !== 'string') return undefined;
  return { timeUs: timeUs as number, stream, seq: seq as number, id };
}
