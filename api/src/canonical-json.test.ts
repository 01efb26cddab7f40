import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { canonicalJson } from './canonical-json.js';

describe('canonicalJson (RFC 8785)', () => {
  test('sorts keys by UTF-16 code units, recursively, with no white space', () => {
    // The property-sorting example of RFC 8785 section 3.2.3.
    const input = {
      '\u20ac': 'Euro Sign',
      '\r': 'Carriage Return',
      '\ufb33': 'Hebrew Letter Dalet With Dagesh',
      '1': 'One',
      '\ud83d\ude00': 'Emoji: Grinning Face',
      '\u0080': 'Control',
      '\u00f6': 'Latin Small Letter O With Diaeresis',
    };
    const text = canonicalJson(input);
    const values = [...text.matchAll(/:"([^"]*)"/g)].map((m) => m[1]);
    expect(values).toEqual([
      'Carriage Return',
      'One',
      'Control',
      'Latin Small Letter O With Diaeresis',
      'Euro Sign',
      'Emoji: Grinning Face',
      'Hebrew Letter Dalet With Dagesh',
    ]);
    expect(canonicalJson({ b: [{ d: 1, c: 2 }], a: null })).toBe('{"a":null,"b":[{"c":2,"d":1}]}');
  });

  test('serializes numbers and strings as ECMAScript does', () => {
    expect(canonicalJson([1e21, 1e-7, 0.000001, -0, 333333333.3333333, 4.5, 2 ** 53])).toBe(
      '[1e+21,1e-7,0.000001,0,333333333.3333333,4.5,9007199254740992]',
    );
    expect(canonicalJson('\u2028 "q" \\ \u0001 é')).toBe('"\u2028 \\"q\\" \\\\ \\u0001 é"');
  });

  test('integer-like keys are ordered as strings, not as array indices', () => {
    expect(canonicalJson({ 10: 'a', 9: 'b', x: 'c' })).toBe('{"10":"a","9":"b","x":"c"}');
  });

  test('refuses what JSON cannot carry', () => {
    expect(() => canonicalJson({ a: Number.NaN })).toThrow(/non-finite/);
    expect(() => canonicalJson([() => 1])).toThrow(/function/);
  });

  test('the fast path (keys already sorted) and the general path agree on any JSON value', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const general = canonicalJson(JSON.parse(JSON.stringify(v)));
        // Rebuild every object with its keys pre-sorted, which takes the fast path.
        const presorted = JSON.parse(general);
        expect(canonicalJson(presorted)).toBe(general);
        expect(JSON.parse(general)).toEqual(JSON.parse(JSON.stringify(v)));
      }),
      { numRuns: 300 },
    );
  });
});
