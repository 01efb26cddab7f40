import { SampleStream } from '@byline/collector';
import { describe, expect, test } from 'vitest';
import {
  CSV_COLUMNS,
  csvCell,
  type Row,
  sessionOrder,
  summarizeApproval,
  summarizeIdentity,
  toCsv,
  toJsonLines,
} from './events.js';

function rows(stream: SampleStream, n: number): { rows: Row[]; lines: string[] } {
  const chained = stream.take(n);
  return {
    // What the viewer holds: each event parsed back from the API's response text.
    rows: chained.map((c) => ({
      event: JSON.parse(c.json),
      receivedAt: '2026-12-01T00:00:00.000Z',
      stream: c.event.chain.stream,
      seq: c.event.chain.seq,
    })),
    lines: chained.map((c) => c.json),
  };
}

describe('exports', () => {
  test('JSON Lines are the stored events byte for byte, whatever order their keys were parsed in', () => {
    const { rows: r, lines } = rows(new SampleStream({ identity: 'billing-agent', approval: 'CHG-1' }), 12);
    // Shuffle every key order: the export must not depend on how the page held the object.
    const reversed = (v: unknown): unknown =>
      Array.isArray(v)
        ? v.map(reversed)
        : v !== null && typeof v === 'object'
          ? Object.fromEntries(
              Object.entries(v)
                .reverse()
                .map(([k, x]) => [k, reversed(x)]),
            )
          : v;
    const shuffled = r.map((x) => ({ ...x, event: reversed(x.event) as Row['event'] }));
    expect(JSON.stringify(shuffled[0]!.event)).not.toBe(lines[0]);
    expect(toJsonLines(r)).toBe(`${lines.join('\n')}\n`);
    expect(toJsonLines(shuffled)).toBe(`${lines.join('\n')}\n`);
  });

  test('CSV: a header, one line per event, quoted where needed, formulas defused', () => {
    const { rows: r } = rows(new SampleStream({ identity: 'billing-agent' }), 6);
    const csv = toCsv(r).split('\r\n');
    expect(csv[0]).toBe(CSV_COLUMNS.join(','));
    expect(csv).toHaveLength(r.length + 2); // and the final empty line
    expect(csvCell('a,b')).toBe('"a,b"');
    expect(csvCell('say "hi"\nbye')).toBe('"say ""hi""\nbye"');
    expect(csvCell('=HYPERLINK("http://evil")')).toBe(`"'=HYPERLINK(""http://evil"")"`);
    expect(csvCell('+1')).toBe("'+1");
    expect(csvCell(-3)).toBe('-3');
    expect(csvCell(null)).toBe('');
  });
});

describe('summaries', () => {
  test('identity: sessions most recent first, statements by class, denials', () => {
    const { rows: r } = rows(new SampleStream({ identity: 'billing-agent', sessionLength: 4 }), 18);
    const denied = r[5]!;
    denied.event = { ...denied.event, result: { ...denied.event.result!, status: 'denied' } };
    const s = summarizeIdentity(r);
    const sessionIds = [...new Set(r.map((x) => x.event.session.id))].reverse();
    expect(s.sessions.map((x) => x.id)).toEqual(sessionIds);
    const statements = r.filter((x) => x.event.type === 'statement');
    expect(s.byClass.reduce((n, [, c]) => n + c, 0)).toBe(statements.length);
    expect(s.denials).toEqual(denied.event.type === 'statement' ? [denied] : []);
  });

  test('approval: who requested and who approved, who ran under it, and what ran', () => {
    const { rows: r } = rows(
      new SampleStream({ identity: 'support-agent', approval: 'ticket-42', requestedBy: 'carol@example.com' }),
      8,
    );
    const s = summarizeApproval(r);
    expect(s.grants).toEqual([
      {
        requestedBy: 'carol@example.com',
        approvedBy: 'alice@example.com',
        reason: 'month-end',
        ticket: 'OPS-7',
        expiresAt: null,
      },
    ]);
    const csv = toCsv(r).split('\r\n');
    const at = CSV_COLUMNS.indexOf('requestedBy');
    const approved = csv.slice(1).filter((line) => line.includes('ticket-42'));
    expect(approved.length).toBeGreaterThan(0);
    for (const line of approved) expect(line.split(',')[at]).toBe('carol@example.com');
    expect(s.usedBy).toEqual(['support-agent']);
    expect(s.statements.length).toBe(r.filter((x) => x.event.type === 'statement').length);
  });

  test('approval without a requester (events from before the field): null, not a guess', () => {
    const { rows: r } = rows(new SampleStream({ identity: 'support-agent', approval: 'ticket-42' }), 4);
    expect(summarizeApproval(r).grants.map((g) => g.requestedBy)).toEqual([null]);
  });

  test('a session in its own order, whatever order the rows came in', () => {
    const { rows: r } = rows(new SampleStream({ identity: 'a', sessionLength: 6 }), 6);
    expect(sessionOrder([...r].reverse()).map((x) => x.event.session.seq)).toEqual(
      r.map((x) => x.event.session.seq).sort((a, b) => a - b),
    );
  });
});
