/**
 * `byline demo`: Byline's job on one machine, with nothing installed but `npm ci`. Starts an
 * embedded Postgres, a collector on SQLite in a temporary folder and one sidecar per identity,
 * lets two agents and a schema migration do their work through them, then asks the trail the
 * questions an auditor would ask — and checks the trail's chains.
 *
 * The migration's DDL needs an approval (guardrails.requireApproval). With no cluster, approvals
 * go through ApprovalDesk (approval-desk.ts): the operator's real admission code stamps who asked
 * and who approved and refuses self-approval, the collector's real effective-policy code turns the
 * objects into the sidecar's policy, and the demo hands that to the running sidecar in-process
 * (in a cluster the collector serves it on /v1/policy). The one thing missing without an API
 * server is authentication: the demo says which person acts.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type CollectorConfig, type crds, type SidecarConfig, SidecarConfigSchema, validate } from '@byline/api';
import { effectivePolicy, type RunningCollector, startCollector } from '@byline/collector';
import { type RunningSidecar, startSidecar } from '@byline/sidecar';
import pg from 'pg';
import pino from 'pino';
import { requestedApproval } from './approval.js';
import { ApprovalDesk, requestArgsFromHint } from './approval-desk.js';
import { type OptionValues, parseCommand } from './command-table.js';
import { COMMANDS } from './commands.js';
import { type DemoPostgres, startDemoPostgres } from './demo-postgres.js';
import { trail } from './trail.js';
import { verify } from './verify.js';

interface Actor {
  name: string;
  kind: 'agent' | 'service';
  sidecar?: RunningSidecar;
}

/** The namespace the demo's AgentIdentity objects would live in. */
const NAMESPACE = 'demo';
/** The migration's identity as a cluster would declare it: admin on shop-db, DDL only under an approval. */
const MIGRATOR_IDENTITY: crds.AgentIdentity = {
  apiVersion: 'byline.dev/v1alpha1',
  kind: 'AgentIdentity',
  metadata: { name: 'schema-migrator', namespace: NAMESPACE },
  spec: {
    kind: 'service',
    serviceAccounts: ['schema-migrator'],
    parameters: 'redacted',
    routes: [{ name: 'shop-db', access: 'admin' }],
    guardrails: { requireApproval: { classes: ['ddl'] } },
  },
};

const ACTORS: Actor[] = [
  { name: 'billing-agent', kind: 'agent' },
  { name: 'support-agent', kind: 'agent' },
  { name: 'schema-migrator', kind: 'service' },
];

