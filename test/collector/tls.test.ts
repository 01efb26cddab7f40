/**
 * The collector over HTTPS: a sidecar ships to it trusting only the collector's CA (caFile, or the
 * same PEM inline as caPem, which the operator injects), and `byline trail` reads from it the same
 * way; plain HTTP to the TLS port gets nothing stored.
 */
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { promisify } from 'node:util';
import { type AuditEvent, SidecarConfigSchema, validate } from '@byline/api';
import { type RunningCollector, startCollector } from '@byline/collector';
import { askWhoami, type RunningSidecar, startSidecar } from '@byline/sidecar';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { makeCa, makeCertificates } from '../harness/certs.js';
import { AUTH_USERS, startPostgres, TEST_PASSWORD, type TestPostgres } from '../harness/postgres.js';

const run = promisify(execFile);
const cli = join(resolve(import.meta.dirname, '../..'), 'cli/bin/byline.mjs');
const logger = pino({ level: 'silent' });
const WRITER = 'tls-writer-token-0123456789';
const READER = 'tls-reader-token-0123456789';

let dir: string;
let db: TestPostgres;
let collector: RunningCollector;
let sidecar: RunningSidecar;
let caPem: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'byline-tls-'));
  const certs = makeCertificates(dir);
  caPem = readFileSync(certs.caFile, 'utf8');
  db = await startPostgres();
  collector = await startCollector(
    {
      listen: '127.0.0.1:0',
      tls: { certFile: certs.certFile, keyFile: certs.keyFile },
      store: `sqlite:${join(dir, 'trail.db')}`,
      auth: {
        static: [
          { token: WRITER, identity: 'tls-agent' },
          { token: READER, reader: true },
        ],
      },
    },
    { logger },
  );
  writeFileSync(join(dir, 'writer.token'), WRITER);
  writeFileSync(join(dir, 'reader.token'), READER);
  writeFileSync(join(dir, 'pw'), TEST_PASSWORD);
  const config = validate(
    SidecarConfigSchema,
    {
      identity: { static: { name: 'tls-agent', kind: 'agent' } },
      routes: [
        {
          name: 'tls-db',
          listen: '127.0.0.1:0',
          upstream: { host: db.host, port: db.port, database: 'postgres', sslMode: 'disable' },
          credentials: {
            mode: 'inject',
            username: AUTH_USERS.scram,
            passwordFile: join(dir, 'pw'),
            acceptAnyUser: true,
          },
        },
      ],
      audit: {
        spoolDir: join(dir, 'spool'),
        // The CA inline, as the operator injects it; the whoami test below covers caFile too.
        sinks: [{ collector: { url: collector.url, tokenFile: join(dir, 'writer.token'), caPem } }],
      },
    },
    'tls test config',
  );
  sidecar = await startSidecar(config, { logger });
});

afterAll(async () => {
  await sidecar?.close();
  await collector?.close();
  await db?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('the collector serves HTTPS; the sidecar ships to it trusting its CA; byline trail reads it', async () => {
  expect(collector.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
  const client = new pg.Client({ host: '127.0.0.1', port: sidecar.routes[0]!.port, user: 'x', database: 'postgres' });
  await client.connect();
  await client.query("select 'over tls' as v");
  await client.end();
  await sidecar.flush();
  for (const s of sidecar.shippers) expect(await s.drain(10_000)).toBe(true);

  const { stdout } = await run(
    process.execPath,
    [cli, 'trail', '--collector', collector.url, '--token-file', join(dir, 'reader.token'), '--format', 'json'],
    { env: { ...process.env, NODE_EXTRA_CA_CERTS: join(dir, 'ca.crt') } },
  );
  const events = stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as AuditEvent);
  expect(events.map((e) => e.type)).toEqual(['session.start', 'statement', 'session.end']);
  expect(events[1]!.statement!.text).toBe("select 'over tls' as v");
});

test('plain HTTP to the HTTPS port is not served', async () => {
  const plain = collector.url.replace('https://', 'http://');
  const outcome = await fetch(`${plain}/healthz`).then(
    (r) => `status ${r.status}`,
    (e: Error) => `failed: ${e.message}`,
  );
  expect(outcome).not.toBe('status 200');
});

test('whoami over TLS trusts the inline caPem or caFile, and only the CA they name', async () => {
  const trusted = await askWhoami({ url: collector.url, token: WRITER, caPem });
  expect(trusted).toMatchObject({ ok: true, identity: { name: 'tls-agent', source: 'static' } });

  const otherCa = readFileSync(makeCa(dir, 'other-ca'), 'utf8');
  const wrongCa = await askWhoami({ url: collector.url, token: WRITER, caPem: otherCa });
  expect(wrongCa.ok).toBe(false);
  expect(wrongCa.ok ? '' : wrongCa.error).toMatch(/cannot reach|certificate/i);

  const fromFile = await askWhoami({ url: collector.url, token: WRITER, caFile: join(dir, 'ca.crt') });
  expect(fromFile).toEqual(trusted);

  const none = await askWhoami({ url: collector.url, token: WRITER, caFile: join(dir, 'missing.crt') });
  expect(none).toMatchObject({ ok: false, error: expect.stringContaining('missing.crt') });
});

test('a renewed certificate in the mounted files is served without a restart; a half-written pair is not', async () => {
  const tlsDir = join(dir, 'renew');
  const first = makeCertificates(mkdirTemp(tlsDir, 'first'));
  const second = makeCertificates(mkdirTemp(tlsDir, 'second'));
  const served = { certFile: join(tlsDir, 'tls.crt'), keyFile: join(tlsDir, 'tls.key') };
  copyFileSync(first.certFile, served.certFile);
  copyFileSync(first.keyFile, served.keyFile);
  const renewing = await startCollector(
    {
      listen: '127.0.0.1:0',
      tls: served,
      store: `sqlite:${join(tlsDir, 'trail.db')}`,
      auth: { static: [{ token: WRITER, identity: 'tls-agent' }] },
    },
    { logger, tlsReloadMs: 50 },
  );
  const fingerprint = (file: string) => new X509Certificate(readFileSync(file)).fingerprint256;
  try {
    expect(await servedFingerprint(renewing.port)).toBe(fingerprint(first.certFile));

    // The kubelet swaps files one by one: a new certificate with the old key is not served.
    copyFileSync(second.certFile, served.certFile);
    await sleep(300);
    expect(await servedFingerprint(renewing.port)).toBe(fingerprint(first.certFile));

    copyFileSync(second.keyFile, served.keyFile);
    const deadline = Date.now() + 5000;
    while ((await servedFingerprint(renewing.port)) !== fingerprint(second.certFile) && Date.now() < deadline)
      await sleep(50);
    expect(await servedFingerprint(renewing.port)).toBe(fingerprint(second.certFile));
    const whoami = await askWhoami({ url: renewing.url, token: WRITER, caPem: readFileSync(second.caFile, 'utf8') });
    expect(whoami.ok).toBe(true);
  } finally {
    await renewing.close();
  }
});

/** The certificate a fresh TLS connection is served (no session reuse, no verification). */
function servedFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      const fp = socket.getPeerCertificate().fingerprint256;
      socket.end();
      resolve(fp);
    });
    socket.on('error', reject);
  });
}

function mkdirTemp(parent: string, name: string): string {
  const path = join(parent, name);
  mkdirSync(path, { recursive: true });
  return path;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
