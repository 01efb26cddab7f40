import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { PolicyClient } from './client.js';
import { PolicyEngine } from './engine.js';

/** A logger whose lines land in `lines`. */
function captured(): { logger: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const l of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(l));
      done();
    },
  });
  return { logger: pino({ level: 'info' }, sink), lines };
}

/** A collector stand-in on loopback that answers every /v1/policy with `status`, counting requests. */
async function answering(status: number): Promise<{ url: string; requests: () => number; server: Server }> {
  let count = 0;
  const server = createServer((_req, res) => {
    count++;
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: 'AgentIdentity payments/ada no longer exists' }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests: () => count, server };
}

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
});

describe('PolicyClient', () => {
  it("a gateway's client says so in its start line, naming the identity; a sidecar's speaks of the sidecar", async () => {
    for (const identity of ['payments/ada', undefined]) {
      const { logger, lines } = captured();
      const stop = new AbortController();
      const started = PolicyClient.start(
        {
          url: 'http://127.0.0.1:1',
          token: () => 't',
          logger,
          engine: new PolicyEngine(),
          ...(identity ? { identity } : {}),
          backoff: { baseMs: 10, capMs: 20 },
        },
        stop.signal,
      );
      stop.abort();
      await expect(started).rejects.toThrow('stopped before a policy arrived');
      const first = lines[0]!;
      if (identity) {
        expect(first.msg).toBe(
          'gateway: waiting for the policy of AgentIdentity payments/ada; sign-ins as it are refused until it arrives',
        );
        expect(first.agentIdentity).toBe('payments/ada');
      } else expect(first.msg).toBe('waiting for this sidecar’s policy; every statement is denied until it arrives');
    }
  });

  for (const status of [404, 410]) {
    it(`with onGone, a ${status} stops the client for good and says why (no polling every 2 s)`, async () => {
      const collector = await answering(status);
      servers.push(collector.server);
      const gone: string[] = [];
      const started = PolicyClient.start({
        url: collector.url,
        token: () => 't',
        logger: captured().logger,
        engine: new PolicyEngine(),
        identity: 'payments/ada',
        onGone: (reason) => gone.push(reason),
        backoff: { baseMs: 10, capMs: 20 },
      });
      await expect(started).rejects.toThrow(
        `the collector answered ${status}: AgentIdentity payments/ada no longer exists`,
      );
      expect(gone).toEqual([`the collector answered ${status}: AgentIdentity payments/ada no longer exists`]);
      await new Promise((r) => setTimeout(r, 200));
      expect(collector.requests()).toBe(1);
    });
  }

  it('without onGone (a sidecar), a 404 is retried like any failure', async () => {
    const collector = await answering(404);
    servers.push(collector.server);
    const stop = new AbortController();
    const started = PolicyClient.start(
      {
        url: collector.url,
        token: () => 't',
        logger: captured().logger,
        engine: new PolicyEngine(),
        backoff: { baseMs: 10, capMs: 20 },
      },
      stop.signal,
    );
    await new Promise((r) => setTimeout(r, 300));
    stop.abort();
    await expect(started).rejects.toThrow('stopped before a policy arrived');
    expect(collector.requests()).toBeGreaterThan(3);
  });
});
