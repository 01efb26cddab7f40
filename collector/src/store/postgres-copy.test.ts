import { describe, expect, test } from 'vitest';
import { copyRow, copyValue } from './postgres-copy.js';

describe("COPY's text format", () => {
  test('null is \\N, numbers as written, plain text unchanged', () => {
    expect(copyValue(null)).toBe('\\N');
    expect(copyValue(1764212400123456)).toBe('1764212400123456');
    expect(copyValue('{"a":"b c"}')).toBe('{"a":"b c"}');
  });

  test('backslash, newline, carriage return and tab are escaped, so no value can end a column or a row', () => {
    expect(copyValue('a\\b\nc\rd\te')).toBe('a\\\\b\\nc\\rd\\te');
    // A JSON line's escapes stay escapes once the server has read them back.
    expect(copyValue('{"text":"say \\"hi\\"\\n"}')).toBe('{"text":"say \\\\"hi\\\\"\\\\n"}');
    // The literal two characters \N are text, not null.
    expect(copyValue('\\N')).toBe('\\\\N');
  });

  test('a row is its values tab-separated, ended by a newline', () => {
    expect(copyRow(['x', 2, null, 'tab\there'])).toBe('x\t2\t\\N\ttab\\there\n');
  });
});
