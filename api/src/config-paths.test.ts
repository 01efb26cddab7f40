import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { loadCollectorConfig } from './collector-config.js';
import { resolveConfigPaths, resolveStoreUrl } from './config-paths.js';
import { loadConfigFile } from './load-config.js';
import { SidecarConfigSchema, sidecarConfigRules } from './sidecar-config.js';

const dir = mkdtempSync(join(tmpdir(), 'byline-config-paths-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('resolveConfigPaths', () => {
  test('file, *File, *Path and *Dir fields resolve; absolute paths and other fields do not change', () => {
    const value = {
      routes: [{ name: 'db', credentials: { passwordFile: 'secrets/pw', usernameFile: '/abs/user' } }],
      audit: { spoolDir: './spool', sinks: [{ file: 'audit.jsonl' }, { collector: { url: 'x', tokenFile: '../t' } }] },
      identity: { kubernetes: { tokenPath: 'token' } },
      profile: 'secrets/pw',
    };
    resolveConfigPaths(value, '/etc/byline');
    expect(value).toEqual({
      routes: [{ name: 'db', credentials: { passwordFile: '/etc/byline/secrets/pw', usernameFile: '/abs/user' } }],
      audit: {
        spoolDir: '/etc/byline/spool',
        sinks: [{ file: '/etc/byline/audit.jsonl' }, { collector: { url: 'x', tokenFile: '/etc/t' } }],
      },
      identity: { kubernetes: { tokenPath: '/etc/byline/token' } },
      profile: 'secrets/pw',
    });
  });

  test('sqlite store paths resolve too; postgres URLs and :memory: stay', () => {
    expect(resolveStoreUrl('sqlite:trail.db', '/var/lib/byline')).toBe('sqlite:/var/lib/byline/trail.db');
    expect(resolveStoreUrl('sqlite:/abs/trail.db', '/x')).toBe('sqlite:/abs/trail.db');
    expect(resolveStoreUrl('sqlite::memory:', '/x')).toBe('sqlite::memory:');
    expect(resolveStoreUrl('postgres://u@h/db', '/x')).toBe('postgres://u@h/db');
  });
});

describe('config files: relative paths mean next to the file, whatever the working directory', () => {
  test('a sidecar config', () => {
    const confDir = join(dir, 'sidecar');
    mkdirSync(confDir);
    const file = join(confDir, 'sidecar.yaml');
    writeFileSync(
      file,
      `identity: { static: { name: a, kind: agent } }
routes:
  - name: db
    listen: 127.0.0.1:0
    upstream: { host: 127.0.0.1, port: 5432, database: postgres }
    credentials: { mode: inject, username: u, passwordFile: pw }
audit: { spoolDir: spool, sinks: [ { file: out/audit.jsonl } ] }
`,
    );
    const config = loadConfigFile(file, SidecarConfigSchema, 'sidecar config', sidecarConfigRules);
    const credentials = config.routes[0]!.credentials as { passwordFile: string };
    expect(credentials.passwordFile).toBe(join(confDir, 'pw'));
    expect(config.audit.spoolDir).toBe(join(confDir, 'spool'));
    expect(config.audit.sinks).toEqual([{ file: join(confDir, 'out/audit.jsonl') }]);
  });

  test('a collector config reads its token file next to it and keeps its sqlite store there', () => {
    const confDir = join(dir, 'collector');
    mkdirSync(confDir);
    writeFileSync(join(confDir, 'reader.token'), 'a-reader-token-of-some-length\n');
    const file = join(confDir, 'collector.yaml');
    writeFileSync(
      file,
      'listen: 127.0.0.1:0\nstore: sqlite:trail.db\nauth: { static: [ { tokenFile: reader.token, reader: true } ] }\n',
    );
    const { config, tokens } = loadCollectorConfig(file);
    expect(config.store).toBe(`sqlite:${join(confDir, 'trail.db')}`);
    expect(tokens).toEqual([{ token: 'a-reader-token-of-some-length', reader: true }]);
  });
});
