import { createHash } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { md5PasswordResponse } from './md5.js';

const md5hex = (data: Buffer | string) => createHash('md5').update(data).digest('hex');

describe('md5PasswordResponse', () => {
  test('matches md5(md5(password || user) || salt), computed independently', () => {
    const salt = Buffer.from([0x01, 0x02, 0x03, 0x04]);
    const inner = md5hex('hunter2alice');
    const expected = 'md5' + md5hex(Buffer.concat([Buffer.from(inner), salt]));
    expect(md5PasswordResponse('alice', 'hunter2', salt)).toBe(expected);
  });

  test('hard vector, cross-checked against Postgres md5() over pg_authid in test/auth/upstream-auth.test.ts', () => {
    const salt = Buffer.from([0x93, 0x1a, 0x00, 0xff]);
    expect(md5PasswordResponse('md5_user', 'secret', salt)).toBe('md501f6de9291a3f45ecf4a279bda31fa78');
  });

  test('hashes non-ASCII passwords as UTF-8', () => {
    const salt = Buffer.from('abcd');
    const expected = 'md5' + md5hex(md5hex(Buffer.from('pässwordbob', 'utf8')) + 'abcd');
    expect(md5PasswordResponse('bob', 'pässword', salt)).toBe(expected);
  });

  test('refuses a salt that is not 4 bytes', () => {
    expect(() => md5PasswordResponse('u', 'p', Buffer.alloc(3))).toThrow(/4 bytes/);
  });
});
