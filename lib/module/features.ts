/**
 * The features the module composes: adding one means a folder lib/<feature>/ with its descriptor
 * (see ./feature.ts) and one line here (plus its option section in {@link FeatureOptions}, if it has
 * one). Nothing else of the module or the script engine imports a feature.
 */
import { cacheFeature } from '../cache/cache.feature';
import { counterFeature } from '../counter/counter.feature';
import { idempotencyFeature } from '../idempotency/idempotency.feature';
import { leaderboardFeature } from '../leaderboard/leaderboard.feature';
import { lockFeature } from '../lock/lock.feature';
import type { LockModuleOptions } from '../lock/lock.options';
import { rateLimitFeature } from '../rate-limit/rate-limit.feature';
import type { RateLimitModuleOptions } from '../rate-limit/rate-limit.options';
import type { RedisLuaFeature } from './feature';

export const FEATURES: readonly RedisLuaFeature[] = [
  rateLimitFeature,
  lockFeature,
  leaderboardFeature,
  counterFeature,
  cacheFeature,
  idempotencyFeature,
];

/** The features' sections of {@link RedisLuaModuleOptions}. */
export interface FeatureOptions {
  /** Rate limiting: defaults of `RateLimiterService` and of every `@RateLimit` route (see the README). */
  rateLimit?: RateLimitModuleOptions;
  /** Defaults of every lock (`LockService`, `@WithLock`): `ttlMs` (30000), `waitMs` (5000). Validated at boot. */
  lock?: LockModuleOptions;
}
