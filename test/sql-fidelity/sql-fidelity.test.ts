/**
 * The statement log must match what Postgres executed, whatever the session settings (issue 7):
 * standard_conforming_strings however it is set, client encodings whose second bytes may be `\`
 * or `'`, results that disagree with the split, semicolons inside parentheses, and SQL-level
 * PREPARE sharing the protocol's prepared statements. Real Postgres, real sidecar, raw wire
 * conversations (so the exact bytes are ours) and node-postgres.
 */
import type { AuditEvent } from '@byline/api';
import iconv from 'iconv-lite';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import * as w from '../differential/wire.js';
import { reconcile, waitForLog } from '../harness/log-match.js';
import { AUTH_USERS, startPostgres, type TestPostgres } from '../harness/postgres.js';
import { startTestSidecar, type TestSidecar } from '../harness/sidecar.js';

let db: TestPostgres;
let sidecar: TestSidecar;

beforeAll(async () => {
  db = await startPostgres({ logStatements: true });
  sidecar = await startTestSidecar(db, { params: 'full' });
});

afterAll(async () => {
  await sidecar?.close();
  await db?.stop();
});

/** A fresh `customers` table with ids 1..30. */
async function resetCustomers(): Promise<void> {
  const c = db.client();
  await c.connect();
  await c.query('drop table if exists customers cascade');
  await c.query('create table customers (id int primary key, email text)');
  await c.query("insert into customers select g, 'c' || g || '@example.com' from generate_series(1, 30) g");
  await c.end();
}

async function customerExists(id: number): Promise<boolean> {
  const c = db.client();
  await c.connect();
  const r = await c.query('select 1 from customers where id = $1', [id]);
  await c.end();
  return r.rowCount === 1;
}

beforeEach(resetCustomers);

/** A raw conversation through the sidecar, logged in, with an application_name to find its events by. */
async function open(app: string, extra: Record<string, string> = {}): Promise<w.WireConnection> {
  const conn = await w.WireConnection.open({ host: sidecar.host, port: sidecar.port });
  await conn.send([w.startup({ user: 'agent', database: 'postgres', application_name: app, ...extra })]);
  await conn.read('Z');
  return conn;
}

/** A Query message holding exactly these bytes. */
function rawQuery(bytes: Buffer): Buffer {
  return w.message('Q', bytes, Buffer.from([0]));
}

/** Runs one Query; the answer without notices (escape_string_warning has its say about `\'`). */
async function run(conn: w.WireConnection, sql: string | Buffer): Promise<w.BackendMessage[]> {
  await conn.send([typeof sql === 'string' ? w.query(sql) : rawQuery(sql)]);
  return (await conn.read('Z')).filter((m) => m.type !== 'N');
}

async function eventsOf(app: string, count: number): Promise<AuditEvent[]> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const events = (await sidecar.statements()).filter((e) => e.session.applicationName === app);
    if (events.length >= count || Date.now() > deadline) return events;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** byline_statement_split_mismatches_total (0 where the counter does not exist). */
async function splitMismatchCount(): Promise<number> {
  const counter = (sidecar.running.metrics as { splitMismatches?: { get(): Promise<{ values: { value: number }[] }> } })
    .splitMismatches;
  return counter ? ((await counter.get()).values[0]?.value ?? 0) : 0;
}

const ATTACK = "select 'a\\''; delete from customers where id = 20; --'";

/** What the attack must leave in the trail when backslashes escape quotes. */
function expectAttackRecorded(events: AuditEvent[]): void {
  const attack = events.slice(-2);
  expect(attack.map((e) => e.statement?.text)).toEqual(["select 'a\\''", 'delete from customers where id = 20']);
  expect(attack[1]!.statement).toMatchObject({ command: 'DELETE', class: 'write', tables: ['customers'] });
  expect(attack[1]!.result).toMatchObject({ status: 'ok', tag: 'DELETE 1' });
}

