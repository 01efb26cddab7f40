import { describe, expect, it } from 'vitest';
import { classify } from './classify.js';
import { splitStatements } from './lexer.js';
import { normalize } from './normalize.js';
import { SCAN_DEFAULT, SCS_OFF, tokenize } from './tokenizer.js';

const standard = { standardConformingStrings: true };
const escapes = { standardConformingStrings: false };
const kinds = (sql: string, settings = standard) =>
  tokenize(sql, settings).map((t) => [t.kind, sql.slice(t.offset, t.offset + t.length)]);

describe('tokenize', () => {
  it('yields kind, offset and length, comments included, whitespace skipped', () => {
    expect(tokenize("select 'a' -- c\n/* x /* y */ */ $1")).toEqual([
      { kind: 'word', offset: 0, length: 6 },
      { kind: 'string', offset: 7, length: 3 },
      { kind: 'comment', offset: 11, length: 4 },
      { kind: 'comment', offset: 16, length: 15 },
      { kind: 'param', offset: 32, length: 2 },
    ]);
  });

  it.each<[string, [string, string][], [string, string][]]>([
    // '…' takes backslash escapes only with standard_conforming_strings off.
    [
      "'a\\'' x",
      [['string', "'a\\'' x"]], // `\` is a character, `''` a quote: unterminated
      [
        ['string', "'a\\''"],
        ['word', 'x'],
      ],
    ],
    [
      "N'\\'' x",
      [['string', "N'\\'' x"]],
      [
        ['string', "N'\\''"],
        ['word', 'x'],
      ],
    ],
    // E'…' always takes them; B'…' and X'…' never, and `''` ends them.
    [
      "E'\\'' x",
      [
        ['string', "E'\\''"],
        ['word', 'x'],
      ],
      [
        ['string', "E'\\''"],
        ['word', 'x'],
      ],
    ],
    ["B'1\\'", [['string', "B'1\\'"]], [['string', "B'1\\'"]]],
    [
      "x'1F''0'",
      [
        ['string', "x'1F'"],
        ['string', "'0'"],
      ],
      [
        ['string', "x'1F'"],
        ['string', "'0'"],
      ],
    ],
  ])('%j: standard %j, escapes %j', (sql, onStandard, onEscapes) => {
    expect(kinds(sql, standard)).toEqual(onStandard);
    expect(kinds(sql, escapes)).toEqual(onEscapes);
  });

  it('reads prefixes only on one-letter words, like flex’s longest match', () => {
    expect(kinds("be'x'")).toEqual([
      ['word', 'be'],
      ['string', "'x'"],
    ]);
    expect(kinds('U&"a b" u&\'c\'')).toEqual([
      ['quotedIdent', 'U&"a b"'],
      ['string', "u&'c'"],
    ]);
  });

  it('continues strings over newlines and -- comments, as scan.l does', () => {
    expect(kinds("E'\\'' -- c\n'\\'' x")).toEqual([
      ['string', "E'\\'' -- c\n'\\''"],
      ['word', 'x'],
    ]);
    expect(kinds("'a' /* c */\n'b'")).toEqual([
      ['string', "'a'"],
      ['comment', '/* c */'],
      ['string', "'b'"],
    ]);
  });

  it('dollar quotes, identifiers with $, parameters and junk', () => {
    expect(kinds("$q$ $$ ' $q$ a$b$ $1x $ 1.5e3")).toEqual([
      ['dollarString', "$q$ $$ ' $q$"],
      ['word', 'a$b$'],
      ['param', '$1x'],
      ['op', '$'],
      ['number', '1.5e3'],
    ]);
  });

  it('treats non-ASCII characters as identifier characters, never as quotes', () => {
    expect(kinds("select E'ソ'")).toEqual([
      ['word', 'select'],
      ['string', "E'ソ'"],
    ]);
  });
});

describe('splitting, normalizing and classifying follow the setting', () => {
  const attack = "select 'a\\''; delete from customers where id = 20; --'";

  it('splits the backslash attack in two only when backslashes escape', () => {
    expect(splitStatements(attack, SCAN_DEFAULT).map((s) => s.text)).toEqual([attack]);
    expect(splitStatements(attack, SCS_OFF).map((s) => s.text)).toEqual([
      "select 'a\\''",
      'delete from customers where id = 20',
    ]);
  });

  it('keeps semicolons inside parentheses in their statement', () => {
    const rule = 'create rule r as on delete to t do instead (delete from u where id = old.id; notify t)';
    expect(splitStatements(`${rule}; select 1`).map((s) => s.text)).toEqual([rule, 'select 1']);
  });

  it('normalizes and classifies with the same rule', () => {
    const sql = "select 'x\\' from t --', 1 from u";
    expect(normalize(sql, SCS_OFF)).toBe('select ?, ? from u');
    expect(normalize(sql, SCAN_DEFAULT)).toBe('select ? from t');
    expect(classify("copy t from '\\' to stdout --'", SCS_OFF).command).toBe('COPY');
  });
});
