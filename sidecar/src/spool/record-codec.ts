/**
 * Spool records on disk: `u32 length | u32 crc32 | u8 type | payload` (big-endian; length counts
 * type + payload, the CRC covers the same bytes). A record is whole or it is not there: a crash
 * mid-write leaves a torn tail that fails its length or CRC check and is cut off on recovery.
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
} as const;
export type RecordTypeCode = (typeof RecordType)[keyof typeof RecordType];

const HEADER = 9;
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

/**
 * Every whole record in `buf` from `offset` on, and where the good bytes end (a torn or corrupt
 * record stops the scan there: `validEnd < buf.length` then says how much is to be cut off).
 */
export function decodeRecords(buf: Buffer, offset = 0): { records: DecodedRecord[]; validEnd: number } {
  const records: DecodedRecord[] = [];
  let pos = offset;
  while (pos + HEADER <= buf.length) {
    const length = buf.readUInt32BE(pos);
    if (length < 1 || length > MAX_RECORD_BYTES || pos + 8 + length > buf.length) break;
    const body = buf.subarray(pos + 8, pos + 8 + length);
    if (crc32(body) !== buf.readUInt32BE(pos + 4)) break;
    const type = body[0] as RecordTypeCode;
    if (!Object.values(RecordType).includes(type)) break;
    records.push({ type, payload: body.toString('utf8', 1), start: pos, end: pos + 8 + length });
    pos += 8 + length;
  }
  return { records, validEnd: pos };
}
