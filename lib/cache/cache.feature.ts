import type { RedisLuaFeature } from '../module/feature';
import { CacheAsideService } from './cache.service';

/** Cache-aside as a feature of the module: `CacheAsideService`. */
export const cacheFeature: RedisLuaFeature = {
  name: 'cache-aside',
  providers: [CacheAsideService],
};
