/**
 * Limiter consume: nest-redis-lua (each algorithm) vs rate-limiter-flexible, @nest-lab/throttler-storage-redis
 * and the `return 1` ceiling, same Redis, same client settings, same concurrency and key spread.
 */
import { ThrottlerStorageRedisService } from '@nest-lab/throttler-storage-redis';
import { RateLimiterRedis } from 'rate-limiter-flexible';
import type { BenchRedis } from '../harness/clients';
import { ceilingScript } from '../harness/clients';
import type { Contender } from '../harness/measure';

/** Limits high enough that every call is allowed: the common, admitted path is what is measured. */
export const LIMIT = 1_000_000;
export const WINDOW_MS = 60_000;

export function peerLimiters(redis: BenchRedis): Contender[] {
  const flexible = new RateLimiterRedis({
    storeClient: redis.client(),
    points: LIMIT,
    duration: WINDOW_MS / 1000,
    keyPrefix: 'bench-rlf',
  });
  const nestLab = new ThrottlerStorageRedisService(redis.client());
  const ceiling = ceilingScript(redis.client());
  return [
    { name: 'rate-limiter-flexible consume', op: (k) => flexible.consume(`k${k}`) },
    { name: '@nest-lab/throttler-storage-redis increment', op: (k) => nestLab.increment(`k${k}`, WINDOW_MS, LIMIT, 0, 'default') },
    { name: 'ceiling: ioredis `return 1` script', op: (k) => ceiling(`bench-ceiling-${k}`) },
  ];
}
