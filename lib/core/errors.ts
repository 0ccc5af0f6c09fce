/**
 * Bad input to a library call or option — an empty identifier, a non-finite number, a negative
 * amount, an over-long member, an unknown algorithm — detected before anything is sent to Redis (or
 * at boot / decoration time for options). Every feature's input error extends it
 * (`RateLimitInputError`, `LockInputError`, `LeaderboardInputError`, `CounterInputError`,
 * `CacheInputError`), so one `instanceof RedisLuaInputError` catches them all; it is a `TypeError`.
 */
export class RedisLuaInputError extends TypeError {
  override readonly name: string = 'RedisLuaInputError';

  constructor(
    message: string,
    /** The argument or option at fault (e.g. `score`, `amount`, `ttlMs`, `rules[1].windowMs`), when there is one. */
    readonly field?: string,
  ) {
    super(message);
  }
}

/** The constructor of an input error class: every feature passes its own to the validation helpers. */
export type InputErrorClass = new (message: string, field?: string) => RedisLuaInputError;
