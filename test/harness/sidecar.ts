/**
 * Runs a real sidecar in front of a test Postgres, in-process, with its audit trail in a
 * temporary JSON-lines file that tests read back.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AuditEvent, type RouteConfig, type SidecarConfig, SidecarConfigSchema, validate } from '@byline/api';
import { type RunningSidecar, startSidecar } from '@byline/sidecar';
import pino from 'pino';
import { AUTH_USERS, TEST_PASSWORD, type TestPostgres } from './postgres.js';

export interface TestSidecar {
  host: string;
  port: number;
  dir: string;
  running: RunningSidecar;
  config: SidecarConfig;
  /** Every event written so far (flushes first). */
  events(): Promise<AuditEvent[]>;
  statements(): Promise<AuditEvent[]>;
  close(): Promise<void>;
}

export interface TestSidecarOptions {
  /** Overrides for the route (credentials, upstream, tls…). */
  route?: Partial<RouteConfig>;
  params?: 'none' | 'redacted' | 'full';
  identity?: string;
  maxMessageBytes?: number;
  /** The config's top-level guardrails (a route's access goes in `route`). */
  guardrails?: SidecarConfig['guardrails'];
}

export async function startTestSidecar(pg: TestPostgres, options: TestSidecarOptions = {}): Promise<TestSidecar> {
  const dir = mkdtempSync(join(tmpdir(), 'byline-sidecar-'));
  const passwordFile = join(dir, 'password');
  writeFileSync(passwordFile, `${TEST_PASSWORD}\n`);
  const auditFile = join(dir, 'audit.jsonl');
  const raw = {
    identity: { static: { name: options.identity ?? 'test-agent', kind: 'agent' } },
    routes: [
      {
        name: 'test-db',
        listen: '127.0.0.1:0',
        upstream: { host: pg.host, port: pg.port, database: 'postgres', sslMode: 'disable' },
        // Tests connect under assorted user names; the user-name policy has tests of its own.
        credentials: { mode: 'inject', username: AUTH_USERS.scram, passwordFile, acceptAnyUser: true },
        ...options.route,
      },
    ],
    audit: { params: options.params ?? 'redacted', sinks: [{ file: auditFile }] },
    ...(options.maxMessageBytes ? { limits: { maxMessageBytes: options.maxMessageBytes } } : {}),
    ...(options.guardrails ? { guardrails: options.guardrails } : {}),
  };
  const config = validate(SidecarConfigSchema, raw, 'test sidecar config');
  const running = await startSidecar(config, { logger: pino({ level: process.env.BYLINE_TEST_LOG ?? 'silent' }) });
  const route = running.routes[0]!;
  const events = async () => {
    await running.flush();
    let text = '';
    try {
      text = readFileSync(auditFile, 'utf8');
    } catch {
      return [];
    }
    return text
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as AuditEvent);
  };
  return {
    host: route.host,
    port: route.port,
    dir,
    running,
    config,
    events,
    statements: async () => (await events()).filter((e) => e.type === 'statement'),
    async close() {
      await running.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Waits until `check` passes (events are written once per event-loop turn, off the forward path). */
export async function eventually<T>(check: () => Promise<T>, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
