import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { isUiPath, loadUiAssets, locateUiDir } from './ui-assets.js';

const dir = mkdtempSync(join(tmpdir(), 'byline-ui-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the viewer assets', () => {
  test('found in the first candidate directory that holds an index.html', () => {
    const empty = join(dir, 'empty');
    const built = join(dir, 'built');
    mkdirSync(empty);
    mkdirSync(built);
    writeFileSync(join(built, 'index.html'), '<!doctype html>');
    expect(locateUiDir([join(dir, 'missing'), empty, built])).toBe(built);
    expect(locateUiDir([empty])).toBeUndefined();
  });

  test('only known types with plain names are served; index.html revalidates, hashed files are immutable', async () => {
    const d = join(dir, 'assets');
    mkdirSync(d);
    writeFileSync(join(d, 'index.html'), '<!doctype html>');
    writeFileSync(join(d, 'viewer-ABC123.js'), 'export {}');
    writeFileSync(join(d, 'viewer-ABC123.css'), 'body{}');
    writeFileSync(join(d, 'viewer-ABC123.js.map'), '{}');
    writeFileSync(join(d, 'secret.txt'), 'no');
    const assets = await loadUiAssets(d);
    expect([...assets.keys()].sort()).toEqual(['index.html', 'viewer-ABC123.css', 'viewer-ABC123.js']);
    expect(assets.get('index.html')!.headers).toMatchObject({
      'Content-Type': 'text/html; charset=utf-8',
      'Cache-Control': 'no-cache',
    });
    expect(assets.get('viewer-ABC123.js')!.headers['Cache-Control']).toBe('public, max-age=31536000, immutable');
  });

  test('the /ui/ prefix, and nothing that merely starts like it', () => {
    expect(isUiPath('/ui')).toBe(true);
    expect(isUiPath('/ui/')).toBe(true);
    expect(isUiPath('/ui/viewer.js')).toBe(true);
    expect(isUiPath('/uix')).toBe(false);
    expect(isUiPath('/v1/events')).toBe(false);
  });
});
