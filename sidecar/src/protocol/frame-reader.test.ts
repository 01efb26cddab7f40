import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { type MessageHandler, MessageReader, Verdict } from './frame-reader.js';

function msg(type: string, body: Buffer | string): Buffer {
  const b = typeof body === 'string' ? Buffer.from(body) : body;
  const out = Buffer.alloc(5 + b.length);
  out[0] = type.charCodeAt(0);
  out.writeInt32BE(4 + b.length, 1);
  b.copy(out, 5);
  return out;
}

function startup(params: string): Buffer {
  const body = Buffer.from(params);
  const out = Buffer.alloc(8 + body.length);
  out.writeInt32BE(out.length, 0);
  out.writeInt32BE(196608, 4);
  body.copy(out, 8);
  return out;
}

interface Seen {
  messages: string[];
  streamed: string[];
  forwarded: Buffer[];
  errors: string[];
}

function reader(options: { drop?: string; stopAt?: string; untyped?: boolean; max?: number } = {}) {
  const seen: Seen = { messages: [], streamed: [], forwarded: [], errors: [] };
  let r: MessageReader;
  const handler: MessageHandler = {
    onMessage(type, buf, start, end) {
      const text = `${String.fromCharCode(type || 0x30)}:${buf.toString('latin1', start, end)}`;
      seen.messages.push(text);
      if (type === 0) r.untyped = false; // the startup message ends the untyped phase
      if (options.stopAt && String.fromCharCode(type) === options.stopAt) return Verdict.stop;
      if (options.drop && String.fromCharCode(type) === options.drop) {
        r.inject(Buffer.from('<replaced>'));
        return Verdict.drop;
      }
      return Verdict.forward;
    },
    onStreamed(type, bodyLength) {
      seen.streamed.push(`${String.fromCharCode(type)}:${bodyLength}`);
    },
    onFramingError(reason) {
      seen.errors.push(reason);
    },
  };
  r = new MessageReader(handler, { push: (b) => seen.forwarded.push(Buffer.from(b)) }, options.max ?? 1 << 20, {
    untyped: options.untyped ?? false,
    streamedTypes: 'dD',
  });
  return { r, seen };
}

const stream = Buffer.concat([
  startup('user\0u\0database\0d\0\0'),
  msg('Q', 'select 1;\0'),
  msg('P', '\0select $1\0\0\0'),
  msg('d', Buffer.alloc(3000, 7)),
  msg('S', ''),
  msg('d', ''),
  msg('X', ''),
]);

function feed(chunks: Buffer[], options: Parameters<typeof reader>[0] = {}) {
  const { r, seen } = reader({ untyped: true, ...options });
  for (const c of chunks) r.push(c);
  return seen;
}

const whole = feed([stream]);

describe('MessageReader', () => {
  test('frames a whole stream and forwards it unchanged as one view', () => {
    expect(whole.messages.map((m) => m[0])).toEqual(['0', 'Q', 'P', 'S', 'X']);
    expect(whole.streamed).toEqual(['d:3000', 'd:0']);
    expect(whole.forwarded).toHaveLength(1);
    expect(Buffer.concat(whole.forwarded).equals(stream)).toBe(true);
  });

  test('splitting the input at every offset gives the same messages and bytes', () => {
    for (let i = 1; i < stream.length; i++) {
      const seen = feed([stream.subarray(0, i), stream.subarray(i)]);
      expect(seen.messages, `split at ${i}`).toEqual(whole.messages);
      expect(seen.streamed, `split at ${i}`).toEqual(whole.streamed);
      expect(Buffer.concat(seen.forwarded).equals(stream), `split at ${i}`).toBe(true);
    }
  });

  test('any chunking gives the same messages and bytes, also when a message is replaced', () => {
    const replaced = feed([stream], { drop: 'P' });
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: stream.length - 1 }), { maxLength: 12 }), (cuts) => {
        const points = [...new Set(cuts)].sort((a, b) => a - b);
        const chunks: Buffer[] = [];
        let prev = 0;
        for (const p of points) {
          chunks.push(stream.subarray(prev, p));
          prev = p;
        }
        chunks.push(stream.subarray(prev));
        const seen = feed(chunks, { drop: 'P' });
        expect(seen.messages).toEqual(replaced.messages);
        expect(Buffer.concat(seen.forwarded).equals(Buffer.concat(replaced.forwarded))).toBe(true);
      }),
    );
    const out = Buffer.concat(replaced.forwarded).toString('latin1');
    expect(out).toContain('<replaced>');
    expect(out).not.toContain('select $1');
  });

  test('stopping forwards what came before and nothing after', () => {
    for (let i = 1; i < stream.length; i++) {
      const seen = feed([stream.subarray(0, i), stream.subarray(i)], { stopAt: 'P' });
      const bytes = Buffer.concat(seen.forwarded).toString('latin1');
      expect(bytes.endsWith('select 1;\0'), `split at ${i}`).toBe(true);
      expect(seen.messages.map((m) => m[0])).toEqual(['0', 'Q', 'P']);
    }
  });

  test('a length above the limit is refused before it is buffered', () => {
    const big = msg('Q', Buffer.alloc(5000, 0x41));
    const seen = feed([Buffer.concat([msg('S', ''), big.subarray(0, 10)])], { untyped: false, max: 4096 });
    expect(seen.errors).toEqual(["message of type 'Q' is 5005 bytes, above the limit of 4096"]);
    expect(Buffer.concat(seen.forwarded).equals(msg('S', ''))).toBe(true);
  });

  test('a length below the header size is a framing error, also for streamed types', () => {
    const bad = Buffer.from([0x64, 0, 0, 0, 2]);
    expect(feed([bad], { untyped: false }).errors).toEqual(['invalid message length 2']);
    expect(feed([Buffer.from([0, 0, 0, 3, 0, 0])]).errors).toEqual(['invalid message length 3']);
  });

  test('an oversized startup packet is refused', () => {
    const b = Buffer.alloc(8);
    b.writeInt32BE(20_000, 0);
    expect(feed([b]).errors[0]).toMatch(/startup packet of 20000 bytes/);
  });

  test('streamed messages of any size pass without being buffered', () => {
    const big = msg('D', Buffer.alloc(5_000_000, 1));
    const seen = feed([big.subarray(0, 3), big.subarray(3, 100_000), big.subarray(100_000)], {
      untyped: false,
      max: 4096,
    });
    expect(seen.errors).toEqual([]);
    expect(seen.streamed).toEqual(['D:5000000']);
    expect(Buffer.concat(seen.forwarded).equals(big)).toBe(true);
  });
});
