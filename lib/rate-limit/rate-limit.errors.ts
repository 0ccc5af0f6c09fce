import { RedisLuaInputError } from '../core/errors';
import { RedisLuaHttpException } from '../core/http';
import { message } from '../core/messages';
import type { RateLimitFailMode, RateLimitResult } from './rate-limit.options';

/** Thrown by `consume` with `failMode: 'closed'` when Redis is down or slower than `timeoutMs`. */
export class RateLimitUnavailableError extends Error {
  override readonly name = 'RateLimitUnavailableError';

  constructor(
    /** The identifier whose hit could not be decided. */
    readonly key: string,
    readonly failMode: RateLimitFailMode,
    options?: { cause?: unknown },
  ) {
    super(
      message('', `rate limit for "${key.slice(0, 100)}" could not be checked: Redis is unavailable (failMode "${failMode}")`),
      options,
    );
  }
}

/** Bad input to a `RateLimiterService` call or a `@RateLimit` option (an empty key, a cost that is not an integer, ...), before any Redis write. */
export class RateLimitInputError extends RedisLuaInputError {
  override readonly name = 'RateLimitInputError';
}

/** HTTP 429 thrown by the guard; the body names the limit that was hit and when to retry. */
export class RateLimitExceededException extends RedisLuaHttpException {
  constructor(readonly result: RateLimitResult) {
    const { rule } = result;
    super(429, `Rate limit "${rule.name}" exceeded: ${rule.limit} per ${rule.windowMs} ms`, {
      limit: { name: rule.name, limit: rule.limit, windowMs: rule.windowMs, algorithm: rule.algorithm },
      retryAfterMs: result.retryAfterMs,
    });
  }
}
