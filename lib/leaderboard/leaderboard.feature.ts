import type { RedisLuaFeature } from '../module/feature';
import { LeaderboardService } from './leaderboard.service';

/** Leaderboards as a feature of the module: `LeaderboardService` (boards are configured in Redis, not in options). */
export const leaderboardFeature: RedisLuaFeature = {
  name: 'leaderboards',
  providers: [LeaderboardService],
};
