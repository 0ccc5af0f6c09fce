import { RedisLuaInputError } from '../module/redis-lua.errors';

/**
 * Bad input to a {@link LeaderboardService} call (a non-finite score, an empty or over-long member,
 * a wrong option). Thrown before anything is written to Redis.
 */
export class LeaderboardInputError extends RedisLuaInputError {
  override readonly name = 'LeaderboardInputError';

  constructor(
    /** The argument or option at fault, e.g. `score`, `member`, `maxEntries`. */
    field: string,
    message: string,
  ) {
    super(`nest-redis-lua leaderboard: ${message}`, field);
  }
}