describe('standard_conforming_strings = off, however it is set, splits as Postgres does', () => {
  test('SET standard_conforming_strings = off', async () => {
    const conn = await open('scs-set');
    try {
      await run(conn, 'set standard_conforming_strings = off');
      expect(w.types(await run(conn, ATTACK))).toBe('TDCCZ');
    } finally {
      conn.destroy();
    }
    expect(await customerExists(20)).toBe(false);
    expectAttackRecorded(await eventsOf('scs-set', 3));
  });

  test('SET in the same Query changes nothing for that Query: Postgres parsed it whole before', async () => {
    const conn = await open('scs-same-query');
    try {
      // One SELECT of one long string: the SET takes effect after the Query was split.
      expect(w.types(await run(conn, `set standard_conforming_strings = off; ${ATTACK}`))).toBe('CTDCSZ');
    } finally {
      conn.destroy();
    }
    expect(await customerExists(20)).toBe(true);
    const events = await eventsOf('scs-same-query', 2);
    expect(events.map((e) => [e.statement?.text, e.statement?.class])).toEqual([
      ['set standard_conforming_strings = off', 'misc'],
      [ATTACK, 'read'],
    ]);
  });

  test('startup options -c standard_conforming_strings=off', async () => {
    const conn = await open('scs-options', { options: '-c standard_conforming_strings=off' });
    try {
      expect(w.types(await run(conn, ATTACK))).toBe('TDCCZ');
    } finally {
      conn.destroy();
    }
    expectAttackRecorded(await eventsOf('scs-options', 2));
  });

  test('ALTER ROLE … SET standard_conforming_strings = off', async () => {
    const admin = db.client();
    await admin.connect();
    await admin.query(`alter role ${AUTH_USERS.scram} set standard_conforming_strings = off`);
    try {
      const conn = await open('scs-role');
      try {
        expect(w.types(await run(conn, ATTACK))).toBe('TDCCZ');
      } finally {
        conn.destroy();
      }
    } finally {
      await admin.query(`alter role ${AUTH_USERS.scram} reset standard_conforming_strings`);
      await admin.end();
    }
    expectAttackRecorded(await eventsOf('scs-role', 2));
  });

  test('SET LOCAL, and its rollback restoring the standard rule', async () => {
    const conn = await open('scs-local');
    try {
      await run(conn, 'begin');
      await run(conn, 'set local standard_conforming_strings = off');
      expect(w.types(await run(conn, ATTACK))).toBe('TDCCZ');
      await run(conn, 'rollback');
      // Standard rule again: `\'` no longer escapes, `''` doubles: one SELECT of one long string.
      expect(w.types(await run(conn, ATTACK))).toBe('TDCZ');
    } finally {
      conn.destroy();
    }
    const events = await eventsOf('scs-local', 6);
    expectAttackRecorded(events.slice(0, 4));
    expect(events[5]!.statement!.text).toBe(ATTACK);
    expect(events[5]!.statement!.class).toBe('read');
    expect(events).toHaveLength(6);
  });
});

