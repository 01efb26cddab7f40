/**
 * The trail viewer in a real browser (Debian's chromium through puppeteer-core), against a real
 * collector filled by a real sidecar in front of a real Postgres. Approvals: the sidecar stamps
 * `authz.approval` only with a control-plane policy, so a migration agent's approved statements
 * arrive as a static writer's batches (chained and signed as a sidecar does) through the same
 * collector ingest. Assertions are on what a person sees; screenshots go to test/ui/screenshots.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type ChainedEvent,
  ChainWriter,
  canonicalJson,
  formatSignedHeadHeader,
  HeadSigner,
  SIGNED_HEAD_HEADER,
  SidecarConfigSchema,
  validate,
} from '@byline/api';
import { ndjson, type RunningCollector, SampleStream, startCollector } from '@byline/collector';
import { type RunningSidecar, startSidecar } from '@byline/sidecar';
import Database from 'better-sqlite3';
import pg from 'pg';
import pino from 'pino';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { AUTH_USERS, startPostgres, TEST_PASSWORD, type TestPostgres } from '../harness/postgres.js';

/**
 * The page's globals as the functions run inside chromium see them: the Node program is compiled
 * without the DOM library (it would change Node's own fetch types), so the little used is declared.
 */
interface PageNode {
  textContent: string | null;
  value: string;
  cells: Iterable<PageNode>;
  getAttribute(name: string): string | null;
  getBoundingClientRect(): { top: number; bottom: number };
}
declare const document: {
  querySelector(selector: string): PageNode | null;
  activeElement: PageNode | null;
  documentElement: { scrollWidth: number; clientWidth: number };
};
declare const location: { search: string };
declare const window: { __pwned?: number };
declare const innerHeight: number;

const CHROMIUM = [process.env.BYLINE_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser'].find(
  (p): p is string => !!p && existsSync(p),
);
const SHOTS = join(import.meta.dirname, 'screenshots');
const READER = 'reader-token-0123456789';
const SIDECAR_WRITER = 'sidecar-writer-token-0123456789';
const MIGRATION_WRITER = 'migration-writer-token-0123456789';
const BULK_WRITER = 'bulk-writer-token-0123456789';
/** Rows for the virtualized table: the bar. */
const BULK = Number(process.env.BYLINE_VIEWER_BULK ?? 100_000);

let browser: Browser | undefined;
let skipReason = '';
if (!CHROMIUM) skipReason = 'no chromium found (apt-get install chromium, or set BYLINE_CHROMIUM)';
else {
  try {
    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'],
    });
  } catch (e) {
    skipReason = `chromium at ${CHROMIUM} cannot start: ${(e as Error).message.split('\n')[0]}`;
  }
}
if (!browser) {
  console.warn(
    `\n${'!'.repeat(100)}\n!!! SKIPPING the trail viewer browser tests: ${skipReason}\n${'!'.repeat(100)}\n`,
  );
}

let dir: string;
let db: TestPostgres;
let collector: RunningCollector;
let sidecar: RunningSidecar;
let dbPath: string;
/** What the billing agent ran in its first session, in order. */
const SESSION_A = [
  'select id, email from customers where id = 1',
  "update customers set email = 'new@example.com' where id = 1",
  'insert into orders (customer_id, total) values (1, 10)',
  'select 1/0',
  `select '<img src=x onerror="window.__pwned=1">' as probe`,
  'select count(*) from orders',
];
let migration: ChainedEvent[];
const migrationSigner = new HeadSigner();

