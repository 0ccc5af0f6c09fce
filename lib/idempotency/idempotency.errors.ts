import { RedisLuaInputError } from '../core/errors';
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
