import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { splitStatements } from './lexer.js';
import { splitWithParser, TableExtractor } from './tables.js';

beforeAll(async () => {
  await TableExtractor.create();
});

const join = (parts: string[]) => parts.join('');

/** Text made of pieces, none of which can close the quote it goes in. */
const text = (pieces: string[]) => fc.array(fc.constantFrom(...pieces), { maxLength: 6 }).map(join);

const tricky = [';', ' ', 'x', 'é', '😀', '\n', '--', '/*', '*/'];

const plainString = text([...tricky, "''", '\\', '"', '$$', '$a$']).map((s) => `'${s}'`);
const eString = text([...tricky, "\\'", '\\\\', "''", '"', '$$']).map((s) => `E'${s}'`);
const unicodeString = text([';', ' ', 'x', "''", '\\0061']).map((s) => `U&'${s}'`);
const continuedString = fc.tuple(text(tricky), text(tricky)).map(([a, b]) => `'${a}'\n  '${b}'`);
const dollarString = text([...tricky, "'", '"', '$x']).map((s) => `$$${s}$$`);
const taggedString = fc
  .tuple(fc.constantFrom('fn', 'q', '_t1', 'ñ'), text([...tricky, "'", '"', '$$', '$a$']))
  .map(([tag, s]) => `$${tag}$${s}$${tag}$`);
const quotedIdent = text([';', ' ', 'x', 'é', '""', "'", '$$', '--', '/*']).map((s) => `"${s || 'i'}"`);
const number = fc.constantFrom('1', '42', '1.5', '.5', '1e3', '2.5E-2', '0x1F', '1_000');
const param = fc.constantFrom('$1', '$2');

const expr = fc.oneof(
  plainString,
  eString,
  unicodeString,
  continuedString,
  dollarString,
  taggedString,
  number,
  param,
  fc.constant('CASE WHEN true THEN 1 ELSE 2 END'),
);

const blockComment = text([';', ' ', "'", '"', '$$', '/* ; */', '-']).map((s) => `/*${s}*/`);
const lineComment = text([';', ' ', "'", '"', '$$', '/*']).map((s) => `--${s}\n`);
/** Whitespace and comments, as found between tokens and statements. */
const trivia = fc.array(fc.oneof(fc.constantFrom(' ', '\n', '\t', '\r\n'), blockComment, lineComment), {
  maxLength: 3,
});
const gap = trivia.map((t) => (t.length === 0 ? ' ' : ` ${t.join('')} `));

const alias = fc.oneof(quotedIdent, fc.constantFrom('a', 'end', 'x$y', 'atomic'));
const select = fc
  .tuple(gap, expr, gap, alias, fc.option(fc.tuple(gap, expr)))
  .map(([g1, e1, g2, a, more]) => `SELECT${g1}${e1}${g2}AS ${a}${more ? `,${more[0]}${more[1]}` : ''}`);
const insert = fc.tuple(quotedIdent, expr).map(([t, e]) => `INSERT INTO ${t} (a) VALUES (${e})`);
const bodyStatement = fc.oneof(select, insert, fc.constant('SELECT 1 AS end'), fc.constant('SELECT t.end FROM t'));
const atomicRoutine = fc
  .tuple(
    fc.constantFrom('CREATE FUNCTION f() RETURNS int', 'create or replace procedure p()'),
    gap,
    fc.array(bodyStatement, { maxLength: 3 }),
  )
  .map(([head, g, body]) => `${head} LANGUAGE sql BEGIN${g}ATOMIC ${body.map((s) => `${s};`).join(' ')} END`);
const quotedRoutine = dollarString.map((body) => `CREATE FUNCTION g() RETURNS void LANGUAGE sql AS ${body}`);
const statement = fc.oneof(
  { weight: 4, arbitrary: select },
  { weight: 2, arbitrary: insert },
  { weight: 2, arbitrary: atomicRoutine },
  { weight: 1, arbitrary: quotedRoutine },
  { weight: 1, arbitrary: fc.constantFrom('BEGIN', 'END', 'COMMIT', 'begin transaction') },
);

/** Statements with trivia around them, separated by one or more semicolons. */
const script = fc
  .tuple(
    trivia,
    fc.array(fc.tuple(statement, trivia, fc.constantFrom(';', ';;', '; ;')), { minLength: 1, maxLength: 5 }),
    fc.boolean(),
  )
  .map(([lead, statements, lastSemicolon]) => {
    let sql = lead.join('');
    statements.forEach(([s, t, semi], index) => {
      const last = index === statements.length - 1;
      sql += s + t.join('') + (last && !lastSemicolon ? '' : semi) + ' ';
    });
    return sql;
  });

/** Random mixes of the tokens that matter to splitting; the parser accepts about one in five. */
const soupPiece = fc.constantFrom(
  ' ',
  '\n',
  ';',
  "'",
  "''",
  "E'",
  '\\',
  '"',
  '$$',
  '$a$',
  '$1',
  '--',
  '/*',
  '*/',
  'é',
  'end',
  'e',
  ',',
  '1',
);
const soup = fc
  .array(
    fc.oneof(
      fc.array(soupPiece, { maxLength: 8 }).map((p) => `select 1${join(p)}`),
      soupPiece,
    ),
    { maxLength: 8 },
  )
  .map(join);

const comparable = (slices: { text: string; offset: number }[]) => slices.map((s) => ({ ...s, text: s.text.trim() }));

describe('splitStatements agrees with the Postgres parser', () => {
  it('on generated multi-statement scripts', () => {
    fc.assert(
      fc.property(script, (sql) => {
        const reference = splitWithParser(sql);
        expect(reference, `the generator made invalid SQL: ${sql}`).not.toBeNull();
        expect(comparable(splitStatements(sql))).toEqual(comparable(reference ?? []));
      }),
      { numRuns: 500 },
    );
  });

  it('on random token soup, whenever the parser accepts it', () => {
    fc.assert(
      fc.property(soup, (sql) => {
        const reference = splitWithParser(sql);
        if (reference !== null) expect(comparable(splitStatements(sql))).toEqual(comparable(reference));
      }),
      { numRuns: 3000 },
    );
  });

  it('never throws, and every slice is a trimmed substring at its offset', () => {
    fc.assert(
      fc.property(fc.oneof(soup, fc.string({ unit: 'grapheme-composite', maxLength: 60 })), (sql) => {
        for (const { text, offset } of splitStatements(sql)) {
          expect(sql.slice(offset, offset + text.length)).toBe(text);
          expect(text.length).toBeGreaterThan(0);
          expect(/^[ \t\n\r\f\v]|[ \t\n\r\f\v]$/.test(text)).toBe(false);
        }
      }),
    );
  });
});