export async function demo(values: OptionValues, out: NodeJS.WritableStream = process.stdout): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'byline-demo-'));
  const logger = pino({ level: process.env.BYLINE_LOG ?? 'warn' });
  const say = (line = '') => out.write(`${line}\n`);
  let db: DemoPostgres | undefined;
  let collector: RunningCollector | undefined;
  try {
    say('Starting an embedded Postgres, a collector (SQLite) and a sidecar per identity…');
    db = await startDemoPostgres(dir);
    await seed(db);

    const readerToken = join(dir, 'reader.token');
    writeFileSync(readerToken, 'demo-reader-token\n');
    const collectorConfig: CollectorConfig = {
      listen: '127.0.0.1:0',
      store: `sqlite:${join(dir, 'trail.db')}`,
      auth: {
        static: [
          ...ACTORS.map((a) => ({ token: `demo-${a.name}-token`, identity: a.name, kind: a.kind })),
          { token: 'demo-reader-token', reader: true },
        ],
      },
    };
    collector = await startCollector(collectorConfig, { logger });
    writeFileSync(join(dir, 'password'), 'app-secret\n');
    for (const actor of ACTORS) {
      const tokenFile = join(dir, `${actor.name}.token`);
      writeFileSync(tokenFile, `demo-${actor.name}-token\n`);
      const config: SidecarConfig = validate(
        SidecarConfigSchema,
        {
          identity: { static: { name: actor.name, kind: actor.kind } },
          routes: [
            {
              name: 'shop-db',
              listen: '127.0.0.1:0',
              upstream: { host: db.host, port: db.port, database: 'shop', sslMode: 'disable' },
              credentials: {
                mode: 'inject',
                username: 'app_user',
                passwordFile: join(dir, 'password'),
                acceptAnyUser: true,
              },
            },
          ],
          audit: {
            params: 'redacted',
            spoolDir: join(dir, `${actor.name}.spool`),
            sinks: [{ collector: { url: collector.url, tokenFile } }],
          },
          ...(actor.name === 'schema-migrator' ? { guardrails: MIGRATOR_IDENTITY.spec.guardrails } : {}),
        },
        'demo sidecar config',
      );
      actor.sidecar = await startSidecar(config, { logger });
    }
    // Alice and Bob may approve; Alice will ask, so only Bob can approve her request.
    const desk = new ApprovalDesk({
      namespace: NAMESPACE,
      identities: [MIGRATOR_IDENTITY],
      approvers: new Set(['alice@example.com', 'bob@example.com']),
    });
    const migrator = ACTORS[2]!.sidecar!;
    const applyPolicy = () => {
      const routes = new Map([['shop-db', { metadata: { name: 'shop-db', namespace: NAMESPACE }, spec: {} }]]);
      migrator.policy.setPolicy(effectivePolicy(MIGRATOR_IDENTITY, routes, desk.approvals, Date.now()).document);
    };
    applyPolicy();
    say(`  postgres   127.0.0.1:${db.port} (database shop, role app_user — the one role every agent shares)`);
    say(`  collector  ${collector.url}`);
    for (const a of ACTORS) say(`  sidecar    127.0.0.1:${a.sidecar!.routes[0]!.port}  → ${a.name} (${a.kind})`);
    say();

    say('The story: two agents and a migration, all connecting as app_user, none of them holding its password.');
    let approvalName = '';
    const migrationSession = await story(ACTORS, say, async (hint) => {
      say();
      say('Alice copies the command from the HINT and asks for an approval:');
      const args = requestArgsFromHint(hint, { reason: 'add customer tiers', ticket: 'CHG-2211' });
      say(`$ byline approval request ${args.map((a) => (a.includes(' ') ? `"${a}"` : a)).join(' ')}`);
      const requested = await desk.request(
        'alice@example.com',
        requestedApproval(
          parseCommand(COMMANDS.find((c) => c.name === 'approval request')!, args) as Parameters<
            typeof requestedApproval
          >[0],
        ),
      );
      approvalName = requested.metadata.name!;
      say(`  approval ${NAMESPACE}/${approvalName} requested by ${requested.spec.requestedBy}`);
      say(`Alice tries to approve it herself:  $ byline approve ${approvalName}`);
      await desk.approve('alice@example.com', approvalName).then(
        () => {
          throw new Error('self-approval was accepted');
        },
        (e: Error) => say(`  refused: ${e.message}`),
      );
      say(`Bob approves it:  $ byline approve ${approvalName} --reason "reviewed the migration"`);
      const approved = await desk.approve('bob@example.com', approvalName, 'reviewed the migration');
      say(`  ${approved.status!.phase} by ${approved.status!.approvedBy}, until ${approved.status!.expiresAt}`);
      applyPolicy();
      say('The migration retries in the same session:');
    });
    for (const a of ACTORS) {
      await a.sidecar!.flush();
      for (const shipper of a.sidecar!.shippers) await shipper.drain(10_000);
    }
    say();

    const common = { collector: collector.url, 'token-file': readerToken, format: 'table' };
    say('Q1: which agent touched the customers table?');
    say(`$ byline trail --collector ${collector.url} --token-file reader.token --table customers`);
    await trail({ ...common, table: 'customers' }, out);
    say();
    say('Q2: what ran in the migration session, and who requested and approved it? (the APPROVAL column)');
    const session = await sessionOf(collector, readerToken, migrationSession);
    say(`$ byline trail --collector ${collector.url} --token-file reader.token --session ${session}`);
    await trail({ ...common, session }, out);
    say();
    say(`Q3: what ran under approval ${approvalName}?`);
    say(`$ byline trail --collector ${collector.url} --token-file reader.token --approval ${approvalName}`);
    await trail({ ...common, approval: approvalName }, out);
    say();
    say('And is the trail intact?');
    say(`$ byline verify --collector ${collector.url} --token-file reader.token`);
    const verified = await verify(common, out);
    if (values.keep) {
      say();
      say(
        `Everything keeps running (Ctrl-C to stop). Try: byline trail --collector ${collector.url} --token-file ${readerToken} --identity support-agent`,
      );
      await new Promise<void>((resolve) => process.once('SIGINT', () => resolve()));
    }
    return verified;
  } finally {
    for (const a of ACTORS) await a.sidecar?.close().catch(() => {});
    await collector?.close().catch(() => {});
    await db?.stop().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
}

