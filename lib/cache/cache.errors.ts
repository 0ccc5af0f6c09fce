import { RedisLuaInputError } from '../core/errors';
import { message } from '../core/messages';

/**
 * Base class of the errors {@link CacheAsideService} raises itself at run time (a loader's own error
 * passes through unchanged; bad arguments raise {@link CacheInputError}).
 */
export class CacheAsideError extends Error {
  override readonly name: string = 'CacheAsideError';
}

/** Bad input to a {@link CacheAsideService} call: thrown before anything is read or written. */
export class CacheInputError extends RedisLuaInputError {
  override readonly name = 'CacheInputError';
}

/** Another caller was loading the value and it did not arrive within `waitMs`. */
export class CacheWaitTimeoutError extends CacheAsideError {
  override readonly name = 'CacheWaitTimeoutError';

  constructor(
    /** The cache key the caller waited for. */
    readonly key: string,
    /** How long it waited, in ms (the `waitMs` option). */
    readonly waitMs: number,
  ) {
    super(message('CacheAsideService.getOrLoad', `gave up waiting for "${key}" after ${waitMs} ms: another caller holds its loader lock`));
  }
}
