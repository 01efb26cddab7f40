/**
 * `byline verify`: recomputes every hash chain from the stored events, through the collector's
 * API or straight from the store, and names each event that was edited, removed or reordered.
 */
import { canonicalJson, describeProblem, type StoredPosition, verifyTrail } from '@byline/api';
import { CollectorClient } from './collector-client.js';
import { type OptionValues, UsageError } from './command-table.js';

/** Runs with the values parsed from the command table's `verify` entry. */
export async function verify(options: OptionValues, out: NodeJS.WritableStream = process.stdout): Promise<number> {
  const values = options as Partial<Record<string, string>>;
  const viaApi = values.collector !== undefined || values['token-file'] !== undefined;
  if (viaApi === (values.store !== undefined)) {
    throw new UsageError('give either --collector URL with --token-file FILE, or --store URL');
  }
  if (viaApi && (!values.collector || !values['token-file']))
    throw new UsageError('--collector and --token-file go together');
  const stored = viaApi
    ? await fromCollector(new CollectorClient(values.collector!, values['token-file']!), values.session)
    : await fromStore(values.store!, values.session);
  const report = verifyTrail(stored);
  if (report.events === 0) {
    out.write(values.session ? `no events of session ${values.session}\n` : 'no events stored\n');
    return values.session ? 1 : 0;
  }
  if (report.problems.length === 0) {
    out.write(
      `intact: ${report.events} events in ${report.streams} stream${report.streams === 1 ? '' : 's'}, every chain verified\n`,
    );
    return 0;
  }
  out.write(
    `NOT INTACT: ${report.problems.length} problem${report.problems.length === 1 ? '' : 's'} in ${report.events} events:\n`,
  );
  for (const p of report.problems) out.write(`  ${describeProblem(p)}\n`);
  return 1;
}

async function fromCollector(client: CollectorClient, session: string | undefined): Promise<StoredPosition[]> {
  const streams = session ? await streamsOfSession(client, session) : (await client.streams()).map((s) => s.stream);
  const out: StoredPosition[] = [];
  for (const stream of streams) {
    for await (const page of client.events({ stream })) {
      for (const item of page.events) {
        out.push({
          stream: item.stream ?? item.event.chain.stream,
          seq: item.seq ?? item.event.chain.seq,
          json: canonicalJson(item.event),
        });
      }
    }
  }
  return out;
}

async function streamsOfSession(client: CollectorClient, session: string): Promise<string[]> {
  const streams = new Set<string>();
  for await (const page of client.events({ session }))
    for (const item of page.events) streams.add(item.event.chain.stream);
  return [...streams];
}

async function fromStore(url: string, session: string | undefined): Promise<StoredPosition[]> {
  const { openStore } = await import('@byline/collector');
  const store = await openStore(url);
  try {
    let streams: string[];
    if (session) {
      const found = new Set<string>();
      for await (const e of pages(store, { session })) found.add(e.key.stream);
      streams = [...found];
    } else {
      streams = (await store.streams()).map((s) => s.stream);
    }
    const out: StoredPosition[] = [];
    for (const stream of streams) {
      for await (const e of pages(store, { stream })) out.push({ stream: e.key.stream, seq: e.key.seq, json: e.json });
    }
    return out;
  } finally {
    await store.close();
  }
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
