/**
 * A bounded, per-process LRU of hits known to be denied until a time (monotonic clock, so a change
 * of the wall clock cannot extend or shorten it). Sound for every algorithm: a denial's retry-after is
 * the earliest moment the same hit can be admitted, and only admitted hits change the count.
 */
export class LocalDenyCache<T> {
  private readonly entries = new Map<string, { until: number; value: T }>();

  constructor(private readonly capacity: number) {}

  /** Number of entries (expired ones included until they are looked up or evicted). */
  get size(): number {
    return this.entries.size;
  }

  /** The stored value and the milliseconds left, if `key` is still denied. */
  get(key: string): { value: T; leftMs: number } | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    const leftMs = entry.until - performance.now();
    if (leftMs <= 0) {
      this.entries.delete(key);
      return undefined;
    }
    return { value: entry.value, leftMs };
  }

  /** Remembers that `key` is denied for `forMs`. */
  set(key: string, forMs: number, value: T): void {
    if (this.capacity === 0 || forMs <= 0) return;
    this.entries.delete(key);
    if (this.entries.size >= this.capacity) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
    this.entries.set(key, { until: performance.now() + forMs, value });
  }

  /** Forgets every entry whose key contains `text`. */
  deleteContaining(text: string): void {
    for (const key of this.entries.keys()) if (key.includes(text)) this.entries.delete(key);
  }
}