describe('client encodings whose second bytes may be a backslash or a quote', () => {
  // SJIS: ソ is 0x83 0x5C, 表 0x95 0x5C: the second byte is `\`.
  const sql = "select E'ソ表' as k; delete from customers where id = 21; -- '";

  test('SJIS: split where Postgres splits, text converted exactly', async () => {
    const bytes = iconv.encode(sql, 'shift_jis');
    expect(bytes.includes(Buffer.from([0x83, 0x5c]))).toBe(true);
    const conn = await open('sjis', { client_encoding: 'SJIS' });
    try {
      expect(w.types(await run(conn, bytes))).toBe('TDCCZ');
    } finally {
      conn.destroy();
    }
    expect(await customerExists(21)).toBe(false);
    const events = await eventsOf('sjis', 2);
    expect(events.map((e) => e.statement?.text)).toEqual([
      "select E'ソ表' as k",
      'delete from customers where id = 21',
    ]);
    expect(events[1]!.statement).toMatchObject({ class: 'write', tables: ['customers'] });
    expect(events.every((e) => e.statement?.textRaw === undefined)).toBe(true);
  });

  test('an encoding iconv-lite lacks (SHIFT_JIS_2004): exact bytes in textRaw, split still right', async () => {
    const bytes = iconv.encode(sql, 'shift_jis'); // the same bytes in SHIFT_JIS_2004
    const conn = await open('sjis2004', { client_encoding: 'SHIFT_JIS_2004' });
    try {
      expect(w.types(await run(conn, bytes))).toBe('TDCCZ');
    } finally {
      conn.destroy();
    }
    const events = await eventsOf('sjis2004', 2);
    expect(events).toHaveLength(2);
    const [select, del] = events;
    expect(select!.statement!.textRaw).toEqual({
      encoding: 'SHIFT_JIS_2004',
      base64: iconv.encode("select E'ソ表' as k", 'shift_jis').toString('base64'),
    });
    // The readable text: ASCII as is, one U+FFFD per character it cannot convert.
    expect(select!.statement!.text).toBe("select E'\ufffd\ufffd' as k");
    // Pure ASCII converts exactly: no raw bytes needed.
    expect(del!.statement).toMatchObject({ text: 'delete from customers where id = 21', class: 'write' });
    expect(del!.statement!.textRaw).toBeUndefined();
  });

  test('JOHAB (no iconv-lite codec): the exact bytes in textRaw', async () => {
    // 갸 is 0x88 0xA1. Postgres's JOHAB verifier accepts only second bytes 0xA1–0xFE, so in
    // Postgres no JOHAB second byte can look like ASCII.
    const syllable = Buffer.from([0x88, 0xa1]);
    const bytes = Buffer.concat([Buffer.from("select E'"), syllable, Buffer.from("' as k; select 2; -- '")]);
    const conn = await open('johab', { client_encoding: 'JOHAB' });
    try {
      expect(w.types(await run(conn, bytes))).toBe('TDCTDCZ');
    } finally {
      conn.destroy();
    }
    const events = await eventsOf('johab', 2);
    expect(events.map((e) => [e.statement?.text, e.statement?.textRaw?.encoding ?? null])).toEqual([
      ["select E'\ufffd' as k", 'JOHAB'],
      ['select 2', null],
    ]);
    expect(Buffer.from(events[0]!.statement!.textRaw!.base64, 'base64').includes(syllable)).toBe(true);
  });

  test('BIG5, GBK, UHC, GB18030, EUC_JP and single-byte encodings: every event matches the log', async () => {
    const samples: [string, string, string][] = [
      ['BIG5', 'big5', '許功蓋'], // 0xB3 0x5C, 0xA5 0x5C, 0xBB 0x5C
      ['GBK', 'gbk', '乗乗'], // second bytes 0x5C
      ['UHC', 'cp949', '갂갃'], // second bytes in 0x41..0x5A
      ['GB18030', 'gb18030', '丂€'],
      ['EUC_JP', 'euc-jp', 'ソ表'],
      ['WIN1251', 'windows-1251', 'Жж'],
      ['KOI8R', 'koi8-r', 'Жж'],
      ['LATIN2', 'iso-8859-2', 'łŁ'],
    ];
    for (const [pgName, iconvName, chars] of samples) {
      const text = `select E'${chars}' as k; select 2; -- '`;
      const conn = await open(`enc-${pgName}`, { client_encoding: pgName });
      try {
        expect(w.types(await run(conn, iconv.encode(text, iconvName)))).toBe('TDCTDCZ');
      } finally {
        conn.destroy();
      }
      const events = await eventsOf(`enc-${pgName}`, 2);
      expect(events.map((e) => e.statement?.text)).toEqual([`select E'${chars}' as k`, 'select 2']);
    }
  });
});

describe('results that disagree with the split are never merged away', () => {
  test('SET in an unsynced Execute, then a Query: every result recorded, flagged, counted', async () => {
    const before = await splitMismatchCount();
    const conn = await open('mismatch');
    try {
      // Postgres reports the new setting only at the next ReadyForQuery, after it has already
      // split the Query under it: the sidecar cannot know, and Postgres returns two results.
      await conn.send([
        w.parse('', 'set standard_conforming_strings = off'),
        w.bind('', ''),
        w.execute(''),
        w.query(ATTACK),
      ]);
      expect(w.types((await conn.read('Z')).filter((m) => m.type !== 'N'))).toBe('12CTDCCSZ');
    } finally {
      conn.destroy();
    }
    expect(await customerExists(20)).toBe(false);
    const events = (await eventsOf('mismatch', 3)).slice(1);
    expect(events.map((e) => [e.statement?.text, e.statement?.command, e.statement?.class, e.result?.tag])).toEqual([
      [ATTACK, 'SELECT', 'read', 'SELECT 1'],
      [ATTACK, 'DELETE', 'write', 'DELETE 1'],
    ]);
    expect(events.every((e) => e.statement?.splitMismatch === true)).toBe(true);
    const after = await splitMismatchCount();
    expect(after - before).toBe(1);
  });

  test('a Query pipelined behind SET client_encoding is decoded with the encoding it runs under', async () => {
    const conn = await open('pipelined-encoding');
    try {
      // Both leave at once: the sidecar reads the SJIS Query before Postgres reports the encoding.
      await conn.send([
        w.query("set client_encoding = 'SJIS'"),
        rawQuery(iconv.encode("select E'ソ' as k; delete from customers where id = 22; -- '", 'shift_jis')),
      ]);
      await conn.read({ type: 'Z', times: 2 });
    } finally {
      conn.destroy();
    }
    expect(await customerExists(22)).toBe(false);
    const events = (await eventsOf('pipelined-encoding', 3)).slice(1);
    expect(events.map((e) => [e.statement?.text, e.statement?.class, e.statement?.splitMismatch])).toEqual([
      ["select E'ソ' as k", 'read', undefined],
      ['delete from customers where id = 22', 'write', undefined],
    ]);
  });
});

