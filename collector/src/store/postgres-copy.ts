/**
 * `COPY … FROM STDIN` for the PostgreSQL store's inserts: rows go to the server as one text
 * buffer, which it loads faster than an INSERT over unnest(), and which costs the collector one
 * string concatenation per row instead of pg's per-element array quoting.
 *
 * pg runs COPY through a Submittable whose `handleCopyInResponse` sends the data (the interface
 * pg-copy-streams uses); the whole buffer is sent in one CopyData message.
 */
import pg from 'pg';

/** The connection methods a COPY needs (pg's Connection, not in its type declarations). */
interface CopyConnection {
  sendCopyFromChunk(chunk: Buffer): void;
  endCopyFrom(): void;
}

class CopyIn extends pg.Query {
  constructor(
    sql: string,
    private readonly data: Buffer,
  ) {
    super(sql);
  }

  handleCopyInResponse(connection: CopyConnection): void {
    if (this.data.length > 0) connection.sendCopyFromChunk(this.data);
    connection.endCopyFrom();
  }
}

/** Runs `COPY table (columns) FROM STDIN` with `text` (rows from `copyRow`); resolves to the rows copied. */
export function copyIn(
  client: pg.ClientBase,
  table: string,
  columns: readonly string[],
  text: string,
): Promise<number> {
  const sql = `COPY ${table} (${columns.join(', ')}) FROM STDIN`;
  return new Promise((resolve, reject) => {
    const query = new CopyIn(sql, Buffer.from(text, 'utf8'));
    query.on('error', reject);
    query.on('end', (result) => resolve(result.rowCount ?? 0));
    client.query(query);
  });
}

const SPECIAL = /[\\\n\r\t]/;
const SPECIAL_ALL = /[\\\n\r\t]/g;
const ESCAPES: Record<string, string> = { '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** One value in COPY's text format: \N for null, backslash, newline, CR and tab escaped. */
export function copyValue(value: string | number | null): string {
  if (value === null) return '\\N';
  if (typeof value === 'number') return String(value);
  return SPECIAL.test(value) ? value.replace(SPECIAL_ALL, (c) => ESCAPES[c]!) : value;
}

/** One row in COPY's text format, newline included. */
export function copyRow(values: readonly (string | number | null)[]): string {
  let row = copyValue(values[0]!);
  for (let i = 1; i < values.length; i++) row += `\t${copyValue(values[i]!)}`;
  return `${row}\n`;
}
