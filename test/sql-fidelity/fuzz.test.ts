/**
 * Fuzzes the one SQL tokenizer against Postgres itself: random Queries built from the pieces that
 * decide where a statement ends (E'', U&'', B'', dollar tags, nested comments, `--` comments in
 * string continuations, backslashes under both settings of standard_conforming_strings,
 * parentheses, multibyte SJIS characters whose second byte is `\`), sent through the sidecar and
 * compared with Postgres's own statement log: every statement Postgres ran has exactly one event,
 * with exactly its text, and no event is left over (test/harness/log-match.ts).
 *
 * Some statements are also made with SQL PREPARE and run with Bind/Execute: the Execute must carry
 * the body. Reproducible: BYLINE_FUZZ_SEED picks the seed (the failure message names it),
 * BYLINE_FUZZ_RUNS the number of Queries per session setting.
 */
import type { AuditEvent } from '@byline/api';
import fc from 'fast-check';
import iconv from 'iconv-lite';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import * as w from '../differential/wire.js';
import { reconcile, waitForLog } from '../harness/log-match.js';
import { AUTH_USERS, startPostgres, type TestPostgres } from '../harness/postgres.js';
import { startTestSidecar, type TestSidecar } from '../harness/sidecar.js';

const SEED = Number(process.env.BYLINE_FUZZ_SEED ?? 20261206);
const RUNS = Number(process.env.BYLINE_FUZZ_RUNS ?? 40);
/** Statements per setting also prepared with SQL PREPARE and run with Bind/Execute. */
const PREPARED = Math.max(1, Math.floor(RUNS / 4));

let db: TestPostgres;
let sidecar: TestSidecar;

beforeAll(async () => {
  db = await startPostgres({ logStatements: true });
  sidecar = await startTestSidecar(db);
});

afterAll(async () => {
  await sidecar?.close();
  await db?.stop();
});

interface Mode {
  name: string;
  scsOff: boolean;
  /** Client encoding; SJIS texts are sent as SJIS bytes. */
  sjis: boolean;
}

const MODES: Mode[] = [
  { name: 'scs-on', scsOff: false, sjis: false },
  { name: 'scs-off', scsOff: true, sjis: false },
  { name: 'sjis', scsOff: false, sjis: true },
  { name: 'sjis-scs-off', scsOff: true, sjis: true },
];

const pieces = (list: string[]) => fc.array(fc.constantFrom(...list), { maxLength: 5 }).map((p) => p.join(''));

/** Value expressions that are valid SQL under `mode`, each a trap for a scanner that gets one rule wrong. */
function expression(mode: Mode): fc.Arbitrary<string> {
  // Characters that are harmless inside any quote, including SJIS ones whose second byte is 0x5C.
  const chars = [
    ' ',
    'x',
    ';',
    '--',
    '/*',
    '*/',
    '"',
    '$',
    '$$',
    '\n',
    ...(mode.sjis ? ['ソ', '表', '能', 'ｱ'] : ['é', '😀']),
  ];
  // Postgres refuses `\'` in client-only encodings such as SJIS (backslash_quote = safe_encoding).
  const escapedQuote = mode.sjis ? [] : ["\\'"];
  // In '…': `''` always escapes a quote; a backslash escapes only with the setting off.
  const plainInside = mode.scsOff ? [...chars, "''", ...escapedQuote, '\\\\', '\\n'] : [...chars, "''", '\\'];
  const plain = pieces(plainInside).map((s) => `'${s}'`);
  const eString = pieces([...chars, "''", ...escapedQuote, '\\\\', '\\t']).map((s) => `E'${s}'`);
  const continued = fc
    .tuple(pieces(plainInside), fc.constantFrom('\n', " -- c;'\n", '\n-- x\n  '), pieces(plainInside))
    .map(([a, sep, b]) => `'${a}'${sep}'${b}'`);
  // No `$` of its own inside: `$a` cannot close any of the tags used.
  const dollarInside = [...chars.filter((c) => !c.includes('$')), "'", '\\', '$a'];
  const dollar = fc
    .tuple(fc.constantFrom('', 'q', 'tag_1'), pieces(dollarInside))
    .map(([tag, s]) => `$${tag}$${s}$${tag}$`);
  const bits = fc.constantFrom("B'0101'", "X'1F'", "b'1'\n'0'");
  const number = fc.constantFrom('1', '42.5', '.5e3', '0x1F', '1_000');
  const base = [plain, eString, continued, dollar, bits, number];
  // U&'…' is an error while backslashes are escapes.
  if (!mode.scsOff) base.push(pieces([...chars, "''", '\\0061']).map((s) => `U&'${s}'`));
  const leaf = fc.oneof(...base);
  return fc.oneof(
    { weight: 3, arbitrary: leaf },
    { weight: 1, arbitrary: leaf.map((e) => `(${e})`) },
    { weight: 1, arbitrary: fc.tuple(leaf, leaf).map(([a, b]) => `(${a}) is not null and (${b}) is not null`) },
  );
}

