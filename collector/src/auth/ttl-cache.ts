/**
 * A small map whose entries expire at a time given per entry, with a bound on its size (the oldest
 * insertion goes first), and a clock that tests can set. Pure: no timers.
 */
export class TtlCache<K, V> {
  private readonly entries = new Map<K, { value: V; until: number }>();

  constructor(
    private readonly maxEntries: number,
    private readonly now: () => number = Date.now,
  ) {}

  get(key: K): V | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.until <= this.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  /** Keeps `value` until the time `until` (ms since the epoch); a time already past keeps nothing. */
  set(key: K, value: V, until: number): void {
    this.entries.delete(key);
    if (until <= this.now()) return;
    if (this.entries.size >= this.maxEntries) {
      // Expired entries first; then the oldest insertion.
      const now = this.now();
      for (const [k, e] of this.entries) if (e.until <= now) this.entries.delete(k);
      if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value as K);
    }
    this.entries.set(key, { value, until });
  }

  delete(key: K): void {
    this.entries.delete(key);
  }

  get size(): number {
    return this.entries.size;
  }
}
