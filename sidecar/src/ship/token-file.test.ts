import { mkdtempSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { TokenFile } from './token-file.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('TokenFile', () => {
  test('reads the file once while it is unchanged, again when it is rewritten, swapped or forgotten', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'byline-token-'));
    dirs.push(dir);
    // As the kubelet lays out a projected token: token -> ..data/token, ..data a symlink swapped atomically.
    writeFileSync(join(dir, 'a'), 'first\n');
    symlinkSync(join(dir, 'a'), join(dir, '..data'));
    const path = join(dir, 'token');
    symlinkSync(join(dir, '..data'), path);
    const file = new TokenFile(path);
    expect(await file.token()).toBe('first');
    expect(await file.token()).toBe('first');
    expect(file.reads).toBe(1);

    writeFileSync(join(dir, 'b'), 'second\n');
    symlinkSync(join(dir, 'b'), join(dir, '..data.tmp'));
    renameSync(join(dir, '..data.tmp'), join(dir, '..data'));
    expect(await file.token()).toBe('second');
    expect(file.reads).toBe(2);

    // Rewritten in place with a token of the same length.
    writeFileSync(join(dir, 'b'), 'SECOND\n');
    expect(await file.token()).toBe('SECOND');
    file.forget();
    expect(await file.token()).toBe('SECOND');
    expect(file.reads).toBe(4);

    unlinkSync(join(dir, 'b'));
    await expect(file.token()).rejects.toThrow(/ENOENT/);
  });
});
