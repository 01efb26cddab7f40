/** A store from its URL: `sqlite:PATH` or `postgres://…` (also `postgresql://…`). */
import { PostgresStore } from './postgres-store.js';
import { SqliteStore } from './sqlite-store.js';
import type { EventStore } from './types.js';

export async function openStore(url: string): Promise<EventStore> {
  let store: EventStore;
  if (url.startsWith('sqlite:')) store = new SqliteStore(url.slice('sqlite:'.length));
  else if (/^postgres(ql)?:\/\//.test(url)) store = new PostgresStore(url);
  else throw new Error(`unknown store ${JSON.stringify(redact(url))}: expected sqlite:PATH or postgres://…`);
  try {
    await store.init();
  } catch (e) {
    await store.close().catch(() => {});
    throw new Error(`cannot open the store ${redact(url)}: ${(e as Error).message}`);
  }
  return store;
}

/** The URL without its password, for messages and logs. */
export function redact(url: string): string {
  return url.replace(/^(postgres(?:ql)?:\/\/[^:/@]*):[^@]*@/, '$1:***@');
}
