/**
 * The verification pool with real worker threads: the real worker (verify-worker.ts, loaded from
 * sources through tsx) gives the verdicts parseBatch gives inline, and workers that crash, throw
 * or hang make the pool refuse (never accept) their batches and recover.
 */
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, test } from 'vitest';
import type { WriterIdentity } from '../auth/authenticator.js';
import { ndjson, SampleStream } from '../sample-events.js';
import { parseBatch } from './parse-batch.js';
import { startVerifyWorker, VerifyPool } from './verify-pool.js';
import { VerifyBusy, VerifyFailed } from './verify-protocol.js';

const writer: WriterIdentity = { name: 'billing-agent', kind: 'agent', source: 'static' };
const gateway: WriterIdentity = { name: 'gateway', kind: 'service', source: 'static', gateway: true };
const bytes = (text: string) => new TextEncoder().encode(text);

/** A worker from eval'd JavaScript that does `onMessage` with each batch it gets. */
const evalWorker = (onMessage: string) => () =>
  new Worker(
    `const { parentPort } = require('node:worker_threads'); parentPort.postMessage({ ready: true }); parentPort.on('message', (m) => { ${onMessage} });`,
    { eval: true },
  );

const pools: VerifyPool[] = [];
function pool(...args: ConstructorParameters<typeof VerifyPool>): VerifyPool {
  const p = new VerifyPool(...args);
  pools.push(p);
  return p;
}
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
});

function hostileBatches(): [string, Uint8Array, WriterIdentity, number][] {
  const lines = ndjson(new SampleStream({ sessionLength: 5 }).take(4))
    .trimEnd()
    .split('\n');
  const theirs = ndjson(new SampleStream({ identity: 'someone-else' }).take(1));
  return [
    ['valid', bytes(`${lines.join('\n')}\n`), writer, 100],
    ['malformed JSON', bytes([lines[0], '{"v":1,', lines[2]].join('\n')), writer, 100],
    ['schema', bytes(lines[1]!.replace('"status":"ok"', '"status":"fine"')), writer, 100],
    ['not canonical', bytes(lines[0]!.replace('{"authz"', '{ "authz"')), writer, 100],
    ['altered after hashing', bytes([lines[0], lines[1]!.replace('"rows":1', '"rows":0')].join('\n')), writer, 100],
    ['duplicate keys', bytes(lines[0]!.replace('{"authz"', '{"type":"session.end","authz"')), writer, 100],
    ['another identity', bytes(`${lines[0]}\n${theirs}`), writer, 100],
    ['a gateway writing its own events', bytes(lines[0]!), gateway, 100],
    ['too many events', bytes(lines.join('\n')), writer, 2],
    ['empty body', bytes(''), writer, 100],
    ['invalid UTF-8', new Uint8Array([0x7b, 0xff, 0x7d]), writer, 100],
    ['30 bad lines', bytes(Array.from({ length: 30 }, () => 'nope').join('\n')), writer, 100],
  ];
}

