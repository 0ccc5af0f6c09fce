import { RedisLuaInputError } from '../core/errors';
import { RedisLuaHttpException } from '../core/http';
import { message } from '../core/messages';

/** Bad input to {@link IdempotencyService} (an empty key or fingerprint, invalid options), before any Redis call. */
export class IdempotencyInputError extends RedisLuaInputError {
  override readonly name = 'IdempotencyInputError';
}

/**
 * A run with the same key and fingerprint is in progress (in this or another process) and did not
 * end within `waitMs`. Retry after `retryAfterMs`; the HTTP answer is 409 Conflict with `Retry-After`.
 */
export class IdempotencyConflictError extends Error {
  override readonly name = 'IdempotencyConflictError';

  constructor(
    /** The idempotency key. */
    readonly key: string,
    /** How long the call waited for the run to end, in ms. */
    readonly waitMs: number,
    /** The running claim's remaining lease at the last look, in ms: when it expires unless renewed. */
    readonly retryAfterMs: number,
  ) {
    super(message('IdempotencyService.run', `a run with idempotency key "${key}" is in progress (waited ${waitMs} ms)`));
  }
}

/**
 * The key was used before with another fingerprint (another payload): the earlier run's result does
 * not answer this request, and the key cannot be used for it. The HTTP answer is 422.
 */
export class IdempotencyMismatchError extends Error {
  override readonly name = 'IdempotencyMismatchError';

  constructor(
    /** The idempotency key. */
    readonly key: string,
  ) {
    super(message('IdempotencyService.run', `idempotency key "${key}" was used with another fingerprint (another request payload)`));
  }
}

/**
 * 400 from `@Idempotent()`: the request has no idempotency key (the route requires one), or one that
 * is not a single value of at most 256 characters. Body `{ statusCode, error, message }`.
 */
export class IdempotencyKeyException extends RedisLuaHttpException {
  constructor(message: string) {
    super(400, message);
  }
}

/**
 * 409 from `@Idempotent()`: a request with the same key is still being handled. Body
 * `{ statusCode, error, message, retryAfter }`, and `Retry-After` (seconds, from its remaining lease).
 */
export class IdempotencyConflictException extends RedisLuaHttpException {
  constructor(
    /** Seconds until the running request's lease runs out (at least 1). */
    readonly retryAfter: number,
    options?: { cause?: unknown },
  ) {
    super(409, 'A request with this idempotency key is still being processed; retry later', { retryAfter }, options);
  }
}

/**
 * 422 from `@Idempotent()`: the key was used with another request (another method, URL or body).
 * Body `{ statusCode, error, message }`.
 */
export class IdempotencyMismatchException extends RedisLuaHttpException {
  constructor(options?: { cause?: unknown }) {
    super(422, 'This idempotency key was used with a different request payload', {}, options);
  }
}
