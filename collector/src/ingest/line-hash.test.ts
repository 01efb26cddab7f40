import { type AuditEvent, canonicalJson, chainHash } from '@byline/api';
import { describe, expect, test } from 'vitest';
import { SampleStream } from '../sample-events.js';
import { lineChainHash } from './line-hash.js';

/** A line and its event, with `edit` applied to the event before the line is made canonical. */
function edited(edit: (e: AuditEvent) => void): { line: string; event: AuditEvent } {
  const s = new SampleStream({ approval: 'month-end-close' });
  s.take(2);
  const event = structuredClone(s.take(1)[0]!.event);
  edit(event);
  return { line: canonicalJson(event), event };
}

describe('lineChainHash', () => {
  test('equals the chain hash of the event, with authz an object, null or naming "chain"', () => {
    const cases = [
      edited(() => {}),
      edited((e) => {
        e.authz = null;
      }),
      edited((e) => {
        // A string holding the chain object's opening must not be taken for it.
        e.authz!.rule = '"chain":{"hash":"x",';
      }),
    ];
    for (const { line, event } of cases) expect(lineChainHash(line, event)).toBe(chainHash(event));
  });

  test('an edited event no longer matches the hash it carries', () => {
    const { line, event } = edited((e) => {
      e.statement!.text = 'drop table customers';
    });
    expect(lineChainHash(line, event)).not.toBe(event.chain.hash);
    expect(lineChainHash(line, event)).toBe(chainHash(event));
  });

  test('a line that is not laid out canonically falls back to the full computation', () => {
    const { event } = edited(() => {});
    const spaced = JSON.stringify(event, null, 1);
    expect(lineChainHash(spaced, event)).toBe(chainHash(event));
  });
});
