import { RedisLuaInputError } from '../core/errors';

/**
 * Bad input to a {@link BoundedCounterService} call (an amount that is not a positive safe integer,
 * a bound that is not a safe integer, a wrong TTL, an empty key). Thrown before anything is written.
 */
export class CounterInputError extends RedisLuaInputError {
  override readonly name = 'CounterInputError';
}