async function post(batch: readonly ChainedEvent[], token: string, signer: HeadSigner): Promise<void> {
  const { stream, seq, hash } = batch[batch.length - 1]!.event.chain;
  const res = await fetch(`${collector.url}/v1/events`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${token}`,
      'content-type': 'application/x-ndjson',
      [SIGNED_HEAD_HEADER]: formatSignedHeadHeader(signer.sign({ stream, seq, hash })),
    },
    body: ndjson(batch),
  });
  expect(res.status, await res.text()).toBe(200);
}

async function api(path: string) {
  const res = await fetch(`${collector.url}${path}`, { headers: { authorization: `Bearer ${READER}` } });
  return res.json() as Promise<{ events: { event: { id: string; statement?: { text: string } } }[] }>;
}

async function waitFor<T>(what: string, check: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function run(port: number, application: string, statements: readonly string[]): Promise<void> {
  const client = new pg.Client({
    host: '127.0.0.1',
    port,
    user: 'agent',
    database: 'postgres',
    application_name: application,
  });
  await client.connect();
  for (const sql of statements) await client.query(sql).catch(() => undefined);
  await client.end();
}

beforeAll(async () => {
  if (!browser) return;
  dir = mkdtempSync(join(tmpdir(), 'byline-viewer-'));
  mkdirSync(SHOTS, { recursive: true });
  db = await startPostgres();
  const admin = db.client();
  await admin.connect();
  await admin.query(
    'CREATE TABLE customers (id int PRIMARY KEY, email text); INSERT INTO customers VALUES (1, $$a@example.com$$), (2, $$b@example.com$$);' +
      'CREATE TABLE orders (id serial PRIMARY KEY, customer_id int, total int);' +
      `GRANT ALL ON customers, orders, orders_id_seq TO ${AUTH_USERS.scram}`,
  );
  await admin.end();

  dbPath = join(dir, 'trail.db');
  collector = await startCollector(
    {
      listen: '127.0.0.1:0',
      store: `sqlite:${dbPath}`,
      auth: {
        static: [
          { token: SIDECAR_WRITER, identity: 'billing-agent' },
          { token: MIGRATION_WRITER, identity: 'migration-agent' },
          { token: BULK_WRITER, identity: 'bulk-agent' },
          { token: READER, reader: true },
        ],
      },
    },
    { logger: pino({ level: 'silent' }) },
  );

  writeFileSync(join(dir, 'password'), `${TEST_PASSWORD}\n`);
  writeFileSync(join(dir, 'writer'), `${SIDECAR_WRITER}\n`);
  const upstream = { host: db.host, port: db.port, database: 'postgres', sslMode: 'disable' };
  const credentials = {
    mode: 'inject',
    username: AUTH_USERS.scram,
    passwordFile: join(dir, 'password'),
    acceptAnyUser: true,
  };
  const config = validate(
    SidecarConfigSchema,
    {
      identity: { static: { name: 'billing-agent', kind: 'agent' } },
      routes: [{ name: 'orders-db', listen: '127.0.0.1:0', upstream, credentials, access: 'readWrite' }],
      audit: {
        params: 'redacted',
        spoolDir: join(dir, 'spool'),
        sinks: [{ collector: { url: collector.url, tokenFile: join(dir, 'writer') } }],
      },
    },
    'viewer test sidecar',
  );
  sidecar = await startSidecar(config, { logger: pino({ level: 'silent' }) });
  const [orders] = sidecar.routes;
  await run(orders!.port, 'billing-job', SESSION_A);
  await run(orders!.port, 'billing-report', [
    'select count(*) from customers',
    "update customers set email = 'x' where id = 2",
  ]);
  await waitFor('the sidecar to ship both sessions', async () => {
    const page = await api('/v1/events?identity=billing-agent&type=statement');
    return page.events.length >= SESSION_A.length + 2 ? true : undefined;
  });

  // Yesterday, under approval CHG-7 (requested by carol, approved by alice), a migration agent changed customers.
  const yesterday = Date.now() - 24 * 3600_000;
  const sample = new SampleStream({
    identity: 'migration-agent',
    approval: 'CHG-7',
    requestedBy: 'carol@example.com',
    startMs: yesterday,
    sessionLength: 6,
  });
  migration = sample.take(6);
  // And then tried something the policy refused (as a sidecar records a denial).
  const last = migration[migration.length - 1]!.event.chain;
  const base = sample.nextEvent();
  migration.push(
    new ChainWriter(last.stream, last.seq, last.hash).append({
      ...base,
      statement: {
        ...base.statement!,
        text: 'drop table customers',
        command: 'DROP TABLE',
        class: 'ddl',
        tables: ['customers'],
      },
      result: {
        status: 'denied',
        sqlstate: '42501',
        error: 'byline: ddl is not allowed',
        rows: null,
        tag: null,
        durationUs: null,
      },
      authz: { decision: 'deny', rule: 'routes[orders-db].access=readWrite', approval: null },
    }),
  );
  await post(migration, MIGRATION_WRITER, migrationSigner);
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await sidecar?.close();
  await collector?.close();
  await db?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function newPage(): Promise<{ page: Page; requests: string[] }> {
  const context = await browser!.createBrowserContext();
  const page = await context.newPage();
  await page.emulateTimezone('Europe/Paris');
  await page.setViewport({ width: 1366, height: 900 });
  const requests: string[] = [];
  page.on('request', (r) => requests.push(r.url()));
  return { page, requests };
}

async function signIn(page: Page, path = '/ui/', token = READER): Promise<void> {
  await page.goto(`${collector.url}${path}`);
  await page.waitForSelector('#token');
  await page.type('#token', token);
  await page.click('button[type=submit]');
}

/** The visible text of a table's rendered body rows, cell by cell. */
function rows(page: Page, label: string): Promise<string[][]> {
  return page.$$eval(`table[aria-label="${label}"] tbody tr:not(.spacer)`, (trs) =>
    trs.map((tr) => [...(tr as unknown as PageNode).cells].map((td) => td.textContent ?? '')),
  );
}

async function settled(page: Page): Promise<string> {
  await page.waitForFunction(() => {
    const s = document.querySelector('.load-status')?.textContent ?? '';
    if (/^0 events$|Could not/.test(s)) return true;
    return /events?$|Showing the first/.test(s) && document.querySelector('.badge:not(.checking)');
  });
  return page.$eval('.load-status', (e) => e.textContent ?? '');
}

describe.skipIf(!browser)('the trail viewer in chromium', () => {
  test('a person finds who changed the customers table yesterday and who approved it', async () => {
    const { page, requests } = await newPage();
    await signIn(page);
    await page.waitForSelector('#f-table');
    await page.type('#f-table', 'customers');
    await page.select('#f-class', 'write');
    // Yesterday, midnight to midnight, in the reader's zone (the label names it).
    const zone = await page.$eval('label[for=f-since]', (e) => e.textContent);
    expect(zone).toContain('Europe/Paris (UTC+01:00)');
    const setLocal = (id: string, value: string) =>
      page.$eval(
        id,
        (el, v) => {
          (el as unknown as PageNode).value = v;
          el.dispatchEvent(new Event('change', { bubbles: true }));
        },
        value,
      );
    const day = (offset: number) =>
      new Date(Date.now() + offset * 86400_000).toLocaleDateString('sv-SE', { timeZone: 'Europe/Paris' });
    await setLocal('#f-since', `${day(-1)}T00:00:00`);
    await setLocal('#f-until', `${day(0)}T00:00:00`);
    await page.click('form.search button[type=submit]');
    expect(await settled(page)).toMatch(/^\d+ events?$/);
    const found = await rows(page, 'Events');
    const updates = migration.filter(
      (e) => e.event.statement?.class === 'write' && e.event.statement.tables?.includes('customers'),
    );
    expect(updates.length).toBeGreaterThan(0);
    expect(found.map((r) => [r[1], r[8], r[9]])).toEqual(
      updates.map((e) => ['migration-agent', e.event.statement!.text, 'CHG-7']),
    );
    // Today's update by the billing agent is outside the range.
    expect(found.flat().join(' ')).not.toContain('billing-agent');
    const url = new URL(page.url());
    expect(Object.fromEntries(url.searchParams)).toMatchObject({ table: 'customers', class: 'write' });
    expect(url.searchParams.get('since')).toMatch(/Z$/);
    await page.screenshot({ path: join(SHOTS, 'search.png') });

    // Who approved it: follow the approval.
    await page.click('a[href*="view=approval"]');
    await page.waitForSelector('[data-testid=approved-by]');
    await settled(page);
    expect(await page.$eval('[data-testid=requested-by]', (e) => e.textContent)).toBe('carol@example.com');
    expect(await page.$eval('[data-testid=approved-by]', (e) => e.textContent)).toBe('alice@example.com');
    expect(await page.$eval('[data-testid=used-by]', (e) => e.textContent)).toBe('migration-agent');
    const ran = await rows(page, 'Statements run under the approval');
    expect(ran.map((r) => r[8])).toEqual(
      migration.filter((e) => e.event.authz?.approval).map((e) => e.event.statement!.text),
    );
    expect(await page.$eval('.badge', (e) => e.textContent)).toMatch(/Chain intact/);
    await page.screenshot({ path: join(SHOTS, 'approval.png') });

    // Nothing but this collector was ever asked for anything.
    expect(requests.length).toBeGreaterThan(3);
    // (data: URLs are the browser's own icons, never fetched from anywhere.)
    for (const r of requests.filter((u) => !u.startsWith('data:')))
      expect(r.startsWith(`${collector.url}/`), r).toBe(true);
    await page.browserContext().close();
  });

  test('a link carries the search: opened in a new session it asks for a token, then shows the same', async () => {
    const link = `/ui/?identity=migration-agent&status=denied`;
    const { page } = await newPage();
    await signIn(page, link, 'not-a-reader-token-0123');
    await page.waitForSelector('.signin [role=alert]');
    expect(await page.$eval('.signin [role=alert]', (e) => e.textContent)).toMatch(
      /refused the token: unknown bearer token/,
    );
    await page.type('#token', READER);
    await page.click('button[type=submit]');
    await page.waitForSelector('#f-identity');
    expect(await page.$eval('#f-identity', (e) => (e as unknown as PageNode).value)).toBe('migration-agent');
    expect(await page.$eval('#f-status', (e) => (e as unknown as PageNode).value)).toBe('denied');
    expect(await settled(page)).toBe('1 event');
    const [denied] = await rows(page, 'Events');
    expect(denied![5]).toBe('denied');
    expect(denied![8]).toBe('drop table customers');
    // The token is kept for the tab, never in the address.
    expect(page.url()).not.toContain(READER);
    await page.browserContext().close();
  });

  test('keyboard and a laptop screen: Tab reaches the table, arrows move, Enter opens the session; nothing overflows', async () => {
    const { page } = await newPage();
    await page.setViewport({ width: 1280, height: 720 });
    const violations: string[] = [];
    page.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) violations.push(m.text());
    });
    await signIn(page, '/ui/?identity=billing-agent&type=statement');
    await settled(page);
    // Tab from the last control before it (the export buttons) lands on the table.
    await page.focus('.exports button:last-child');
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.getAttribute('aria-label'))).toBe('Events');
    await page.keyboard.press('ArrowDown');
    const second = await rows(page, 'Events').then((r) => r[1]!);
    expect(await page.$eval('tr[aria-rowindex="3"]', (e) => e.getAttribute('aria-selected'))).toBe('true');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => location.search.includes('view=session'));
    await settled(page);
    expect(new URL(page.url()).searchParams.get('of')).toBe(
      (await api('/v1/events?identity=billing-agent&type=statement')).events
        .map((e) => (e.event as unknown as { session: { id: string } }).session.id)
        .find((id) => id.startsWith(second[2]!)),
    );
    const overflow = await page.evaluate(
      () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
    );
    expect(overflow).toBeLessThanOrEqual(0);
    // Back returns to the search, as a link would.
    await page.goBack();
    await page.waitForSelector('#f-identity');
    expect(await page.$eval('#f-identity', (e) => (e as unknown as PageNode).value)).toBe('billing-agent');
    expect(violations).toEqual([]);
    await page.browserContext().close();
  });

  test('a session walks its statements in order, with results, errors and durations', async () => {
    const { page } = await newPage();
    const stored = await api('/v1/events?identity=billing-agent&route=orders-db&type=statement');
    const session = (stored.events[0]!.event as unknown as { session: { id: string } }).session.id;
    await signIn(page, `/ui/?view=session&of=${session}`);
    await settled(page);
    const shown = await rows(page, 'Statements of the session, in order');
    expect(shown.filter((r) => r[2] !== '').map((r) => r[6])).toEqual(SESSION_A);
    const seqs = shown.map((r) => Number(r[0]));
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    const division = shown.find((r) => r[6] === 'select 1/0')!;
    expect(division[3]).toBe('error');
    expect(division[7]).toBe('division by zero');
    const update = shown.find((r) => r[6]?.startsWith('update customers'))!;
    expect([update[3], update[4]]).toEqual(['ok', '1']);
    expect(update[5]).toMatch(/^\d+(\.\d)? (µs|ms)$/);
    // An agent's SQL is text on the page, never markup.
    expect(shown.some((r) => r[6]?.includes('<img src=x onerror'))).toBe(true);
    expect(await page.evaluate(() => window.__pwned)).toBeUndefined();
    expect(await page.$('table img')).toBeNull();
    expect(await page.$eval('.facts', (e) => e.textContent)).toContain('billing-agent');
    await page.screenshot({ path: join(SHOTS, 'session.png') });
    await page.browserContext().close();
  });

  test('an identity: recent sessions, statements by class, denials', async () => {
    const { page } = await newPage();
    await signIn(page, '/ui/?view=identity&of=billing-agent');
    await settled(page);
    const sessions = await page.$$eval('section[aria-labelledby=h-sessions] tbody tr', (trs) => trs.length);
    expect(sessions).toBe(2);
    const byClass = Object.fromEntries(
      await page.$$eval('section[aria-labelledby=h-classes] tbody tr', (trs) =>
        trs.map((tr) => [tr.querySelector('th')!.textContent, Number(tr.querySelector('td')!.textContent)]),
      ),
    );
    expect(byClass).toEqual({ read: 5, write: 3 });
    expect(await page.$eval('#h-denials', (e) => e.textContent)).toBe('Denials (0)');
    await page.goto(`${collector.url}/ui/?view=identity&of=migration-agent`);
    await settled(page);
    expect(await page.$eval('#h-denials', (e) => e.textContent)).toBe('Denials (1)');
    const [denial] = await rows(page, 'Denied statements');
    expect([denial![1], denial![5], denial![8]]).toEqual(['migration-agent', 'denied', 'drop table customers']);
    await page.screenshot({ path: join(SHOTS, 'identity.png') });
    await page.browserContext().close();
  });

  test('exports: JSON Lines are the stored events byte for byte; CSV one line each', async () => {
    const { page } = await newPage();
    const downloads = join(dir, 'downloads');
    mkdirSync(downloads, { recursive: true });
    const cdp = await page.createCDPSession();
    await cdp.send('Browser.setDownloadBehavior', {
      behavior: 'allow',
      downloadPath: downloads,
      browserContextId: page.browserContext().id!,
    });
    await signIn(page, '/ui/?identity=billing-agent');
    await settled(page);
    await page.click('xpath/.//button[contains(., "Export JSON Lines")]');
    await page.click('xpath/.//button[contains(., "Export CSV")]');
    const jsonl = await waitFor('the JSON Lines download', async () =>
      existsSync(join(downloads, 'byline-trail.jsonl'))
        ? readFileSync(join(downloads, 'byline-trail.jsonl'), 'utf8')
        : undefined,
    );
    const store = new Database(dbPath, { readonly: true });
    const stored = store
      .prepare(
        "SELECT event FROM byline_events WHERE identity_name = 'billing-agent' ORDER BY time_us, stream, chain_seq, id",
      )
      .all() as { event: string }[];
    store.close();
    expect(jsonl).toBe(stored.map((r) => `${r.event}\n`).join(''));
    expect(jsonl.split('\n').map((l) => (l ? canonicalJson(JSON.parse(l)) : l))).toEqual(jsonl.split('\n'));
    const csv = await waitFor('the CSV download', async () =>
      existsSync(join(downloads, 'byline-trail.csv'))
        ? readFileSync(join(downloads, 'byline-trail.csv'), 'utf8')
        : undefined,
    );
    const lines = csv.trimEnd().split('\r\n');
    expect(lines[0]).toMatch(/^time,identity,type,session/);
    expect(lines.length).toBe(stored.length + 1);
    await page.browserContext().close();
  });

  test(`the table stays fast at ${BULK.toLocaleString('en')} rows: only the rows in view are in the page`, async () => {
    const signer = new HeadSigner();
    const bulk = new SampleStream({ identity: 'bulk-agent', startMs: Date.now() - 3600_000 });
    for (let done = 0; done < BULK; done += 5000)
      await post(bulk.take(Math.min(5000, BULK - done)), BULK_WRITER, signer);
    const { page } = await newPage();
    await signIn(page, '/ui/?identity=bulk-agent');
    const started = Date.now();
    await page.waitForFunction(
      (n) => document.querySelector('.load-status')?.textContent === `${n} events`,
      { timeout: 120_000 },
      BULK.toLocaleString('en'),
    );
    const loadMs = Date.now() - started;
    const rendered = await page.$$eval('table[aria-label=Events] tbody tr:not(.spacer)', (trs) => trs.length);
    expect(rendered).toBeGreaterThan(10);
    expect(rendered).toBeLessThan(80);
    // Keyboard: focus the table, End jumps to the last row, which is then on screen.
    await page.focus('table[aria-label=Events]');
    const t0 = Date.now();
    await page.keyboard.press('End');
    await page.waitForSelector(`tr[aria-rowindex="${BULK + 1}"].active`);
    const jumpMs = Date.now() - t0;
    expect(jumpMs).toBeLessThan(1000);
    await page.keyboard.press('ArrowUp');
    await page.waitForSelector(`tr[aria-rowindex="${BULK}"].active`);
    const box = await page.$eval(`tr[aria-rowindex="${BULK}"]`, (e) => {
      const r = e.getBoundingClientRect();
      return { top: r.top, bottom: r.bottom, vh: innerHeight };
    });
    expect(box.top).toBeGreaterThan(0);
    expect(box.bottom).toBeLessThan(box.vh);
    console.log(`viewer: ${BULK} rows loaded in ${loadMs} ms; End → last row in ${jumpMs} ms`);
    await page.browserContext().close();
  }, 240_000);

  test('the chain badge turns when the store is edited, and says why', async () => {
    const { page } = await newPage();
    await signIn(page, '/ui/?view=approval&of=CHG-7');
    await settled(page);
    expect(await page.$eval('.badge', (e) => e.getAttribute('data-chain'))).toBe('intact');
    // An insider with write access to the store rewrites who approved one statement.
    const victim = migration.find((e) => e.event.type === 'statement')!;
    const store = new Database(dbPath);
    const changed = store
      .prepare(
        "UPDATE byline_events SET event = replace(event, 'alice@example.com', 'mallory@example.com') WHERE id = ?",
      )
      .run(victim.event.id).changes;
    store.close();
    expect(changed).toBe(1);
    await page.reload();
    await settled(page);
    expect(await page.$eval('.badge', (e) => e.getAttribute('data-chain'))).toBe('broken');
    const badge = await page.$eval('.badge', (e) => e.textContent ?? '');
    expect(badge).toContain('Chain NOT intact');
    expect(badge).toContain(`event ${victim.event.id} was edited (its content no longer matches its hash)`);
    const approvers = await page.$eval('[data-testid=approved-by]', (e) => e.textContent ?? '');
    expect(approvers.split(', ').sort()).toEqual(['alice@example.com', 'mallory@example.com']);
    await page.screenshot({ path: join(SHOTS, 'tampered.png'), fullPage: true });
    await page.browserContext().close();
  });
});
