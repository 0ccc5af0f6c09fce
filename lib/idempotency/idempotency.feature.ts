import type { RedisLuaFeature } from '../module/feature';
import { IdempotencyService } from './idempotency.service';

/** Idempotency keys as a feature of the module: `IdempotencyService`. */
export const idempotencyFeature: RedisLuaFeature = {
  name: 'idempotency keys',
  providers: [IdempotencyService],
};
