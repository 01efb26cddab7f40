import { describe, expect, it } from 'vitest';
import { SCS_OFF } from '../sql/tokenizer.js';
import { deallocateName, prepareHead } from './sql-prepared.js';

describe('SQL PREPARE and DEALLOCATE', () => {
  it.each<[string, string, string]>([
    ['PREPARE q AS select 1', 'q', 'select 1'],
    [
      'prepare Foo (int, numeric(10, 2)) as /* c */ delete from t where id = $1',
      'foo',
      '/* c */ delete from t where id = $1',
    ],
    ['prepare "Mixed ""Case""" as update t set a = 1', 'Mixed "Case"', 'update t set a = 1'],
    ['/* lead */ prepare\nq\nas\nselect 2', 'q', 'select 2'],
  ])('%j names %j, body %j', (sql, name, body) => {
    const head = prepareHead(sql, 0);
    expect(head?.name).toBe(name);
    expect(sql.slice(head!.bodyStart)).toBe(body);
  });

  it('is null for what is not a PREPARE statement', () => {
    expect(prepareHead("prepare transaction 'x'", 0)).toBeNull();
    expect(prepareHead('select 1', 0)).toBeNull();
    expect(prepareHead('prepare q as', 0)).toBeNull();
  });

  it('truncates names to 63 bytes, as Postgres does', () => {
    expect(prepareHead(`prepare ${'a'.repeat(70)} as select 1`, 0)?.name).toBe('a'.repeat(63));
  });

  it('scans the body under the session setting', () => {
    expect(prepareHead("prepare q (text) as select '\\'' || $1", SCS_OFF)?.name).toBe('q');
  });

  it.each<[string, string | null]>([
    ['deallocate q', 'q'],
    ['DEALLOCATE PREPARE "Q"', 'Q'],
    ['deallocate all', null],
    ['deallocate prepare all', null],
  ])('%j deallocates %j', (sql, name) => {
    expect(deallocateName(sql, 0)).toBe(name);
  });
});
