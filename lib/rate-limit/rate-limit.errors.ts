import { HttpException, HttpStatus } from '@nestjs/common';
import { RedisLuaInputError } from '../module/redis-lua.errors';
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
      `nest-redis-lua: rate limit for "${key.slice(0, 100)}" could not be checked: Redis is unavailable (failMode "${failMode}")`,
      options,
    );
  }
}

/** Bad input to a `RateLimiterService` call (an empty key, a cost that is not an integer, ...), before any Redis write. */
export class RateLimitInputError extends RedisLuaInputError {
  override readonly name = 'RateLimitInputError';
}

/** HTTP 429 thrown by the guard; the body names the limit that was hit. */
export class RateLimitExceededException extends HttpException {
  constructor(readonly result: RateLimitResult) {
    const { rule } = result;
    super(
      {
        statusCode: HttpStatus.TOO_MANY_REQUESTS,
        error: 'Too Many Requests',
        message: `Rate limit "${rule.name}" exceeded: ${rule.limit} per ${rule.windowMs} ms`,
        limit: { name: rule.name, limit: rule.limit, windowMs: rule.windowMs, algorithm: rule.algorithm },
        retryAfterMs: result.retryAfterMs,
      },
      HttpStatus.TOO_MANY_REQUESTS,
    );
  }
}
