/** verifyTrail over a stream whose beginning was retired: signed heads, coverage and what is reported. */

import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { ChainWriter } from './chain.js';
import { HeadSigner, ReceiptSigner } from './signed-head.js';
import {
  describeProblem,
  type Retirement,
  type StoredPosition,
  type StreamEvidence,
  verifyTrail,
} from './verify-trail.js';

function event(id: string) {
  return {
    v: 1 as const,
    id,
    type: 'statement' as const,
    time: '2026-11-27T03:00:00.000Z',
    identity: {
      name: 'a',
      kind: 'agent' as const,
      namespace: null,
      serviceAccount: null,
      pod: null,
      source: 'static' as const,
    },
    session: { id: 's', seq: 1, client: null, applicationName: null, dbUser: null },
    target: { route: 'r', host: 'h', port: 5432, database: 'd' },
    statement: null,
    result: null,
    authz: null,
    context: null,
  };
}

const signer = new HeadSigner();

function setup(n: number, through: number, heads: number[]) {
  const w = new ChainWriter('st');
  const all = Array.from({ length: n }, (_, i) => w.append(event(`e${i + 1}`) as never));
  const kept: StoredPosition[] = all
    .slice(through)
    .map((c) => ({ stream: 'st', seq: c.event.chain.seq, json: c.json }));
  const retired: Retirement = {
    throughSeq: through,
    throughHash: all[through - 1]!.event.chain.hash,
    count: through,
    digest: 'd'.repeat(64),
    retiredAt: '2026-12-06T12:00:00.000Z',
  };
  const ev: StreamEvidence = {
    stream: 'st',
    lastSeq: n,
    retired,
    markers: [],
    keys: [{ key: signer.key, owner: 'static:a', receipt: null }],
    heads: heads.map((seq) => signer.sign({ stream: 'st', seq, hash: all[seq - 1]!.event.chain.hash })),
  };
  return { kept, ev, retired };
}

describe('verifyTrail after retention', () => {
  test('heads of retired events are skipped, the head at the checkpoint counts, the remainder must be covered', () => {
    const { kept, ev, retired } = setup(8, 4, [2, 4, 8]);
    expect(verifyTrail(kept, [ev], { requireSignatures: true })).toEqual({
      streams: 1,
      events: 4,
      signedHeads: 2,
      retired: [{ stream: 'st', ...retired }],
      problems: [],
    });
  });

  test('unsigned events are counted from the checkpoint on, not from seq 1', () => {
    const { kept, ev } = setup(8, 4, [2]);
    expect(verifyTrail(kept, [ev], { requireSignatures: true }).problems).toEqual([
      { kind: 'unsigned', stream: 'st', from: 5, to: 8 },
    ]);
  });

  test('a signed head at the checkpoint that disagrees with its hash exposes a forged checkpoint', () => {
    const { kept, ev } = setup(6, 3, [3, 6]);
    const forged = { ...ev, retired: { ...ev.retired!, throughHash: 'f'.repeat(64) } };
    const kinds = verifyTrail(kept, [forged]).problems.map((p) => p.kind);
    expect(kinds).toEqual(expect.arrayContaining(['unlinked', 'signed-head-missing']));
  });

  test('an event written at a retired seq afterwards is named', () => {
    const { kept, ev } = setup(5, 2, []);
    const w = new ChainWriter('st');
    const fake = w.append(event('fake') as never);
    const problems = verifyTrail([...kept, { stream: 'st', seq: 1, json: fake.json }], [ev]).problems;
    expect(problems).toEqual([{ kind: 'after-retirement', stream: 'st', seq: 1, throughSeq: 2 }]);
  });

  test("with the collector's key, a checkpoint must carry its signature: one moved over more events does not verify", () => {
    const collector = new ReceiptSigner(
      generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    );
    const other = new ReceiptSigner(
      generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    );
    const { kept, ev: withKeys, retired } = setup(8, 4, []);
    const ev = { ...withKeys, keys: [] }; // keys and their receipts are another check's
    const withSig = (r: Retirement, by = collector) => ({
      ...ev,
      retired: { ...r, signature: by.checkpoint('st', r) },
    });
    const options = { receiptKey: collector.key };
    expect(verifyTrail(kept, [withSig(retired)], options).problems).toEqual([]);
    // Without the key nothing is asked of it; with it, unsigned, signed by another key, or edited after signing.
    expect(verifyTrail(kept, [ev]).problems).toEqual([]);
    const unsigned = [{ kind: 'unsigned-checkpoint', stream: 'st', throughSeq: 4 }];
    expect(verifyTrail(kept, [ev], options).problems).toEqual(unsigned);
    expect(verifyTrail(kept, [withSig(retired, other)], options).problems).toEqual(unsigned);
    const signed = withSig(retired);
    const recounted = { ...signed, retired: { ...signed.retired, count: 3 } };
    expect(verifyTrail(kept, [recounted], options).problems).toEqual(unsigned);
    expect(describeProblem(unsigned[0] as never)).toMatch(
      /seq 1–4: the retention checkpoint carries no valid signature/,
    );
  });
});