async function seed(db: DemoPostgres): Promise<void> {
  const admin = db.client();
  await admin.connect();
  await admin.query(`CREATE ROLE app_user LOGIN PASSWORD 'app-secret'`);
  await admin.query('CREATE DATABASE shop OWNER app_user');
  await admin.end();
  const shop = db.client('shop');
  await shop.connect();
  await shop.query('SET ROLE app_user');
  await shop.query(`
    CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, email text NOT NULL);
    CREATE TABLE invoices (id int PRIMARY KEY, customer_id int REFERENCES customers, amount numeric, status text);
    INSERT INTO customers VALUES (1, 'Ada', 'ada@example.com'), (2, 'Grace', 'grace@example.com'), (3, 'Linus', 'linus@example.com');
    INSERT INTO invoices VALUES (10, 1, 120.00, 'open'), (11, 2, 80.50, 'open'), (12, 3, 42.00, 'paid');`);
  await shop.end();
}

function client(actor: Actor, applicationName: string): pg.Client {
  const route = actor.sidecar!.routes[0]!;
  // No password: the sidecar holds the credential. The user name is whatever the agent likes.
  return new pg.Client({
    host: route.host,
    port: route.port,
    user: 'agent',
    database: 'shop',
    application_name: applicationName,
  });
}

/**
 * What the agents do. The migration's DDL is denied until approved: `approve` gets the denial's
 * HINT and returns once an approval is in force. Returns the migration's application_name.
 */
async function story(
  actors: Actor[],
  say: (line?: string) => void,
  approve: (hint: string) => Promise<void>,
): Promise<string> {
  const [billing, support, migrator] = actors as [Actor, Actor, Actor];

  const b = client(billing, 'billing-agent/run-4411');
  await b.connect();
  await b.query(
    `SELECT i.id, c.email, i.amount FROM invoices i JOIN customers c ON c.id = i.customer_id WHERE i.status = 'open' /*task='INV-4411'*/`,
  );
  await b.query(`UPDATE invoices SET status = 'sent' WHERE status = 'open' /*task='INV-4411'*/`);
  await b.end();

  const s = client(support, 'support-agent/ticket-981');
  await s.connect();
  await s.query('SELECT id, name, email FROM customers WHERE email = $1', ['grace@example.com']);
  await s.query('UPDATE customers SET email = $1 WHERE id = $2', ['grace.h@example.com', 2]);
  await s.query('SELECT count(*) FROM invoices WHERE customer_id = $1', [2]);
  await s.end();

  const migration = 'migrate/2026_11_27_add_tier';
  const m = client(migrator, migration);
  await m.connect();
  await m.query('BEGIN');
  const denied = await m.query('ALTER TABLE customers ADD COLUMN tier text').then(
    () => null,
    (e: { message: string; code?: string; hint?: string }) => e,
  );
  if (denied?.code !== '42501' || !denied.hint)
    throw new Error(`the migration's DDL was not denied: ${denied?.message}`);
  await m.query('ROLLBACK');
  say(`schema-migrator: ALTER TABLE customers ADD COLUMN tier text`);
  say(`  ERROR:  ${denied.message}`);
  say(`  HINT:  ${denied.hint}`);
  await approve(denied.hint);
  await m.query('BEGIN');
  await m.query('ALTER TABLE customers ADD COLUMN tier text');
  await m.query(
    `UPDATE customers SET tier = CASE WHEN id IN (SELECT customer_id FROM invoices WHERE amount > 100) THEN 'gold' ELSE 'standard' END`,
  );
  await m.query('CREATE INDEX customers_tier ON customers (tier)');
  await m.query('COMMIT');
  await m.end();
  return migration;
}

/** The id of the session the migration ran in, found the way an auditor would: through the API. */
async function sessionOf(collector: RunningCollector, tokenFile: string, applicationName: string): Promise<string> {
  const { CollectorClient } = await import('./collector-client.js');
  const api = new CollectorClient(collector.url, tokenFile);
  for await (const page of api.events({ identity: 'schema-migrator' })) {
    const hit = page.events.find((i) => i.event.session.applicationName === applicationName);
    if (hit) return hit.event.session.id;
  }
  throw new Error('the migration session is not in the trail');
}
