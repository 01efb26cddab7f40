import { describe, expect, test } from 'vitest';
import { decodeStartup, encodeStartup, PROTOCOL_3_0 } from './messages.js';

/** A startup packet built by hand from raw parameter bytes. */
function packet(pairs: [Buffer, Buffer][]): Buffer {
  const body = Buffer.concat([
    ...pairs.flatMap(([k, v]) => [k, Buffer.from([0]), v, Buffer.from([0])]),
    Buffer.from([0]),
  ]);
  const head = Buffer.alloc(8);
  head.writeInt32BE(8 + body.length, 0);
  head.writeInt32BE(PROTOCOL_3_0, 4);
  return Buffer.concat([head, body]);
}

describe('startup packets are forwarded byte for byte', () => {
  const latin1 = Buffer.from([0x63, 0x61, 0x66, 0xe9]); // "café" in LATIN1: invalid UTF-8
  const sjis = Buffer.from([0x83, 0x5c]); // a Shift-JIS character whose second byte is a backslash

  test('decode then encode gives back the same bytes, whatever their encoding', () => {
    const original = packet([
      [Buffer.from('user'), Buffer.from('agent')],
      [Buffer.from('application_name'), latin1],
      [Buffer.from('options'), Buffer.concat([Buffer.from('-c search_path='), sjis])],
    ]);
    const decoded = decodeStartup(original, 0, original.length);
    expect(encodeStartup(decoded.protocol, decoded.pairs).equals(original)).toBe(true);
  });

  test('replaced values take their place; the others keep their bytes and order; missing ones are appended', () => {
    const original = packet([
      [Buffer.from('user'), Buffer.from('agent')],
      [Buffer.from('application_name'), latin1],
      [Buffer.from('user'), Buffer.from('again')],
    ]);
    const decoded = decodeStartup(original, 0, original.length);
    const out = encodeStartup(
      decoded.protocol,
      decoded.pairs,
      new Map([
        ['user', 'app_user'],
        ['database', 'orders'],
      ]),
    );
    expect(
      out.equals(
        packet([
          [Buffer.from('user'), Buffer.from('app_user')],
          [Buffer.from('application_name'), latin1],
          [Buffer.from('database'), Buffer.from('orders')],
        ]),
      ),
    ).toBe(true);
  });
});
