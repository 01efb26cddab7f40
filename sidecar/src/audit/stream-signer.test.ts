import { ChainWriter, parseSignedHeadHeader, signatureValid, uuidv7 } from '@byline/api';
import { describe, expect, test } from 'vitest';
import { StreamSigner } from './stream-signer.js';

const event = (n: number) => ({
  v: 1 as const,
  id: uuidv7(),
  type: 'statement' as const,
  time: '2026-12-06T10:00:00.000Z',
  identity: {
    name: 'a',
    kind: 'agent' as const,
    namespace: null,
    serviceAccount: null,
    pod: null,
    source: 'static' as const,
  },
  session: { id: 's1', seq: n, client: null, applicationName: null, dbUser: 'u' },
  target: { route: 'r', host: 'h', port: 5432, database: 'd' },
  statement: null,
  result: null,
  authz: null,
  context: { task: null, traceparent: null, tags: {} },
});

describe('StreamSigner', () => {
  test("signs the batch's last event (stream, seq, hash) with one key per stream", () => {
    const signer = new StreamSigner();
    const a = new ChainWriter('stream-a');
    const b = new ChainWriter('stream-b');
    const batch = [a.append(event(1)), a.append(event(2)), a.append(event(3))];
    const first = parseSignedHeadHeader(signer.headerFor(batch.map((c) => c.json)));
    if (typeof first === 'string') throw new Error(first);
    expect(first).toMatchObject({ seq: 3, hash: batch[2]!.event.chain.hash });
    expect(signatureValid({ ...first, stream: 'stream-a' })).toBe(true);
    // The signature covers the stream: the same head claimed for another stream does not verify.
    expect(signatureValid({ ...first, stream: 'stream-b' })).toBe(false);

    const next = parseSignedHeadHeader(signer.headerFor([a.append(event(4)).json]));
    if (typeof next === 'string') throw new Error(next);
    expect(next.key).toBe(first.key);
    const other = parseSignedHeadHeader(signer.headerFor([b.append(event(1)).json]));
    if (typeof other === 'string') throw new Error(other);
    expect(other.key).not.toBe(first.key);
    // Another process (a restarted sidecar) signs with another key.
    const again = parseSignedHeadHeader(new StreamSigner().headerFor([a.append(event(5)).json]));
    if (typeof again === 'string') throw new Error(again);
    expect(again.key).not.toBe(first.key);
  });

  test('an empty batch is a bug, not a signature over nothing', () => {
    expect(() => new StreamSigner().headerFor([])).toThrow(/at least one event/);
  });
});
