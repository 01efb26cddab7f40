import { describe, expect, test } from 'vitest';
import { eventQuery, instantToLocalInput, localInputToInstant, readState, writeState } from './filters.js';
import { visibleRange } from './virtual.js';

describe('the URL holds the view', () => {
  test('filters and views survive a round trip through a link', () => {
    const state = {
      view: 'search' as const,
      subject: '',
      filters: { identity: 'billing-agent', table: 'customers', since: '2026-12-05T00:00:00.000Z', text: 'a&b=c' },
    };
    expect(readState(writeState(state))).toEqual(state);
    const session = { view: 'session' as const, subject: 's-1', filters: {} };
    expect(readState(writeState(session))).toEqual(session);
  });

  test('unknown views and parameters are ignored; a token is never part of the state', () => {
    expect(readState('?view=admin&of=x&token=secret&identity=a')).toEqual({
      view: 'search',
      subject: '',
      filters: { identity: 'a' },
    });
  });

  test('the collector query: the filters for a search, the subject for a view', () => {
    expect(eventQuery(readState('?identity=a&class=write')).toString()).toBe('identity=a&class=write');
    expect(eventQuery(readState('?view=approval&of=CHG-1&identity=ignored')).toString()).toBe('approval=CHG-1');
    // A namespace reader's limit goes with every view's query.
    expect(eventQuery(readState('?view=session&of=s-1&namespace=payments')).toString()).toBe(
      'session=s-1&namespace=payments',
    );
    const now = Date.UTC(2026, 11, 6, 12, 0, 0);
    expect(Object.fromEntries(eventQuery(readState('?view=identity&of=a'), now))).toEqual({
      identity: 'a',
      since: '2026-11-29T12:00:00.000Z',
    });
    expect(
      Object.fromEntries(eventQuery(readState('?view=identity&of=a&since=2026-01-01T00:00:00Z&table=x'), now)),
    ).toEqual({ identity: 'a', since: '2026-01-01T00:00:00Z' });
  });

  test('times: the form is local, the link is an instant', () => {
    const instant = localInputToInstant('2026-12-05T10:30:00');
    expect(instant).toBe(new Date(2026, 11, 5, 10, 30, 0).toISOString());
    expect(instantToLocalInput(instant)).toBe('2026-12-05T10:30:00');
    expect(localInputToInstant('not a time')).toBe('');
  });
});

describe('virtualized rows', () => {
  test('only the rows in view and a margin', () => {
    expect(visibleRange(0, 300, 30, 100_000)).toEqual({ start: 0, end: 20 });
    expect(visibleRange(30 * 50_000, 300, 30, 100_000)).toEqual({ start: 49_990, end: 50_020 });
    expect(visibleRange(30 * 99_999, 300, 30, 100_000)).toEqual({ start: 99_989, end: 100_000 });
    expect(visibleRange(0, 300, 30, 0)).toEqual({ start: 0, end: 0 });
  });
});