describe('semicolons inside parentheses do not end a statement', () => {
  test('CREATE RULE … DO INSTEAD (DELETE …; NOTIFY …) is one statement', async () => {
    const rule =
      'create rule protect as on delete to customers do instead (delete from customers where id = -old.id; notify customers_changed)';
    const conn = await open('rule');
    try {
      expect(w.types(await run(conn, `${rule}; select 1`))).toBe('CTDCZ');
    } finally {
      conn.destroy();
    }
    const events = await eventsOf('rule', 2);
    expect(events.map((e) => [e.statement?.text, e.result?.status, e.result?.tag])).toEqual([
      [rule, 'ok', 'CREATE RULE'],
      ['select 1', 'ok', 'SELECT 1'],
    ]);
    expect(events[0]!.statement).toMatchObject({ command: 'CREATE RULE', class: 'ddl' });
  });
});

describe('SQL PREPARE shares the protocol namespace', () => {
  test('Bind/Execute of a name made by SQL PREPARE records its body, not a stale Parse text', async () => {
    const conn = await open('prepare');
    try {
      // A protocol-level statement `x` first, then SQL replaces it under the same name.
      await conn.send([w.parse('x', 'select 1'), w.sync()]);
      await conn.read('Z');
      await run(conn, 'DEALLOCATE x; PREPARE X (int) AS delete from customers where id = $1');
      await conn.send([w.bind('', 'x', ['23']), w.execute(''), w.sync()]);
      expect(w.types(await conn.read('Z'))).toBe('2CZ');
      // SQL EXECUTE of it is recorded as the DELETE it ran.
      expect(w.types(await run(conn, 'execute x(26)'))).toBe('CZ');
      // A name that only SQL ever prepared.
      await run(conn, 'prepare "Upd" as update customers set email = null where id = $1');
      await conn.send([w.bind('', 'Upd', ['24']), w.execute(''), w.sync()]);
      expect(w.types(await conn.read('Z'))).toBe('2CZ');
      // DISCARD ALL forgets them all: Postgres refuses the Bind, and the trail says so.
      await run(conn, 'discard all');
      await conn.send([w.bind('', 'x', ['25']), w.execute(''), w.sync()]);
      expect(w.types(await conn.read('Z'))).toBe('EZ');
    } finally {
      conn.destroy();
    }
    expect(await customerExists(23)).toBe(false);
    expect(await customerExists(25)).toBe(true);
    const events = await eventsOf('prepare', 9);
    expect(events.find((e) => e.statement?.text === 'execute x(26)')?.statement).toMatchObject({
      command: 'DELETE',
      class: 'write',
    });
    expect(await customerExists(26)).toBe(false);
    const executes = events.filter((e) => e.statement?.protocol === 'extended');
    expect(executes.map((e) => [e.statement?.text, e.statement?.preparedName, e.result?.status])).toEqual([
      ['delete from customers where id = $1', 'x', 'ok'],
      ['update customers set email = null where id = $1', 'Upd', 'ok'],
      ['', null, 'error'],
    ]);
    expect(executes[0]!.statement).toMatchObject({ command: 'DELETE', class: 'write', tables: ['customers'] });
  });
});

describe('the completeness log agrees', () => {
  test('every statement above is in the trail as Postgres logged it', async () => {
    const log = (await waitForLog(db)).filter((e) => e.user === AUTH_USERS.scram);
    const events = await sidecar.statements();
    const r = reconcile(log, events);
    // Two texts differ from the log, by design: the SHIFT_JIS_2004 and JOHAB statements do not
    // convert exactly, so their exact bytes are in textRaw and their texts are renderings.
    expect(r.missing.map((m) => m.message)).toEqual([
      "statement: select E'ソ表' as k; delete from customers where id = 21; -- '",
      "statement: select E'갸' as k; select 2; -- '",
    ]);
    const others = r.extra.filter((e) => !['sjis2004', 'johab'].includes(e.session.applicationName ?? ''));
    expect(others.map((e) => e.statement?.text)).toEqual([]);
  });
});
