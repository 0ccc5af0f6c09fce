/**
 * Bad input to a library call — an empty identifier, a non-finite number, a negative amount, an
 * over-long member — detected before anything is sent to Redis. Every feature's input error extends
 * it (`RateLimitInputError`, `LockInputError`, `LeaderboardInputError`, `CounterInputError`,
 * `CacheInputError`), so one `instanceof RedisLuaInputError` catches them all; it is a `TypeError`.
 */
export class RedisLuaInputError extends TypeError {
  override readonly name: string = 'RedisLuaInputError';

  constructor(
    message: string,
    /** The argument or option at fault (e.g. `score`, `amount`, `ttlMs`), when there is one. */
    readonly field?: string,
  ) {
    super(message);
  }
}