/** Whitespace and comments between tokens. */
const gap = fc.constantFrom(' ', '\n', " /* ; ' */ ", " /* a /* nested ; */ ' */ ", " -- ; '\n", '\t');

function statement(mode: Mode): fc.Arbitrary<string> {
  const e = expression(mode);
  return fc.oneof(
    fc.tuple(e, gap, e).map(([a, g, b]) => `select ${a} as "c;1",${g}${b}`),
    e.map((a) => `select ${a}`),
    fc.tuple(e, gap).map(([a, g]) => `values${g}(${a})`),
  );
}

function query(mode: Mode): fc.Arbitrary<string> {
  return fc
    .tuple(fc.array(fc.tuple(statement(mode), gap), { minLength: 1, maxLength: 4 }), fc.boolean())
    .map(([parts, trailing]) => parts.map(([s, g]) => `${s}${g}`).join(';') + (trailing ? ';' : ''));
}

async function runSession(mode: Mode, texts: string[], bodies: string[]): Promise<void> {
  const conn = await w.WireConnection.open({ host: sidecar.host, port: sidecar.port });
  const params: Record<string, string> = { user: 'agent', database: 'postgres', application_name: `fuzz-${mode.name}` };
  if (mode.scsOff) params.options = '-c standard_conforming_strings=off -c escape_string_warning=off';
  if (mode.sjis) params.client_encoding = 'SJIS';
  try {
    await conn.send([w.startup(params)]);
    await conn.read('Z');
    const expectNoError = (answer: w.BackendMessage[], what: string) => {
      const error = answer.find((m) => m.type === 'E');
      if (error) throw new Error(`Postgres refused ${what} (${mode.name}): ${w.fields(error).M}`);
    };
    const send = async (text: string) => {
      const bytes = mode.sjis ? iconv.encode(text, 'shift_jis') : Buffer.from(text);
      await conn.send([w.message('Q', bytes, Buffer.from([0]))]);
      expectNoError(await conn.read('Z'), `a generated Query ${JSON.stringify(text)}`);
    };
    for (const text of texts) await send(text);
    // SQL PREPARE, then the protocol's Bind/Execute of that name: the Execute records the body.
    for (const [i, body] of bodies.entries()) {
      await send(`prepare fz_${i} as ${body}`);
      await conn.send([w.bind('', `fz_${i}`), w.execute(''), w.sync()]);
      expectNoError(await conn.read('Z'), `Bind/Execute of ${JSON.stringify(body)}`);
    }
  } finally {
    conn.destroy();
  }
}

describe('tokenizer vs Postgres: random tricky Queries, through the sidecar', () => {
  test(`every statement in the trail with Postgres's text (seed ${SEED}, ${RUNS} Queries per setting)`, async () => {
    const prepared = new Map<string, string[]>();
    for (const [i, mode] of MODES.entries()) {
      const texts = fc.sample(query(mode), { seed: SEED + i, numRuns: RUNS });
      const bodies = fc.sample(statement(mode), { seed: SEED + 100 + i, numRuns: PREPARED });
      prepared.set(`fuzz-${mode.name}`, bodies);
      await runSession(mode, texts, bodies);
    }
    const log = (await waitForLog(db)).filter((e) => e.user === AUTH_USERS.scram);
    let events: AuditEvent[] = [];
    const expected = (RUNS + 2 * PREPARED) * MODES.length;
    for (let tries = 0; tries < 100; tries++) {
      events = (await sidecar.statements()).filter((e) => e.session.applicationName?.startsWith('fuzz-'));
      if (events.length >= expected) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const r = reconcile(log, events);
    const context = `seed ${SEED}; rerun with BYLINE_FUZZ_SEED=${SEED}`;
    expect(
      r.missing.map((m) => m.text),
      context,
    ).toEqual([]);
    expect(
      [...r.extra, ...r.duplicated, ...r.refused].map((e) => e.statement?.text),
      context,
    ).toEqual([]);
    expect(
      events.filter((e) => e.statement?.splitMismatch).map((e) => e.statement?.text),
      context,
    ).toEqual([]);
    expect(r.matchedEvents.size, context).toBe(events.length);
    for (const [app, bodies] of prepared) {
      const executes = events.filter((e) => e.session.applicationName === app && e.statement?.protocol === 'extended');
      expect(
        executes.map((e) => e.statement?.text),
        context,
      ).toEqual(bodies);
    }
    expect(r.matchedUnits).toBe(expected);
  });
});
