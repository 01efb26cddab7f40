import { describe, expect, it } from 'vitest';
import { splitStatements } from './lexer.js';

const texts = (sql: string) => splitStatements(sql).map((s) => s.text);

describe('splitStatements', () => {
  it.each<[string, string, string[]]>([
    ['one statement', 'SELECT 1', ['SELECT 1']],
    ['terminating semicolon', 'SELECT 1;', ['SELECT 1']],
    ['two statements', 'SELECT 1; SELECT 2', ['SELECT 1', 'SELECT 2']],
    ['trailing whitespace trimmed', 'SELECT 1 \n\t;  SELECT 2 \n', ['SELECT 1', 'SELECT 2']],
    ['empty statements dropped', ';; SELECT 1;;; SELECT 2;;', ['SELECT 1', 'SELECT 2']],
    ['empty text', '', []],
    ['whitespace only', ' \n\t\r\f\v ', []],
    ['comments only', '-- a\n/* b */ ; /* c */', []],
    [
      'leading comments belong to the next statement',
      'SELECT 1; -- c\n/* d */ SELECT 2',
      ['SELECT 1', '-- c\n/* d */ SELECT 2'],
    ],
    [
      'trailing comment stays with its statement',
      'SELECT 1 /* t */; SELECT 2 -- end',
      ['SELECT 1 /* t */', 'SELECT 2 -- end'],
    ],
    ['semicolon in a string', "SELECT 'a;b'; SELECT 2", ["SELECT 'a;b'", 'SELECT 2']],
    ["'' escapes a quote", "SELECT 'it''s;'; SELECT 2", ["SELECT 'it''s;'", 'SELECT 2']],
    ['backslash is literal in a plain string', "SELECT '\\'; SELECT 2", ["SELECT '\\'", 'SELECT 2']],
    ["E string with \\'", "SELECT E'\\';x'; SELECT 2", ["SELECT E'\\';x'", 'SELECT 2']],
    ['e string, lower case', "SELECT e'\\\\'; SELECT 2", ["SELECT e'\\\\'", 'SELECT 2']],
    ["E string with ''", "SELECT E'a'';b'; SELECT 2", ["SELECT E'a'';b'", 'SELECT 2']],
    ['word ending in e is not an E prefix', "SELECT somee'\\'; SELECT 2", ["SELECT somee'\\'", 'SELECT 2']],
    ['U& string', "SELECT U&'d\\0061t;a'; SELECT 2", ["SELECT U&'d\\0061t;a'", 'SELECT 2']],
    ['U& identifier', 'SELECT 1 AS U&"a;b"; SELECT 2', ['SELECT 1 AS U&"a;b"', 'SELECT 2']],
    ['B and X strings', "SELECT B'1;0', X'1;F'; SELECT 2", ["SELECT B'1;0', X'1;F'", 'SELECT 2']],
    ['string continuation across a newline', "SELECT 'a'\n';b'; SELECT 2", ["SELECT 'a'\n';b'", 'SELECT 2']],
    ['quoted identifier', 'SELECT 1 AS "a;""b"; SELECT 2', ['SELECT 1 AS "a;""b"', 'SELECT 2']],
    ['$$ string', 'SELECT $$a;b$$; SELECT 2', ['SELECT $$a;b$$', 'SELECT 2']],
    ['$tag$ string holding $$', 'SELECT $fn$ $$;$$ $fn$; SELECT 2', ['SELECT $fn$ $$;$$ $fn$', 'SELECT 2']],
    ['$tag$ string holding another tag', 'SELECT $a$ $b$;$b$ $a$; SELECT 2', ['SELECT $a$ $b$;$b$ $a$', 'SELECT 2']],
    ['non-ASCII tag', 'SELECT $é$;$é$; SELECT 2', ['SELECT $é$;$é$', 'SELECT 2']],
    ['$1 is a parameter, not a tag', 'SELECT $1; SELECT $2', ['SELECT $1', 'SELECT $2']],
    ['$1$ is a parameter followed by a dollar', 'SELECT $1$$;$$; SELECT 2', ['SELECT $1$$;$$', 'SELECT 2']],
    ['$ inside an identifier is not a quote', 'SELECT a$b$c; SELECT $x$;$x$', ['SELECT a$b$c', 'SELECT $x$;$x$']],
    ['line comment hides a semicolon', 'SELECT 1 -- ;\n, 2; SELECT 3', ['SELECT 1 -- ;\n, 2', 'SELECT 3']],
    ['line comment ends at \\r', 'SELECT 1 -- x\r; SELECT 2', ['SELECT 1 -- x', 'SELECT 2']],
    ['block comment hides a semicolon', 'SELECT /* ; */ 1; SELECT 2', ['SELECT /* ; */ 1', 'SELECT 2']],
    ['nested block comments', 'SELECT /* a /* ; */ ; */ 1; SELECT 2', ['SELECT /* a /* ; */ ; */ 1', 'SELECT 2']],
    ['comment start inside an operator', 'SELECT 1+--;\n2; SELECT 3', ['SELECT 1+--;\n2', 'SELECT 3']],
    [
      'quotes inside comments do not open strings',
      'SELECT 1 /* \' */; -- "\nSELECT 2',
      ["SELECT 1 /* ' */", '-- "\nSELECT 2'],
    ],
    ['unterminated string takes the rest', "SELECT 'a; SELECT 2", ["SELECT 'a; SELECT 2"]],
    ['unterminated identifier takes the rest', 'SELECT "a; SELECT 2', ['SELECT "a; SELECT 2']],
    [
      'unterminated dollar quote takes the rest',
      'SELECT 1; SELECT $$a; SELECT 2',
      ['SELECT 1', 'SELECT $$a; SELECT 2'],
    ],
    [
      'unterminated block comment takes the rest',
      'SELECT 1 /* a /* */ ; SELECT 2  ',
      ['SELECT 1 /* a /* */ ; SELECT 2'],
    ],
    ['unterminated comment alone is no statement', 'SELECT 1; /* ; SELECT 2', ['SELECT 1']],
    [
      'numbers with exponents and junk',
      'SELECT 1e5, .5, 0x1F; SELECT 1e$a$;$a$',
      ['SELECT 1e5, .5, 0x1F', 'SELECT 1e$a$', '$a$'],
    ],
  ])('%s', (_name, sql, expected) => {
    expect(texts(sql)).toEqual(expected);
  });

  describe('BEGIN ATOMIC bodies', () => {
    it.each<[string, string, string[]]>([
      [
        'semicolons inside the body do not split',
        'CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2; END; SELECT 3',
        ['CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2; END', 'SELECT 3'],
      ],
      [
        'OR REPLACE PROCEDURE, lower case',
        'create or replace procedure p() language sql begin atomic insert into t values (1); end; select 2',
        ['create or replace procedure p() language sql begin atomic insert into t values (1); end', 'select 2'],
      ],
      [
        'CASE ... END nests inside the body',
        'CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN true THEN 1 END; SELECT (CASE 1 WHEN 1 THEN 2 END); END; SELECT 3',
        [
          'CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN true THEN 1 END; SELECT (CASE 1 WHEN 1 THEN 2 END); END',
          'SELECT 3',
        ],
      ],
      [
        'AS end and t.end are names, not the end of the body',
        'CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1 AS end; SELECT t.end FROM t; END; SELECT 3',
        [
          'CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1 AS end; SELECT t.end FROM t; END',
          'SELECT 3',
        ],
      ],
      [
        'comments between BEGIN and ATOMIC',
        'CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN /* x */ ATOMIC SELECT 1; END; SELECT 2',
        ['CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN /* x */ ATOMIC SELECT 1; END', 'SELECT 2'],
      ],
      [
        'empty body',
        'CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC END; SELECT 2',
        ['CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC END', 'SELECT 2'],
      ],
      [
        'transaction BEGIN ... END splits normally',
        'BEGIN; SELECT 1; END; SELECT 2',
        ['BEGIN', 'SELECT 1', 'END', 'SELECT 2'],
      ],
      [
        'BEGIN ATOMIC outside CREATE FUNCTION does not hold semicolons',
        'SELECT begin atomic; SELECT 2; END',
        ['SELECT begin atomic', 'SELECT 2', 'END'],
      ],
      [
        'a body quoted with $$ needs no tracking',
        'CREATE FUNCTION f() RETURNS int AS $$ BEGIN RETURN 1; END $$ LANGUAGE plpgsql; SELECT 2',
        ['CREATE FUNCTION f() RETURNS int AS $$ BEGIN RETURN 1; END $$ LANGUAGE plpgsql', 'SELECT 2'],
      ],
      [
        'unterminated body takes the rest',
        'CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2',
        ['CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2'],
      ],
    ])('%s', (_name, sql, expected) => {
      expect(texts(sql)).toEqual(expected);
    });
  });

  it('gives offsets into the original text', () => {
    const sql = '  /* lead */ SELECT 1 ;\n\n  INSERT INTO t VALUES (1)  ';
    const slices = splitStatements(sql);
    expect(slices).toEqual([
      { text: '/* lead */ SELECT 1', offset: 2 },
      { text: 'INSERT INTO t VALUES (1)', offset: 27 },
    ]);
    for (const { text, offset } of slices) expect(sql.slice(offset, offset + text.length)).toBe(text);
  });

  it('counts offsets in UTF-16 code units', () => {
    const sql = "SELECT '😀é'; SELECT 2";
    expect(splitStatements(sql)).toEqual([
      { text: "SELECT '😀é'", offset: 0 },
      { text: 'SELECT 2', offset: 14 },
    ]);
  });

  it('does not treat NBSP as whitespace (it is an identifier character to Postgres)', () => {
    expect(texts('SELECT 1\u00a0; SELECT 2')).toEqual(['SELECT 1\u00a0', 'SELECT 2']);
  });
});
