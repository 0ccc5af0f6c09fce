/**
 * `acquire` gave up: the lock was still held after `waitMs`. `@WithLock` turns it into a 409 (or the
 * configured status) with a `Retry-After` header.
 */
export class LockTimeoutError extends Error {
  override readonly name = 'LockTimeoutError';

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
    super(`Lock on "${resource}" is held by another owner (waited ${waitMs} ms)`);
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
