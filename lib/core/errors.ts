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

/**
 * Why Redis could not answer a call: `unreachable` (no connection, or it closed while the call was in
 * flight), `timeout` (no reply within `commandTimeout`, or the rate limiter's `timeoutMs`), `refused`
 * (the server answered that it cannot run commands now: out of memory, busy with a script, loading its
 * data, a replica, a cluster without a quorum; {@link RedisLuaUnavailableError.redisCode} says which;
 * or too few replicas acknowledged a lock that asked for them: `LockReplicationError`).
 */
export type RedisLuaUnavailableReason = 'unreachable' | 'timeout' | 'refused';

/**
 * Redis could not decide a call: it is unreachable, did not answer in time, or refused to run it
 * (OOM, BUSY, LOADING, READONLY, MASTERDOWN, NOREPLICAS, MISCONF, CLUSTERDOWN, TRYAGAIN, MOVED/ASK
 * after ioredis's redirections ran out). Every service method rejects with it (or a subclass, such as
 * `RateLimitUnavailableError`) instead of a raw ioredis error; the original error is its `cause`.
 * `RedisLuaExceptionFilter` and the library's guards and interceptors answer it with HTTP 503.
 */
export class RedisLuaUnavailableError extends Error {
  override readonly name: string = 'RedisLuaUnavailableError';

  constructor(
    message: string,
    /** What went wrong: see {@link RedisLuaUnavailableReason}. */
    readonly reason: RedisLuaUnavailableReason,
    /** The first word of Redis's error reply (`OOM`, `BUSY`, ...) when `reason` is `refused`. */
    readonly redisCode?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