describe('VerifyPool', () => {
  test('the real worker gives exactly the inline verdict on valid and hostile batches', async () => {
    const p = pool({ size: 2, start: startVerifyWorker });
    const cases = hostileBatches();
    const verdicts = await Promise.all(cases.map(([, body, w, max]) => p.verify(body, w, max)));
    for (let i = 0; i < cases.length; i++) {
      const [name, body, w, max] = cases[i]!;
      expect({ name, verdict: verdicts[i] }).toEqual({ name, verdict: parseBatch(body, w, max) });
    }
    expect(verdicts[0]).toMatchObject({ ok: true, events: expect.arrayContaining([]) });
    expect(verdicts[0]!.ok && verdicts[0]!.events).toHaveLength(4);
    expect(verdicts.slice(1).every((v) => !v.ok)).toBe(true);
  }, 30_000);

  test('a worker that dies mid-batch fails that batch, and the next batch gets a new worker', async () => {
    let started = 0;
    const p = pool({
      size: 1,
      start: () => (++started === 1 ? evalWorker('process.exit(7)')() : startVerifyWorker()),
    });
    const body = bytes(ndjson(new SampleStream().take(2)));
    await expect(p.verify(body, writer, 10)).rejects.toThrow(
      new VerifyFailed('the verification worker exited with code 7'),
    );
    await expect(p.verify(body, writer, 10)).resolves.toMatchObject({ ok: true });
    expect(started).toBe(2);
  }, 30_000);

  test('a worker that throws fails its batch with the error; batches waiting behind it still run', async () => {
    let started = 0;
    const p = pool({
      size: 1,
      start: () =>
        ++started === 1
          ? evalWorker("throw new Error('out of cheese')")()
          : evalWorker('parentPort.postMessage({ id: m.id, parsed: { ok: true, events: [], gatewayLines: [] } })')(),
    });
    const first = p.verify(bytes('x'), writer, 10);
    const second = p.verify(bytes('y'), writer, 10);
    await expect(first).rejects.toThrow(/the verification worker failed: out of cheese/);
    await expect(second).resolves.toEqual({ ok: true, events: [], gatewayLines: [] });
  });

  test('an error the worker reports for a batch refuses that batch and keeps the worker', async () => {
    let started = 0;
    const p = pool({
      size: 1,
      start: () => {
        started++;
        return evalWorker("parentPort.postMessage({ id: m.id, error: 'parse exploded' })")();
      },
    });
    await expect(p.verify(bytes('x'), writer, 10)).rejects.toThrow(
      new VerifyFailed('the verification worker failed: parse exploded'),
    );
    await expect(p.verify(bytes('x'), writer, 10)).rejects.toThrow(/parse exploded/);
    expect(started).toBe(1);
  });

  test('an answer for a batch the worker was not given retires the worker and refuses its batch', async () => {
    const p = pool({
      size: 1,
      start: evalWorker('parentPort.postMessage({ id: m.id + 1, parsed: { ok: true, events: [], gatewayLines: [] } })'),
    });
    await expect(p.verify(bytes('x'), writer, 10)).rejects.toThrow(/answered a batch it was not given/);
  });

  test('a full waiting line refuses at once with VerifyBusy; closing refuses what was held', async () => {
    const p = pool({ size: 1, maxWaiting: 1, start: evalWorker('/* never answers */') });
    const held = p.verify(bytes('a'), writer, 10);
    const waiting = p.verify(bytes('b'), writer, 10);
    await expect(p.verify(bytes('c'), writer, 10)).rejects.toThrow(
      new VerifyBusy('all 1 verification worker(s) are busy and 1 batch(es) are waiting'),
    );
    const refused = [held, waiting].map((b) =>
      expect(b).rejects.toThrow(new VerifyFailed('the collector is shutting down')),
    );
    await p.close();
    await Promise.all(refused);
    await expect(p.verify(bytes('d'), writer, 10)).rejects.toThrow(/shutting down/);
  });

  test('a batch that cannot be handed to a worker is refused, and the worker takes the next one', async () => {
    const p = pool({ size: 1, maxWaiting: 0, start: startVerifyWorker });
    const uncloneable = { ...writer, toString: () => 'a function' } as unknown as WriterIdentity;
    await expect(p.verify(bytes('x'), uncloneable, 10)).rejects.toThrow(
      /the batch could not be handed to a verification worker: .*could not be cloned/,
    );
    const body = bytes(ndjson(new SampleStream().take(2)));
    await expect(p.verify(body, writer, 10)).resolves.toMatchObject({ ok: true });
  }, 30_000);

  test('a worker that cannot start refuses the batch, naming why', async () => {
    const p = pool({ size: 1, start: () => new Worker(new URL('file:///nonexistent/verify-worker.js')) });
    await expect(p.verify(bytes('x'), writer, 10)).rejects.toThrow(/the verification worker failed: .* while starting/);
  });

  test('sizes are checked', () => {
    expect(() => new VerifyPool({ size: 0 })).toThrow(/size must be ≥ 1/);
    expect(() => new VerifyPool({ maxWaiting: -1 })).toThrow(/maxWaiting must be ≥ 0/);
  });
});
