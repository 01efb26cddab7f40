/**
 * The dead-letter area: events the collector permanently refused, kept verbatim (the canonical
 * line the chain covers) in `<spoolDir>/dead-letter/`, one file per event named by its chain
 * position and id, with the collector's answer beside it. Out of the agent's reach like the spool.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface DeadLetterEntry {
  /** The file holding the event, relative to the dead-letter directory. */
  file: string;
  /** False when this event was dead-lettered before (a restart re-sent it): report it once. */
  fresh: boolean;
}

export class DeadLetterStore {
  constructor(readonly dir: string) {}

  put(line: string, key: { seq: number | null; id: string | null }, answer: { status: number; message: string }) {
    const base = `${String(key.seq ?? 0).padStart(12, '0')}-${key.id ?? 'unparsable'}`;
    const file = `${base}.ndjson`;
    const path = join(this.dir, file);
    if (existsSync(path)) return { file, fresh: false } satisfies DeadLetterEntry;
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const why = { status: answer.status, message: answer.message, at: new Date().toISOString() };
    writeDurably(join(this.dir, `${base}.refusal.json`), `${JSON.stringify(why)}\n`);
    writeDurably(path, `${line}\n`); // last: its presence means the entry is whole
    return { file, fresh: true } satisfies DeadLetterEntry;
  }
}

function writeDurably(path: string, text: string): void {
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, text, { mode: 0o600 });
  const fd = openSync(tmp, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}
