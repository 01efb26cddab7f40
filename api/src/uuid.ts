/**
 * UUIDv7 (RFC 9562): 48-bit Unix milliseconds, then random bits. Within one millisecond the
 * 12-bit `rand_a` field counts up (method 1 of section 6.2), so ids sort in creation order.
 */
import { randomFillSync } from 'node:crypto';

const pool = Buffer.alloc(16 * 256);
let poolOffset = pool.length;
let lastMs = -1;
let counter = 0;

export function uuidv7(now = Date.now()): string {
  if (poolOffset + 16 > pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const b = pool.subarray(poolOffset, poolOffset + 16);
  poolOffset += 16;
  if (now <= lastMs) {
    counter += 1;
    if (counter > 0xfff) {
      // Counter exhausted: borrow the next millisecond rather than repeat or go backwards.
      lastMs += 1;
      counter = 0;
    }
    now = lastMs;
  } else {
    lastMs = now;
    counter = b[6]! & 0x07; // random start, leaving room to count up
  }
  b.writeUIntBE(now, 0, 6);
  b[6] = 0x70 | (counter >> 8);
  b[7] = counter & 0xff;
  b[8] = 0x80 | (b[8]! & 0x3f);
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
