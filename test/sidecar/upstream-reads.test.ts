/**
 * The sidecar reads Postgres into one reused buffer per session (sidecar/src/proxy/read-buffer.ts)
 * and forwards views of it. A view still waiting to be written when the next read comes — a slow
 * client's backpressure, a bulk result deferred to the end of the turn — must keep its bytes:
 * every row here is checked against what Postgres computed, not only counted.
 */
import { createHash } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { dataRow, query, startup, types, WireConnection } from '../differential/wire.js';
import { AUTH_USERS, startPostgres, TEST_PASSWORD, type TestPostgres } from '../harness/postgres.js';
import { startTestSidecar, type TestSidecar } from '../harness/sidecar.js';

let db: TestPostgres;
let sidecar: TestSidecar;

beforeAll(async () => {
  db = await startPostgres();
  sidecar = await startTestSidecar(db);
});

afterAll(async () => {
  await sidecar?.close();
  await db?.stop();
});

const md5 = (s: string) => createHash('md5').update(s).digest('hex');
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Row i of the test queries: its number, its md5 and a filler whose length depends on i. */
function expectedRow(i: number, width: number): string[] {
  return [String(i), md5(String(i)), md5(String(i)).slice(0, 8).repeat(width)];
}

const rowsSql = (from: number, to: number, width: number) =>
  `select i, md5(i::text), repeat(left(md5(i::text), 8), ${width}) from generate_series(${from}, ${to}) i`;

describe('upstream reads into a reused buffer', () => {
  test('a client that stops reading gets every byte of a large result as Postgres sent it', async () => {
    const conn = await WireConnection.open({ host: sidecar.host, port: sidecar.port });
    try {
      await conn.send([startup({ user: AUTH_USERS.scram, database: 'postgres' })]);
      await conn.read('Z');
      // The client stops reading: the sidecar's writes back up while it has read more from Postgres.
      conn.socket.pause();
      await conn.send([query(rowsSql(1, 20_000, 40))]);
      await pause(400);
      conn.socket.resume();
      const answer = await conn.read('Z', 30_000);
      const rows = answer.filter((m) => m.type === 'D');
      expect(types(answer.filter((m) => m.type !== 'D'))).toBe('TCZ');
      expect(rows).toHaveLength(20_000);
      const wrong = rows.findIndex((m, k) => dataRow(m).join('|') !== expectedRow(k + 1, 40).join('|'));
      expect(wrong).toBe(-1);
    } finally {
      conn.destroy();
    }
  });

  test('concurrent sessions mixing small answers and bulk results all get the right rows', async () => {
    const session = async (n: number) => {
      const client = new pg.Client({
        host: sidecar.host,
        port: sidecar.port,
        user: AUTH_USERS.scram,
        password: TEST_PASSWORD,
        database: 'postgres',
      });
      await client.connect();
      try {
        for (let round = 0; round < 12; round++) {
          // Alternate one-row answers (one small read each) with results of several reads.
          const width = round % 3 === 0 ? 200 : 1;
          const from = n * 1000 + round * 50;
          const to = round % 2 === 0 ? from : from + 49 + round * 40;
          const result = await client.query({ text: rowsSql(from, to, width), rowMode: 'array' });
          expect(result.rows).toHaveLength(to - from + 1);
          result.rows.forEach((row: unknown[], k: number) => {
            expect((row as (string | number)[]).map(String)).toEqual(expectedRow(from + k, width));
          });
        }
      } finally {
        await client.end();
      }
    };
    await Promise.all([1, 2, 3, 4, 5, 6].map(session));
  });
});
