import { RedisLuaInputError, RedisLuaUnavailableError } from '../core/errors';
import { RedisLuaHttpException } from '../core/http';
import { message } from '../core/messages';

/**
 * `acquire` gave up: the lock was still held after `waitMs`. `@WithLock` turns it into a 409 (or the
 * configured status) with a `Retry-After` header.
 */
export class LockTimeoutError extends Error {
  override readonly name: string = 'LockTimeoutError';

  constructor(
    /** The resource that stayed locked. */
    readonly resource: string,
    /** How long `acquire` waited, in ms (the `waitMs` it was given). */
    readonly waitMs: number,
    /**
     * The holder's remaining TTL at the last attempt, in ms: the longest a retry could have to wait
     * if the holder does not renew. `undefined` when Redis reported no expiry on the lock key.
     */
    readonly retryAfterMs: number | undefined,
  ) {
    super(message('LockService.acquire', `the lock on "${resource}" is held by another owner (waited ${waitMs} ms)`));
  }
}

/**
 * `SemaphoreService.acquire` gave up: every permit was still held after `waitMs`. A
 * {@link LockTimeoutError} (`resource` is the semaphore's name, `retryAfterMs` the time until the
 * first holder's permit expires unless it is renewed).
 */
export class SemaphoreTimeoutError extends LockTimeoutError {
  override readonly name: string = 'SemaphoreTimeoutError';

  constructor(
    semaphore: string,
    /** The permits the caller asked the semaphore to have. */
    readonly permits: number,
    waitMs: number,
    retryAfterMs: number | undefined,
  ) {
    super(semaphore, waitMs, retryAfterMs);
    this.message = message('SemaphoreService.acquire', `all ${permits} permits of "${semaphore}" are held (waited ${waitMs} ms)`);
  }
}

/**
 * A lock taken with `replicas: n` was not acknowledged by `n` replicas within `replicaTimeoutMs`: it
 * was released again (a failover right now could have handed it to someone else) and `acquire`
 * rejects without waiting further. A {@link RedisLuaUnavailableError} (reason `refused`): `@WithLock`
 * answers 503. Retry later, or ask for fewer replicas than the servers have.
 */
export class LockReplicationError extends RedisLuaUnavailableError {
  override readonly name: string = 'LockReplicationError';

  constructor(
    /** The resource whose lock was taken and given back. */
    readonly resource: string,
    /** The replicas asked for (`replicas`). */
    readonly replicas: number,
    /**
     * How many replicas acknowledged the lock, when Redis's WAIT answered within `replicaTimeoutMs`;
     * `undefined` when `replicaTimeoutMs` ran out first (then fewer than `replicas` had).
     */
    readonly acknowledged: number | undefined,
    /** How long the acquisition waited for the acknowledgements, in ms. */
    readonly replicaTimeoutMs: number,
  ) {
    super(
      message(
        'LockService.acquire',
        `the lock on "${resource}" was not acknowledged by ${replicas} replicas (option "replicas") within ${replicaTimeoutMs} ms${acknowledged === undefined ? '' : ` (${acknowledged} did)`}; it was released`,
      ),
      'refused',
    );
  }
}

/**
 * Why a held lock's `signal` aborted: the lock was found gone or owned by someone else at renewal,
 * it could not be renewed before it expired (Redis unreachable), or the application shut down.
 * Work protected by the lock should stop: another owner may hold it now.
 */
export class LockLostError extends Error {
  override readonly name = 'LockLostError';

  constructor(
    /** The resource whose lock was lost. */
    readonly resource: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`Lock on "${resource}" lost: ${message}`, options);
  }
}

/** Bad input to a {@link LockService} call (an empty resource, a malformed token), before any Redis call. */
export class LockInputError extends RedisLuaInputError {
  override readonly name = 'LockInputError';
}

/**
 * 409 (or `@WithLock`'s `conflictStatus`): the route's lock stayed held by another request past
 * `waitMs`. Body `{ statusCode, error, message, retryAfter }`; the interceptor also sends
 * `Retry-After` (seconds, from the holder's remaining TTL).
 */
export class LockConflictException extends RedisLuaHttpException {
  constructor(
    /** Seconds until the holder's lease runs out (at least 1). */
    readonly retryAfter: number,
    status = 409,
    options?: { cause?: unknown },
  ) {
    super(status, 'The resource is locked by another request; retry later', { retryAfter }, options);
  }
}

/**
 * 409 (or `@WithSemaphore`'s `conflictStatus`): every permit of the route's semaphore stayed held
 * past `waitMs`. Body `{ statusCode, error, message, retryAfter }`; the interceptor also sends
 * `Retry-After` (seconds, until the first holder's permit expires).
 */
export class SemaphoreConflictException extends RedisLuaHttpException {
  constructor(
    /** Seconds until the first holder's permit runs out (at least 1). */
    readonly retryAfter: number,
    status = 409,
    options?: { cause?: unknown },
  ) {
    super(status, 'Every permit of this resource is in use by other requests; retry later', { retryAfter }, options);
  }
}

/**
 * 409 (or `@WithLock`'s `conflictStatus`) sent instead of the handler's response when the route's lock
 * was lost before the response was out (`onLost: 'error'`, the default): another request may have
 * held the lock meanwhile, so the client must not take the answer as done under mutual exclusion.
 * Body `{ statusCode, error, message }`; the {@link LockLostError} is its `cause`.
 */
export class LockLostException extends RedisLuaHttpException {
  constructor(status = 409, options?: { cause?: unknown }) {
    super(status, 'The lock of this request was lost before it finished: another request may have run at the same time', {}, options);
  }
}
