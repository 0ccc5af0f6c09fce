import { RedisLuaInputError, RedisLuaUnavailableError } from '../core/errors';
import { RedisLuaHttpException } from '../core/http';
import { message } from '../core/messages';
import type { RateLimitFailMode, RateLimitResult } from './rate-limit.options';

/**
 * Thrown by `consume` / `peek` with `failMode: 'closed'` when Redis is down, slower than `timeoutMs`
 * or refuses the call (out of memory, ...). A {@link RedisLuaUnavailableError}: its `reason`,
 * `redisCode` and `cause` are those of the failure.
 */
export class RateLimitUnavailableError extends RedisLuaUnavailableError {
  override readonly name = 'RateLimitUnavailableError';

  constructor(
    /** The identifier whose hit could not be decided. */
    readonly key: string,
    readonly failMode: RateLimitFailMode,
    /** What Redis did: unreachable, timed out, refused. */
    failure: RedisLuaUnavailableError,
  ) {
    super(
      message(
        '',
        `rate limit for "${key.slice(0, 100)}" could not be checked (failMode "${failMode}"): ${failure.message.replace(/^nest-redis-lua: /, '')}`,
      ),
      failure.reason,
      failure.redisCode,
      { cause: failure.cause ?? failure },
    );
  }
}

/** Bad input to a `RateLimiterService` call or a `@RateLimit` option (an empty key, a cost that is not an integer, ...), before any Redis write. */
export class RateLimitInputError extends RedisLuaInputError {
  override readonly name = 'RateLimitInputError';
}

/** The JSON body of the guard's 429: the limit that was hit (or `blocked` for a ban) and when to retry. */
export type RateLimitExceededBody = {
  statusCode: 429;
  error: string;
  message: string;
  retryAfterMs: number;
} & (
  { limit: Pick<RateLimitResult['rule'], 'name' | 'limit' | 'windowMs' | 'algorithm'>; blocked?: never } | { blocked: true; limit?: never }
);

/** HTTP 429 thrown by the guard; the body names the limit that was hit (or says the client is blocked) and when to retry. */
export class RateLimitExceededException extends RedisLuaHttpException {
  constructor(readonly result: RateLimitResult) {
    const { statusCode, message, ...details } = RateLimitExceededException.bodyOf(result);
    super(statusCode, message, details);
  }

  /** The JSON body of the 429 for `result` (what RateLimitMiddleware sends without building the exception). */
  static bodyOf(result: RateLimitResult): RateLimitExceededBody {
    const { rule, retryAfterMs } = result;
    if (result.ban) {
      // The ban's reason is the operators' note (isBlocked), not the client's answer.
      return { statusCode: 429, error: 'Too Many Requests', message: 'Blocked: too many requests', blocked: true, retryAfterMs };
    }
    return {
      statusCode: 429,
      error: 'Too Many Requests',
      message: `Rate limit "${rule.name}" exceeded: ${rule.limit} per ${rule.windowMs} ms`,
      limit: { name: rule.name, limit: rule.limit, windowMs: rule.windowMs, algorithm: rule.algorithm },
      retryAfterMs,
    };
  }
}
