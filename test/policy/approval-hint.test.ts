/**
 * The denial's HINT is a command that works: its `byline approval request …` arguments parse with
 * the CLI's own options into an Approval whose scope, once approved, unlocks exactly the statement
 * that was denied.
 */
import type { PolicyDocument } from '@byline/api';
import { beforeAll, expect, test } from 'vitest';
import { requestedApproval } from '../../cli/src/approval.js';
import { requestArgsFromHint } from '../../cli/src/approval-desk.js';
import { parseCommand } from '../../cli/src/command-table.js';
import { COMMANDS } from '../../cli/src/commands.js';
import { StatementAnalyzer } from '../../sidecar/src/policy/analyzer.js';
import { PolicyEngine } from '../../sidecar/src/policy/engine.js';

let analyzer: StatementAnalyzer;
beforeAll(async () => {
  analyzer = await StatementAnalyzer.create();
});

const policy = (approvals: PolicyDocument['routes'][number]['approvals']): PolicyDocument => ({
  version: '1',
  identity: { name: 'billing-reconciler', namespace: 'payments' },
  routes: [
    {
      name: 'orders-db',
      access: 'admin',
      accessSource: 'AgentIdentity payments/billing-reconciler',
      guardrails: [
        {
          source: 'AgentIdentity payments/billing-reconciler',
          guardrails: { requireApproval: { classes: ['ddl'], tables: ['billing.inv*', 'payroll'] } },
        },
      ],
      approvals,
    },
  ],
});

test.each([
  ['a gated class', 'CREATE TABLE scratch (a int)'],
  ['a gated class and a gated table', 'ALTER TABLE billing.invoices ADD COLUMN note text'],
  ['two gated tables', 'UPDATE billing.invoices SET a = 1 FROM payroll WHERE payroll.id = invoices.id'],
])('%s: the hint’s command requests what unlocks the statement', (_, sql) => {
  const engine = new PolicyEngine();
  engine.setPolicy(policy([]));
  const now = Date.parse('2026-12-06T12:00:00Z');
  const analysis = analyzer.analyze(sql);
  const [denied] = engine.decideAll('orders-db', analysis, now);
  expect(denied!.allow).toBe(false);

  const args = requestArgsFromHint(denied!.hint!, { reason: 'schema change', ticket: 'CHG-1' });
  // Parsed by the CLI's own command table, as `byline approval request …` would be.
  const values = parseCommand(COMMANDS.find((c) => c.name === 'approval request')!, args);
  expect(values.namespace).toBe('payments');
  const approval = requestedApproval(values as Parameters<typeof requestedApproval>[0]);
  expect(approval.spec).toMatchObject({ identity: 'billing-reconciler', route: 'orders-db', duration: '1h' });

  engine.setPolicy(
    policy([
      {
        name: 'a1',
        scope: approval.spec.scope,
        approvedBy: 'bob',
        reason: 'schema change',
        ticket: 'CHG-1',
        expiresAt: '2026-12-06T13:00:00Z',
      },
    ]),
  );
  const [allowed] = engine.decideAll('orders-db', analysis, now);
  expect(allowed).toMatchObject({ allow: true, approval: { name: 'a1', approvedBy: 'bob' } });
});
