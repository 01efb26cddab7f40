import { describe, expect, test } from 'vitest';
import { timeMicros } from './time.js';

describe('timeMicros', () => {
  test('reads fractions of any length and offsets', () => {
    expect(timeMicros('2026-11-27T03:18:27Z')).toBe(Date.UTC(2026, 10, 27, 3, 18, 27) * 1000);
    expect(timeMicros('2026-11-27T03:18:27.378Z')).toBe(Date.UTC(2026, 10, 27, 3, 18, 27, 378) * 1000);
    expect(timeMicros('2026-11-27T03:18:27.378123999Z')).toBe(Date.UTC(2026, 10, 27, 3, 18, 27, 378) * 1000 + 123);
    expect(timeMicros('2026-11-27T05:18:27.5+02:00')).toBe(Date.UTC(2026, 10, 27, 3, 18, 27, 500) * 1000);
    expect(timeMicros('2026-11-27t03:18:27z')).toBe(Date.UTC(2026, 10, 27, 3, 18, 27) * 1000);
  });

  test('orders what string comparison would misorder', () => {
    const a = timeMicros('2026-11-27T04:00:00+02:00')!; // 02:00Z
    const b = timeMicros('2026-11-27T03:00:00Z')!;
    expect(a).toBeLessThan(b);
    expect(timeMicros('2026-11-27T03:00:00.1Z')!).toBeGreaterThan(timeMicros('2026-11-27T03:00:00.09Z')!);
  });

  test.each(['', 'yesterday', '2026-11-27', '2026-11-27 03:00:00Z', '2026-13-40T99:00:00Z', '2026-11-27T03:00:00'])(
    'refuses %j',
    (text) => {
      expect(timeMicros(text)).toBeUndefined();
    },
  );
});
