/**
 * The write-attempt table against a real Postgres: each attempt goes to a fresh session opened as
 * the sidecar opens a `read` upstream (`default_transaction_read_only=on` in the startup options),
 * and to the policy engine with a `read` route. What each layer does must match the table, and no
 * write attempt may pass both (except the rows marked as holes, which say what covers them).
 */
import type { PolicyDocument } from '@byline/api';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { StatementAnalyzer } from '../../sidecar/src/policy/analyzer.js';
import { PolicyEngine } from '../../sidecar/src/policy/engine.js';
import { startPostgres, type TestPostgres } from '../harness/postgres.js';
import { SETUP_SQL, WRITE_ATTEMPTS, type WriteAttempt } from './write-attempts.js';

let server: TestPostgres;
let analyzer: StatementAnalyzer;
const engine = new PolicyEngine();
engine.setPolicy({
  version: '1',
  identity: { name: 'reporter', namespace: 'analytics' },
  routes: [
    { name: 'db', access: 'read', accessSource: 'AgentIdentity analytics/reporter', guardrails: [], approvals: [] },
  ],
} satisfies PolicyDocument);

beforeAll(async () => {
  server = await startPostgres();
  analyzer = await StatementAnalyzer.create();
  const setup = server.client();
  await setup.connect();
  await setup.query(SETUP_SQL);
  await setup.end();
});
afterAll(async () => server?.stop());

interface Outcome {
  postgres: WriteAttempt['postgres'];
  sqlstate: string | null;
  reportedReadOnly: string[];
}

/** Runs one attempt in a fresh read-only session, then asks whether that session can now write. */
async function inPostgres(attempt: WriteAttempt): Promise<Outcome> {
  const client = new pg.Client({
    connectionString: server.url(),
    options: '-c default_transaction_read_only=on',
  });
  const reportedReadOnly: string[] = [];
  await client.connect();
  // ParameterStatus messages: Postgres 14+ reports default_transaction_read_only when it changes.
  (client as unknown as { connection: NodeJS.EventEmitter }).connection.on(
    'parameterStatus',
    (m: { parameterName: string; parameterValue: string }) => {
      if (m.parameterName === 'default_transaction_read_only') reportedReadOnly.push(m.parameterValue);
    },
  );
  try {
    if (attempt.params) await client.query(attempt.sql, attempt.params);
    else await client.query(attempt.sql);
  } catch (e) {
    await client.end().catch(() => {});
    return { postgres: 'refuses', sqlstate: (e as { code?: string }).code ?? null, reportedReadOnly };
  }
  const show = await client.query('SHOW transaction_read_only');
  await client.end();
  const unlocked = show.rows[0].transaction_read_only === 'off';
  return { postgres: unlocked ? 'unlocks' : 'allows', sqlstate: null, reportedReadOnly };
}

function bySidecar(attempt: WriteAttempt): 'refuses' | 'allows' {
  const decisions = engine.decideAll('db', analyzer.analyze(attempt.sql), Date.now());
  return decisions.every((d) => d.allow) ? 'allows' : 'refuses';
}

test('the table holds at least 40 write attempts and a few reads as controls', () => {
  expect(WRITE_ATTEMPTS.filter((a) => !a.control).length).toBeGreaterThanOrEqual(40);
  expect(WRITE_ATTEMPTS.filter((a) => a.control).length).toBeGreaterThanOrEqual(5);
});

describe('each write attempt through a read identity', () => {
  for (const attempt of WRITE_ATTEMPTS) {
    test(attempt.name, async () => {
      const outcome = await inPostgres(attempt);
      expect({ sidecar: bySidecar(attempt), postgres: outcome.postgres }).toEqual({
        sidecar: attempt.sidecar,
        postgres: attempt.postgres,
      });
      if (outcome.postgres === 'refuses') expect(outcome.sqlstate).toBe(attempt.sqlstate ?? '25006');
      if (attempt.control) return;
      // Refused by one layer at least; whatever would leave the session writable, by the sidecar.
      if (attempt.hole === undefined) {
        expect(attempt.sidecar === 'refuses' || outcome.postgres === 'refuses').toBe(true);
        if (outcome.postgres === 'unlocks') expect(attempt.sidecar).toBe('refuses');
      } else {
        // The documented hole: Postgres says so on the wire, which is what the sidecar can act on.
        expect(outcome.reportedReadOnly).toContain('off');
      }
    });
  }
});

test('why a change to standard_conforming_strings is refused: with it off, the server reads a DELETE the parser does not see', async () => {
  const text = "SELECT 'x\\''; DELETE FROM accounts WHERE id = 8; --'";
  const analysis = analyzer.analyze(text);
  expect(analysis.ok && analysis.statements.map((s) => s.command)).toEqual(['SELECT']);
  const client = new pg.Client({
    connectionString: server.url(),
    options: '-c default_transaction_read_only=on -c standard_conforming_strings=off',
  });
  await client.connect();
  try {
    // Postgres found a DELETE in it (and refused it only because the session is read-only).
    await expect(client.query(text)).rejects.toMatchObject({ code: '25006', message: expect.stringMatching(/DELETE/) });
  } finally {
    await client.end();
  }
});
