import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import {
  type CollectorConfig,
  CollectorConfigSchema,
  loadCollectorConfig,
  MIN_BATCH_BYTES,
  resolveStaticTokens,
} from './collector-config.js';
import { problemsOf, ValidationError } from './validate.js';

const dir = mkdtempSync(join(tmpdir(), 'byline-collector-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const TOKEN = 'a-writer-token-0123456789';

function config(statics: CollectorConfig['auth']['static']): CollectorConfig {
  return { listen: '127.0.0.1:8443', store: 'sqlite:/var/lib/byline/trail.db', auth: { static: statics } };
}

describe('collector config', () => {
  test('the documented example is valid and resolves its tokens, reading token files without the newline', () => {
    const file = join(dir, 'reader');
    writeFileSync(file, 'a-reader-token-0123456789\n');
    const path = join(dir, 'collector.yaml');
    writeFileSync(
      path,
      `listen: 127.0.0.1:8443
store: postgres://byline:pw@db:5432/trail
auth:
  static:
    - { token: "${TOKEN}", identity: billing-agent }
    - { tokenFile: ${file}, reader: true }
limits: { maxBatchBytes: 8388608, maxBatchEvents: 10000 }
log: { level: info }
`,
    );
    const { config: c, tokens } = loadCollectorConfig(path);
    expect(c.limits).toEqual({ maxBatchBytes: 8388608, maxBatchEvents: 10000 });
    expect(tokens).toEqual([
      { token: TOKEN, identity: 'billing-agent' },
      { token: 'a-reader-token-0123456789', reader: true },
    ]);
  });

  test.each<[string, unknown, string]>([
    ['an unknown field', { ...config([{ token: TOKEN, reader: true }]), cors: {} }, 'cors: unknown field'],
    [
      'tls without its key',
      { ...config([{ token: TOKEN, reader: true }]), tls: { certFile: '/tls.crt' } },
      'tls.keyFile: required field is missing',
    ],
    [
      'a store of another kind',
      { ...config([{ token: TOKEN, reader: true }]), store: 'mysql://x' },
      'store: expected sqlite:PATH',
    ],
    ['no tokens', config([]), 'auth.static: expected at least 1 item'],
    ['reader: false', config([{ token: TOKEN, reader: false as true }]), 'auth.static[0].reader: expected true'],
    [
      'a tiny batch limit',
      { ...config([{ token: TOKEN, reader: true }]), limits: { maxBatchBytes: 10 } },
      'limits.maxBatchBytes',
    ],
    [
      'a batch limit one sidecar event could exceed',
      { ...config([{ token: TOKEN, reader: true }]), limits: { maxBatchBytes: MIN_BATCH_BYTES - 1 } },
      `limits.maxBatchBytes: expected integer to be greater or equal to ${MIN_BATCH_BYTES}`,
    ],
  ])('the schema refuses %s', (_name, value, message) => {
    expect(problemsOf(CollectorConfigSchema, value).join('\n')).toContain(message);
  });

  test('auth.kubernetes alone, or with static tokens, is valid; defaults are left to the collector', () => {
    const path = join(dir, 'kube.yaml');
    writeFileSync(
      path,
      `listen: 0.0.0.0:8443
store: sqlite:/var/lib/byline/trail.db
auth:
  kubernetes: { audience: byline.dev, kubeconfig: /etc/byline/kubeconfig, cacheSeconds: 30 }
`,
    );
    const { config: c, tokens } = loadCollectorConfig(path);
    expect(c.auth).toEqual({
      kubernetes: { audience: 'byline.dev', kubeconfig: '/etc/byline/kubeconfig', cacheSeconds: 30 },
    });
    expect(tokens).toEqual([]);
    const both = { ...config([{ token: TOKEN, identity: 'a' }]) };
    both.auth.kubernetes = {};
    expect(problemsOf(CollectorConfigSchema, both)).toEqual([]);
    expect(resolveStaticTokens(both)).toEqual([{ token: TOKEN, identity: 'a' }]);
  });

  test.each<[string, unknown, string]>([
    [
      'an unknown kubernetes field',
      { audiences: ['x'] },
      'auth.kubernetes.audiences: unknown field (did you mean "audience"?)',
    ],
    ['an empty audience', { audience: '' }, 'auth.kubernetes.audience'],
    ['a negative cache time', { cacheSeconds: -1 }, 'auth.kubernetes.cacheSeconds'],
  ])('the schema refuses %s', (_name, kubernetes, message) => {
    const value = { listen: '127.0.0.1:1', store: 'sqlite:x', auth: { kubernetes } };
    expect(problemsOf(CollectorConfigSchema, value).join('\n')).toContain(message);
  });

  test('auth with neither static tokens nor kubernetes is refused', () => {
    const value = { listen: '127.0.0.1:1', store: 'sqlite:x', auth: {} } as CollectorConfig;
    expect(problemsOf(CollectorConfigSchema, value)).toEqual([]);
    expect(() => resolveStaticTokens(value)).toThrow('auth: give "static" tokens, "kubernetes", or both');
  });

  test('resolveStaticTokens lists every problem with its field, and never echoes a token', () => {
    let error: unknown;
    try {
      resolveStaticTokens(
        config([
          { token: TOKEN, tokenFile: '/x', reader: true },
          { token: 'short-secret', identity: 'a' },
          { token: TOKEN, identity: 'a', reader: true },
          { tokenFile: join(dir, 'missing'), identity: 'b' },
          { token: 'another-token-0123456789', identity: 'c' },
          { token: 'another-token-0123456789', reader: true },
        ]),
      );
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ValidationError);
    const problems = (error as ValidationError).problems;
    expect(problems).toEqual([
      'auth.static[0]: give exactly one of "token" and "tokenFile"',
      'auth.static[1].token: shorter than 16 characters',
      'auth.static[2]: give exactly one of "identity" (a writer) and "reader: true" (a reader)',
      expect.stringMatching(/^auth\.static\[3\]\.tokenFile: cannot read .*missing: ENOENT/),
      'auth.static[5]: the same token as auth.static[4] (each token must name one principal)',
    ]);
    expect((error as Error).message).not.toContain('short-secret');
    expect((error as Error).message).not.toContain('another-token');
  });

  test('receipts take a key file, and nothing else', () => {
    expect(
      problemsOf(CollectorConfigSchema, {
        ...config([{ token: TOKEN, reader: true }]),
        receipts: { keyFile: '/k.pem' },
      }),
    ).toEqual([]);
    expect(
      problemsOf(CollectorConfigSchema, { ...config([{ token: TOKEN, reader: true }]), receipts: { key: 'x' } }).join(
        '\n',
      ),
    ).toContain('receipts.key');
  });

  test('a static writer may name its whole identity; a reader may not have identity fields', () => {
    const placed = config([
      { token: TOKEN, identity: 'migrator', kind: 'service', namespace: 'payments', serviceAccount: 'mig', pod: 'm-1' },
    ]);
    expect(problemsOf(CollectorConfigSchema, placed)).toEqual([]);
    expect(resolveStaticTokens(placed)).toEqual([
      { token: TOKEN, identity: 'migrator', kind: 'service', namespace: 'payments', serviceAccount: 'mig', pod: 'm-1' },
    ]);
    expect(
      problemsOf(CollectorConfigSchema, config([{ token: TOKEN, identity: 'a', kind: 'robot' as 'agent' }])).join('\n'),
    ).toContain('auth.static[0].kind');
    expect(() => resolveStaticTokens(config([{ token: TOKEN, reader: true, namespace: 'payments' }]))).toThrow(
      'auth.static[0].namespace: only a writer ("identity") has identity fields',
    );
  });
});
