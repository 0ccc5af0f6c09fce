import { RedisLuaInputError } from '../core/errors';

/**
 * Bad input to a {@link LeaderboardService} call (a non-finite score, an empty or over-long member,
 * a wrong option). Thrown before anything is written to Redis.
 */
export class LeaderboardInputError extends RedisLuaInputError {
  override readonly name = 'LeaderboardInputError';
}
