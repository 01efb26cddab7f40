import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { sqlCommenterTags } from './lexer.js';
import { SCS_OFF } from './tokenizer.js';

const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

/** How a sqlcommenter library writes a value: URL-encoded, then `'` escaped with `\`. */
const serialize = (text: string) => encodeURIComponent(text).replaceAll("'", "\\'");

describe('sqlCommenterTags', () => {
  it.each<[string, string, Record<string, string>]>([
    ['a traceparent', `SELECT 1 /*traceparent='${traceparent}'*/`, { traceparent }],
    [
      'several URL-encoded values',
      "SELECT * FROM foo /*action='%2Fparam*d',controller='index',framework='spring',tracestate='congo%3Dt61rcWkgMzE%2Crojo%3D00f067aa0ba902b7'*/",
      {
        action: '/param*d',
        controller: 'index',
        framework: 'spring',
        tracestate: 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7',
      },
    ],
    ['URL-encoded key', "SELECT 1 /*%2Fparam%20first='value'*/", { '/param first': 'value' }],
    ['escaped quote in a value', "SELECT 1 /*name='it\\'s'*/", { name: "it's" }],
    ['non-ASCII value', "SELECT 1 /*user='%C3%A9t%C3%A9'*/", { user: 'été' }],
    ['empty value', "SELECT 1 /*a=''*/", { a: '' }],
    ['spaces inside the comment', "SELECT 1 /* a='1', b='2' */", { a: '1', b: '2' }],
    ['followed by whitespace', "SELECT 1 /*a='1'*/ \n", { a: '1' }],
    ['followed by a semicolon', "SELECT 1 /*a='1'*/;", { a: '1' }],
    ['a comment that is the whole statement', "/*a='1'*/", { a: '1' }],
    ['only the last comment counts', "SELECT /*a='1'*/ 1 /*b='2'*/", { b: '2' }],
    ['a __proto__ key is an ordinary tag', "SELECT 1 /*__proto__='x'*/", { ['__proto__']: 'x' }],
  ])('%s', (_name, sql, expected) => {
    const tags = sqlCommenterTags(sql);
    expect(tags).toEqual(expected);
    expect(Object.getPrototypeOf(tags)).toBe(Object.prototype);
  });

  it.each<[string, string]>([
    ['no comment', 'SELECT 1'],
    ['empty text', ''],
    ['a comment not at the end', "SELECT /*a='1'*/ 1"],
    ['a line comment', "SELECT 1 -- a='1'"],
    ['an ordinary comment', 'SELECT 1 /* fetch the users */'],
    ['an empty comment', 'SELECT 1 /**/'],
    ['unquoted value', 'SELECT 1 /*a=1*/'],
    ['unterminated value', "SELECT 1 /*a='1*/"],
    ['missing key', "SELECT 1 /*='1'*/"],
    ['trailing comma', "SELECT 1 /*a='1',*/"],
    ['missing comma', "SELECT 1 /*a='1' b='2'*/"],
    ['bad URL encoding', "SELECT 1 /*a='%E0%A4%A'*/"],
    ['only a comment closer', 'SELECT 1 */'],
    ['a lone /*/', 'SELECT /*/'],
  ])('%s → {}', (_name, sql) => {
    expect(sqlCommenterTags(sql)).toEqual({});
  });

  it('round-trips whatever a sqlcommenter library serializes', () => {
    const key = fc.string({ minLength: 1, unit: 'grapheme' });
    fc.assert(
      fc.property(fc.dictionary(key, fc.string({ unit: 'grapheme' }), { minKeys: 1 }), (tags) => {
        const comment = Object.entries(tags)
          .map(([k, v]) => `${serialize(k)}='${serialize(v)}'`)
          .join(',');
        expect(sqlCommenterTags(`SELECT 1 /*${comment}*/`)).toEqual(tags);
      }),
    );
  });

  it('reads only a real comment, as Postgres scans the statement', () => {
    // The `/*…*/` is inside a dollar quote or a string: no comment, no tags.
    expect(sqlCommenterTags("select $$ /*task='spoofed'*/")).toEqual({});
    expect(sqlCommenterTags("select 'x /*task=''spoofed''*/'")).toEqual({});
    // With backslash escapes the same text ends in a comment.
    const sql = "select 'a\\'' /*task='real'*/";
    expect(sqlCommenterTags(sql, SCS_OFF)).toEqual({ task: 'real' });
    expect(sqlCommenterTags(sql)).toEqual({});
  });
});
