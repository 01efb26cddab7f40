import { describe, expect, it } from 'vitest';
import {
  blockCommentEnd,
  dollarTagEnd,
  numberEnd,
  QUOTE_ESCAPE,
  QUOTE_PLAIN,
  QUOTE_STANDARD,
  quotedIdentEnd,
  skipTrivia,
  stringEnd,
} from './scan.js';

describe('scan primitives', () => {
  it.each<[string, number]>([
    ['1', 1],
    ['1_000', 5],
    ['1__0', 1],
    ['1.5', 3],
    ['1.', 2],
    ['.5', 2],
    ['1..2', 1],
    ['1e5', 3],
    ['1E+5', 4],
    ['1e', 1],
    ['1.5e-3x', 6],
    ['0x1F', 4],
    ['0X_ff', 5],
    ['0o17', 4],
    ['0b101', 5],
    ['0b2', 1],
    ['0x', 1],
  ])('numberEnd(%j) = %i', (text, end) => {
    expect(numberEnd(text, 0)).toBe(end);
  });

  it.each<[string, number]>([
    ['$$', 2],
    ['$a$', 3],
    ['$_a1$', 5],
    ['$é$', 3],
    ['$1$', -1],
    ['$a', -1],
    ['$a-$', -1],
    ['$a$b$', 3],
  ])('dollarTagEnd(%j) = %i', (text, end) => {
    expect(dollarTagEnd(text, 0)).toBe(end);
  });

  it.each<[string, number, number]>([
    ["'a'", QUOTE_STANDARD, 3],
    ["'a''b' x", QUOTE_STANDARD, 6],
    ["'\\' x", QUOTE_STANDARD, 3],
    ["'\\'' x", QUOTE_ESCAPE, 4],
    ["'\\\\' x", QUOTE_ESCAPE, 4],
    ["'a'\n'b' x", QUOTE_STANDARD, 7],
    ["'a' \r\n\t 'b'", QUOTE_STANDARD, 11],
    ["'a' 'b'", QUOTE_STANDARD, 3],
    // Checked against Postgres: `--` comments may sit in a continuation, block comments may not.
    ["'a'\n-- c\n'b' x", QUOTE_STANDARD, 12],
    ["'a' -- c\n'b' x", QUOTE_STANDARD, 12],
    ["'a'\n/* c */\n'b'", QUOTE_STANDARD, 3],
    ["'a'\n-- c", QUOTE_STANDARD, 3],
    ["'a''b' x", QUOTE_PLAIN, 3],
    ["'a\\'b' x", QUOTE_PLAIN, 4],
    ["'abc", QUOTE_STANDARD, -1],
    ["'a\\'", QUOTE_ESCAPE, -1],
  ])('stringEnd(%j, mode %i) = %i', (text, mode, end) => {
    expect(stringEnd(text, 0, mode)).toBe(end);
  });

  it('finds the ends of quoted identifiers and nested comments', () => {
    expect(quotedIdentEnd('"a""b" x', 0)).toBe(6);
    expect(quotedIdentEnd('"a', 0)).toBe(-1);
    expect(blockCommentEnd('/* /* */ */ x', 0)).toBe(11);
    expect(blockCommentEnd('/*/ */ x', 0)).toBe(6);
    expect(blockCommentEnd('/* /* */', 0)).toBe(-1);
    expect(skipTrivia(' -- a\n /* b */ x', 0)).toBe(15);
    expect(skipTrivia(' /* b', 0)).toBe(5);
  });
});
