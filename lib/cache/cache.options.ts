/** Turns values into the strings stored in Redis and back. */
export interface CacheSerializer<T> {
  serialize(value: T): string;
  deserialize(text: string): T;
}

/** Options of {@link CacheAsideService.getOrLoad}. */
export interface GetOrLoadOptions<T> {
  /**
   * How long one loader may hold the key's loader lock, in ms (default 10000). If a load takes longer,
   * the lock expires and another caller may load too: single-flight is an efficiency measure, not a
   * guarantee for loaders slower than this.
   */
  lockTtlMs?: number;
  /** How long a caller waits for another caller's load before {@link CacheWaitTimeoutError}, in ms (default 10000; 0 = do not wait). */
  waitMs?: number;
  /** How values are stored (default: JSON). */
  serializer?: CacheSerializer<T>;
}

/** The default serializer: `JSON.stringify` / `JSON.parse`. */
export const JSON_SERIALIZER: CacheSerializer<unknown> = {
  serialize: (value) => JSON.stringify(value),
  deserialize: (text) => JSON.parse(text) as unknown,
};

export const DEFAULT_LOADER_LOCK_TTL_MS = 10_000;
export const DEFAULT_WAIT_MS = 10_000;
