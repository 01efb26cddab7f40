/**
 * `byline verify`: recomputes every hash chain from the stored events, through the collector's
 * API or straight from the store, checks the sidecars' signed heads and the markers the collector
 * recorded, and names each event that was edited, removed, reordered, duplicated or left unsigned.
 */

import {
  canonicalJson,
  describeProblem,
  describeRetirement,
  publicKeyOf,
  type StoredPosition,
  type StreamEvidence,
  type TrailProblem,
  verifyTrail,
} from '@byline/api';

import { CollectorClient } from './collector-client.js';
import { type OptionValues, UsageError } from './command-table.js';

interface Trail {
  stored: StoredPosition[];
  evidence: StreamEvidence[];
  /** The receipt key the collector serves (API only). */
  receiptKey?: string | null;
}

/** Runs with the values parsed from the command table's `verify` entry. */
export async function verify(options: OptionValues, out: NodeJS.WritableStream = process.stdout): Promise<number> {
  const values = options as Partial<Record<string, string>>;
  const viaApi = values.collector !== undefined || values['token-file'] !== undefined;
  if (viaApi === (values.store !== undefined)) {
    throw new UsageError('give either --collector URL with --token-file FILE, or --store URL');
  }
  if (viaApi && (!values.collector || !values['token-file']))
    throw new UsageError('--collector and --token-file go together');
  const given = values['receipt-key'];
  if (given !== undefined && typeof publicKeyOf(given) === 'string') {
    throw new UsageError(`--receipt-key: ${publicKeyOf(given)}`);
  }
  const {
    stored,
    evidence,
    receiptKey: served,
  } = viaApi
    ? await fromCollector(new CollectorClient(values.collector!, values['token-file']!), values.session)
    : await fromStore(values.store!, values.session);
  const receiptKey = given ?? served ?? undefined;
  const report = verifyTrail(stored, evidence, { requireSignatures: true, ...(receiptKey ? { receiptKey } : {}) });
  if (report.events === 0 && report.problems.length === 0) {
    out.write(values.session ? `no events of session ${values.session}\n` : 'no events stored\n');
    return values.session ? 1 : 0;
  }
  let unsigned: TrailProblem[] = [];
  if (values['allow-unsigned']) {
    unsigned = report.problems.filter((p) => p.kind === 'unsigned');
    report.problems = report.problems.filter((p) => p.kind !== 'unsigned');
  }
  if (report.problems.length === 0) {
    const streams = `${report.streams} stream${report.streams === 1 ? '' : 's'}`;
    const heads = `${report.signedHeads} signed head${report.signedHeads === 1 ? '' : 's'}`;
    out.write(
      unsigned.length === 0
        ? `intact: ${report.events} events in ${streams}, every chain verified and covered by ${heads}${receiptKey ? ' (keys receipted by the collector)' : ''}\n`
        : `intact chains: ${report.events} events in ${streams}, every chain verified; ${heads}, but not everything is signed (--allow-unsigned):\n`,
    );
    for (const p of unsigned) out.write(`  ${describeProblem(p)}\n`);
    writeRetired(report.retired, out);
    return 0;
  }
  out.write(
    `NOT INTACT: ${report.problems.length} problem${report.problems.length === 1 ? '' : 's'} in ${report.events} events:\n`,
  );
  for (const p of report.problems) out.write(`  ${describeProblem(p)}\n`);
  writeRetired(report.retired, out);
  return 1;
}

/** Retired on purpose (retention): said, not counted as problems. */
function writeRetired(
  retired: Parameters<typeof describeRetirement>[0][] | undefined,
  out: NodeJS.WritableStream,
): void {
  if (!retired?.length) return;
  out.write('retired by retention (the remainder is verified from each checkpoint):\n');
  for (const r of retired) out.write(`  ${describeRetirement(r)}\n`);
}

/**
 * Every event to check: without --session, all stored events (not only the streams the store
 * lists, so deleting a stream's row hides nothing), and the streams it lists besides (so a stream
 * whose events were all deleted still shows its signed heads).
 */
async function fromCollector(client: CollectorClient, session: string | undefined): Promise<Trail> {
  const out: StoredPosition[] = [];
  const filters = session ? (await streamsOfSession(client, session)).map((stream) => ({ stream })) : [{}];
  for (const filter of filters) {
    for await (const page of client.events(filter)) {
      for (const item of page.events) {
        out.push({
          stream: item.stream ?? item.event.chain.stream,
          seq: item.seq ?? item.event.chain.seq,
          json: canonicalJson(item.event),
        });
      }
    }
  }
  const listed = session ? [] : (await client.streams()).map((s) => s.stream);
  const { receiptKey, streams: evidence } = await client.evidence(streamsOf(out, listed, filters));
  return { stored: out, evidence, receiptKey };
}

async function streamsOfSession(client: CollectorClient, session: string): Promise<string[]> {
  const streams = new Set<string>();
  for await (const page of client.events({ session }))
    for (const item of page.events) streams.add(item.stream ?? item.event.chain.stream);
  return [...streams];
}

async function fromStore(url: string, session: string | undefined): Promise<Trail> {
  const { openStore } = await import('@byline/collector');
  const store = await openStore(url);
  try {
    let filters: { stream?: string }[] = [{}];
    if (session) {
      const found = new Set<string>();
      for await (const e of pages(store, { session })) found.add(e.key.stream);
      filters = [...found].map((stream) => ({ stream }));
    }
    const out: StoredPosition[] = [];
    for (const filter of filters) {
      for await (const e of pages(store, filter)) out.push({ stream: e.key.stream, seq: e.key.seq, json: e.json });
    }
    const listed = session ? [] : (await store.streams()).map((s) => s.stream);
    return { stored: out, evidence: await store.evidence(streamsOf(out, listed, filters)) };
  } finally {
    await store.close();
  }
}

function streamsOf(stored: readonly StoredPosition[], listed: readonly string[], filters: { stream?: string }[]) {
  const streams = new Set<string>(listed);
  for (const f of filters) if (f.stream !== undefined) streams.add(f.stream);
  for (const s of stored) streams.add(s.stream);
  return [...streams];
}

type Store = Awaited<ReturnType<typeof import('@byline/collector')['openStore']>>;

async function* pages(store: Store, filter: Parameters<Store['query']>[0]) {
  let after: Parameters<Store['query']>[2];
  do {
    const page = await store.query(filter, 5000, after);
    yield* page.events;
    after = page.next ?? undefined;
  } while (after);
}
