/**
 * Spool records on disk: `u32 length | u32 crc32 | u8 type | payload` (big-endian; length counts
 * type + payload, the CRC covers the same bytes). A record is whole or it is not there: a crash
 * mid-write leaves a torn tail that fails its length or CRC check and is cut off on recovery.
 *
 * Damage in the middle (a flipped byte) costs only the records it touches: the reader
 * resynchronizes on the next valid frame. Every payload is JSON, which never holds a raw byte
 * below 0x0A (JSON escapes control characters; only the `\n` between event lines is raw), so a
 * frame whose length starts with such a byte cannot be text inside another record: resyncing
 * accepts only those (records under 160 MiB), and only when the frame after it is whole too
 * (or it ends the segment).
 */
import { crc32 } from 'node:zlib';

export const RecordType = {
  /** A session's identity and target, so a recovered statement can be attributed. */
  session: 0x53, // S
  /** A statement about to be forwarded to Postgres. */
  begin: 0x42, // B
  /** Finished events (canonical JSON lines), completing at most one begin record. */
  events: 0x45, // E
  /** The chain position at the start of a segment. */
  chain: 0x43, // C
  /**
   * A policy decision, written once per segment before the first begin record that refers to it
   * by its id (begin records carry ids, not the decision: most statements share a few decisions).
   */
  decision: 0x44, // D
} as const;
export type RecordTypeCode = (typeof RecordType)[keyof typeof RecordType];

const HEADER = 9;
/** Bytes before a record's payload (length, CRC, type). */
export const RECORD_HEADER_BYTES = HEADER;
/** A record larger than this is corruption, not data (statements are bounded by maxMessageBytes). */
export const MAX_RECORD_BYTES = 1 << 30;

export function encodeRecord(type: RecordTypeCode, payload: string): Buffer {
  const body = Buffer.byteLength(payload, 'utf8');
  const out = Buffer.allocUnsafe(HEADER + body);
  out.writeUInt32BE(1 + body, 0);
  out[8] = type;
  out.write(payload, HEADER, 'utf8');
  out.writeUInt32BE(crc32(out.subarray(8)), 4);
  return out;
}

export interface DecodedRecord {
  type: RecordTypeCode;
  payload: string;
  /** Offset of the record's first byte, and of the byte after it. */
  start: number;
  end: number;
}

/** A byte range [start, end) of a segment. */
export interface ByteRange {
  start: number;
  end: number;
}

const TYPES = new Set<number>(Object.values(RecordType));
/** Resync candidates: a length whose first byte is below 0x0A (see above). */
const RESYNC_MAX_LENGTH = 0x0a000000;

/** The end of the valid frame at `pos`, or -1. */
function frameEnd(buf: Buffer, pos: number, maxLength: number): number {
  if (pos + HEADER > buf.length) return -1;
  const length = buf.readUInt32BE(pos);
  if (length < 1 || length > maxLength || pos + 8 + length > buf.length) return -1;
  if (!TYPES.has(buf[pos + 8]!)) return -1;
  if (crc32(buf.subarray(pos + 8, pos + 8 + length)) !== buf.readUInt32BE(pos + 4)) return -1;
  return pos + 8 + length;
}

/** The next place after `from` where a run of valid frames begins, or -1. */
function resync(buf: Buffer, from: number): number {
  for (let q = from; q + HEADER <= buf.length; q++) {
    if (buf[q]! >= 0x0a) continue;
    const end = frameEnd(buf, q, RESYNC_MAX_LENGTH);
    if (end < 0) continue;
    if (end === buf.length || frameEnd(buf, end, MAX_RECORD_BYTES) >= 0) return q;
  }
  return -1;
}

/**
 * Every whole record in `buf` from `offset` on. Damaged ranges in the middle are skipped and
 * listed; `validEnd` is where the last whole record ends (`validEnd < buf.length`: a torn or
 * damaged tail with nothing valid after it). `text` false: payloads are left undecoded ('') for a
 * caller that takes the bytes from `buf` itself.
 */
export function decodeRecords(
  buf: Buffer,
  offset = 0,
  text = true,
): { records: DecodedRecord[]; damaged: ByteRange[]; validEnd: number } {
  const records: DecodedRecord[] = [];
  const damaged: ByteRange[] = [];
  let pos = offset;
  while (pos < buf.length) {
    const end = frameEnd(buf, pos, MAX_RECORD_BYTES);
    if (end < 0) {
      const next = resync(buf, pos + 1);
      if (next < 0) break;
      damaged.push({ start: pos, end: next });
      pos = next;
      continue;
    }
    records.push({
      type: buf[pos + 8] as RecordTypeCode,
      payload: text ? buf.toString('utf8', pos + 9, end) : '',
      start: pos,
      end,
    });
    pos = end;
  }
  return { records, damaged, validEnd: pos };
}
