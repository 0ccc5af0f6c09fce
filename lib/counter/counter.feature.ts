import type { RedisLuaFeature } from '../module/feature';
import { BoundedCounterService } from './counter.service';

/** Bounded counters as a feature of the module: `BoundedCounterService`. */
export const counterFeature: RedisLuaFeature = {
  name: 'bounded counters',
  providers: [BoundedCounterService],
};
