/**
 * `byline demo` tells the approval story end to end and the trail answers it: the migration's DDL
 * is denied with a HINT, the requester cannot approve her own request, another person's approval
 * lets the same session run it, and the trail names the requester and the approver from the events alone.
 */
import { Writable } from 'node:stream';
import { expect, test } from 'vitest';
import { demo } from '../../cli/src/demo.js';

test('the demo: denied DDL, request, self-approval refused, approval by another person, the approver in the trail', async () => {
  let text = '';
  const out = new Writable({
    write(chunk, _enc, done) {
      text += chunk.toString();
      done();
    },
  });
  expect(await demo({}, out)).toBe(0);
  expect(text).toMatch(
    /ERROR: {2}byline: ALTER TABLE needs an approval for schema-migrator by AgentIdentity demo\/schema-migrator guardrails\.requireApproval \(ddl\); none is active/,
  );
  expect(text).toContain(
    'HINT:  Ask for one: byline approval request --namespace demo --identity schema-migrator --route shop-db --scope ddl',
  );
  expect(text).toMatch(/approval demo\/(\S+) requested by alice@example\.com/);
  const name = /approval demo\/(\S+) requested by/.exec(text)![1]!;
  expect(text).toMatch(/refused: byline: "alice@example\.com" requested Approval .* and cannot approve it/);
  expect(text).toMatch(/Approved by bob@example\.com, until /);
  // Q3: what ran under the approval, each statement naming who requested and who approved it.
  const q3 = text.slice(text.indexOf(`--approval ${name}`));
  const grant = `${name} \\(requested by alice@example\\.com, approved by bob@example\\.com\\)`;
  expect(q3).toMatch(new RegExp(`ALTER TABLE customers ADD COLUMN tier text +ALTER TABLE +${grant}`));
  expect(q3).toMatch(new RegExp(`CREATE INDEX customers_tier ON customers \\(tier\\) +CREATE INDEX +${grant}`));
  expect(q3).toContain('(2 events)');
  expect(text).toMatch(/denied: 42501 byline: ALTER TABLE needs an approval/);
  expect(text).toMatch(/intact: \d+ events in 3 streams, every chain verified/);
}, 120_000);
