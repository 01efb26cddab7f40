import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import type { UnchainedEvent } from './audit-event.js';
import { ChainWriter } from './chain.js';
import { HeadSigner, ReceiptSigner } from './signed-head.js';
import { uuidv7 } from './uuid.js';
import { describeProblem, type StoredPosition, type StreamEvidence, verifyTrail } from './verify-trail.js';

function event(text: string): UnchainedEvent {
  return {
    v: 1,
    id: uuidv7(),
    type: 'statement',
    time: '2026-11-27T10:00:00.000Z',
    identity: { name: 'a', kind: 'agent', namespace: null, serviceAccount: null, pod: null, source: 'static' },
    session: { id: 's1', seq: 1, client: null, applicationName: null, dbUser: 'u' },
    target: { route: 'r', host: 'h', port: 5432, database: 'd' },
    statement: null,
    result: null,
    authz: null,
    context: { task: null, traceparent: null, tags: { t: text } },
  };
}

function trail(n: number, stream = 'st'): StoredPosition[] {
  const w = new ChainWriter(stream);
  return Array.from({ length: n }, (_, i) => {
    const c = w.append(event(`e${i + 1}`));
    return { stream, seq: c.event.chain.seq, json: c.json };
  });
}

describe('verifyTrail', () => {
  test('an intact trail of several streams has no problems', () => {
    const report = verifyTrail([...trail(5, 'a'), ...trail(3, 'b')].reverse());
    expect(report).toEqual({ streams: 2, events: 8, signedHeads: 0, problems: [] });
  });

  test('an edited event is named', () => {
    const t = trail(4);
    t[1] = { ...t[1]!, json: t[1]!.json.replace('"e2"', '"E2"') };
    const { problems } = verifyTrail(t);
    expect(problems).toEqual([{ kind: 'edited', stream: 'st', seq: 2, id: JSON.parse(t[1]!.json).id }]);
    expect(describeProblem(problems[0]!)).toMatch(/^stream st seq 2: event .* was edited/);
  });

  test('a removed event, and several, are named by their positions', () => {
    const t = trail(6);
    expect(verifyTrail([t[0]!, t[2]!, t[3]!, t[4]!, t[5]!]).problems).toEqual([
      { kind: 'removed', stream: 'st', from: 2, to: 2 },
    ]);
    expect(describeProblem(verifyTrail([t[0]!, t[4]!, t[5]!]).problems[0]!)).toBe(
      'stream st seq 2–4: 3 events were removed',
    );
  });

  test('two events swapped in the store are both named as moved', () => {
    const t = trail(4);
    const swapped = [t[0]!, { ...t[1]!, json: t[2]!.json }, { ...t[2]!, json: t[1]!.json }, t[3]!];
    const { problems } = verifyTrail(swapped);
    expect(problems.map((p) => [p.kind, 'seq' in p ? p.seq : null])).toEqual([
      ['moved', 2],
      ['moved', 3],
    ]);
  });

  test('an event replaced by a re-hashed forgery breaks the link to the next one', () => {
    const t = trail(3);
    const forger = new ChainWriter('st', 1, JSON.parse(t[0]!.json).chain.hash);
    const forged = forger.append(event('forged'));
    const { problems } = verifyTrail([t[0]!, { stream: 'st', seq: 2, json: forged.json }, t[2]!]);
    expect(problems).toEqual([{ kind: 'unlinked', stream: 'st', seq: 3, id: JSON.parse(t[2]!.json).id }]);
  });

  test('an event inserted at an existing seq, with a valid prev and hash, is a duplicate', () => {
    const t = trail(4);
    // The forgery links to seq 2 and hashes correctly: only its seq being taken gives it away.
    const forger = new ChainWriter('st', 2, JSON.parse(t[1]!.json).chain.hash);
    const forged = forger.append(event('forged'));
    for (const order of [
      [...t, { stream: 'st', seq: 3, json: forged.json }],
      [{ stream: 'st', seq: 3, json: forged.json }, ...t],
    ]) {
      const { problems } = verifyTrail(order);
      expect(problems).toEqual([
        {
          kind: 'duplicate',
          stream: 'st',
          seq: 3,
          ids: expect.arrayContaining([forged.event.id, JSON.parse(t[2]!.json).id]),
        },
      ]);
      expect(describeProblem(problems[0]!)).toMatch(
        /^stream st seq 3: 2 events hold this seq .*a fork or an inserted event$/,
      );
    }
    // At the head too, where no later event's prev could give it away.
    const atHead = new ChainWriter('st', 3, JSON.parse(t[2]!.json).chain.hash).append(event('forged head'));
    expect(verifyTrail([...t, { stream: 'st', seq: 4, json: atHead.json }]).problems).toEqual([
      expect.objectContaining({ kind: 'duplicate', seq: 4 }),
    ]);
  });

  test('events missing before the first stored one, and after the last up to the recorded head, are removed', () => {
    const t = trail(6);
    expect(verifyTrail(t.slice(2)).problems).toEqual([{ kind: 'removed', stream: 'st', from: 1, to: 2 }]);
    const ev: StreamEvidence = { stream: 'st', lastSeq: 6, markers: [], keys: [], heads: [] };
    expect(verifyTrail(t.slice(0, 4), [ev]).problems).toEqual([{ kind: 'removed', stream: 'st', from: 5, to: 6 }]);
  });

  test('seq 1 with a prev does not link', () => {
    const forged = new ChainWriter('st', 0, 'a'.repeat(64)).append(event('first'));
    expect(verifyTrail([{ stream: 'st', seq: 1, json: forged.json }]).problems).toEqual([
      { kind: 'unlinked', stream: 'st', seq: 1, id: forged.event.id },
    ]);
  });

  test('every unresolved marker the collector recorded is a problem; a resolved gap is not', () => {
    const t = trail(3);
    const ev: StreamEvidence = {
      stream: 'st',
      markers: [
        { seq: 2, kind: 'fork', detail: 'event x arrived again with different content', resolvedAt: null },
        { seq: 3, kind: 'gap', detail: 'seq 2 is missing', resolvedAt: '2026-12-01T00:00:00Z' },
        { seq: 3, kind: 'break', detail: 'prev does not link', resolvedAt: null },
      ],
      keys: [],
      heads: [],
    };
    const { problems } = verifyTrail(t, [ev]);
    expect(problems.map((p) => p.kind === 'marker' && `${p.marker}:${p.seq}`)).toEqual(['fork:2', 'break:3']);
    expect(describeProblem(problems[0]!)).toBe(
      'stream st seq 2: the collector recorded a fork at ingest: event x arrived again with different content',
    );
  });

  describe('signed heads', () => {
    const signer = new HeadSigner();
    const registered = (key: string, receipt: string | null = null) => ({ key, owner: 'static:a', receipt });
    const headOf = (p: StoredPosition) => {
      const c = JSON.parse(p.json).chain;
      return signer.sign({ stream: c.stream, seq: c.seq, hash: c.hash });
    };

    test('a trail covered by valid signed heads is intact, also with signatures required', () => {
      const t = trail(6);
      const ev: StreamEvidence = {
        stream: 'st',
        markers: [],
        keys: [registered(signer.key)],
        heads: [headOf(t[2]!), headOf(t[5]!)],
      };
      expect(verifyTrail(t, [ev], { requireSignatures: true })).toEqual({
        streams: 1,
        events: 6,
        signedHeads: 2,
        problems: [],
      });
    });

    test('events after the last signed head are unsigned, when signatures are required', () => {
      const t = trail(6);
      const ev: StreamEvidence = { stream: 'st', markers: [], keys: [registered(signer.key)], heads: [headOf(t[2]!)] };
      expect(verifyTrail(t, [ev]).problems).toEqual([]);
      const { problems } = verifyTrail(t, [ev], { requireSignatures: true });
      expect(problems).toEqual([{ kind: 'unsigned', stream: 'st', from: 4, to: 6 }]);
      expect(describeProblem(problems[0]!)).toMatch(/^stream st seq 4–6: no signed head covers these 3 events/);
      expect(verifyTrail(t, [], { requireSignatures: true }).problems).toEqual([
        { kind: 'unsigned', stream: 'st', from: 1, to: 6 },
      ]);
    });

    test('a whole history rewritten with valid hashes cannot carry the signature of the real head', () => {
      const t = trail(4);
      const real = headOf(t[3]!);
      const rewritten = trail(4); // another chain for the same stream: every hash valid, every link whole
      const ev: StreamEvidence = { stream: 'st', markers: [], keys: [registered(signer.key)], heads: [real] };
      expect(verifyTrail(rewritten, []).problems).toEqual([]);
      expect(verifyTrail(rewritten, [ev], { requireSignatures: true }).problems).toEqual([
        { kind: 'signed-head-missing', stream: 'st', seq: 4, hash: real.hash },
        { kind: 'unsigned', stream: 'st', from: 1, to: 4 },
      ]);
    });

    test('a head signed by an unregistered key, or with a signature that does not verify, is named', () => {
      const t = trail(3);
      const forger = new HeadSigner();
      const c = JSON.parse(t[2]!.json).chain;
      const foreign = forger.sign({ stream: 'st', seq: 3, hash: c.hash });
      const tampered = { ...headOf(t[2]!), seq: 2, hash: JSON.parse(t[1]!.json).chain.hash };
      const ev: StreamEvidence = {
        stream: 'st',
        markers: [],
        keys: [registered(signer.key)],
        heads: [foreign, tampered],
      };
      const { problems } = verifyTrail(t, [ev]);
      expect(problems).toEqual([
        { kind: 'unregistered-key', stream: 'st', seq: 3, key: forger.key },
        { kind: 'bad-signature', stream: 'st', seq: 2, key: signer.key },
      ]);
    });

    test('dropping the tail after a signed head is caught by the signature alone', () => {
      const t = trail(5);
      const ev: StreamEvidence = { stream: 'st', markers: [], keys: [registered(signer.key)], heads: [headOf(t[4]!)] };
      expect(verifyTrail(t.slice(0, 3), [ev]).problems).toEqual([
        { kind: 'signed-head-missing', stream: 'st', seq: 5, hash: JSON.parse(t[4]!.json).chain.hash },
      ]);
    });

    test("with the collector's receipt key, a key without its valid receipt vouches for nothing", () => {
      const pem = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' });
      const collector = new ReceiptSigner(pem);
      const t = trail(3);
      const head = headOf(t[2]!);
      const receipted = registered(signer.key, collector.receipt('st', signer.key, 'static:a'));
      const ev = (key: ReturnType<typeof registered>): StreamEvidence => ({
        stream: 'st',
        markers: [],
        keys: [key],
        heads: [head],
      });
      const strict = { requireSignatures: true, receiptKey: collector.key };
      expect(verifyTrail(t, [ev(receipted)], strict).problems).toEqual([]);
      // An insider's key in the store: no receipt, a receipt for another owner or stream, or one by another collector.
      const other = new ReceiptSigner(
        generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }),
      );
      for (const forged of [
        registered(signer.key),
        registered(signer.key, collector.receipt('st', signer.key, 'static:b')),
        registered(signer.key, collector.receipt('another', signer.key, 'static:a')),
        registered(signer.key, other.receipt('st', signer.key, 'static:a')),
      ]) {
        const { problems } = verifyTrail(t, [ev(forged)], strict);
        expect(problems).toEqual([
          { kind: 'unreceipted-key', stream: 'st', key: signer.key },
          { kind: 'unsigned', stream: 'st', from: 1, to: 3 },
        ]);
        expect(describeProblem(problems[0]!)).toMatch(/has no valid receipt from the collector/);
      }
      // Without the receipt key, receipts are not checked.
      expect(verifyTrail(t, [ev(registered(signer.key))], { requireSignatures: true }).problems).toEqual([]);
    });
  });
});
