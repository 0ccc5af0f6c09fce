/**
 * Limiter consume: nest-redis-lua (each algorithm) vs rate-limiter-flexible, @nest-lab/throttler-storage-redis
 * and the `return 1` ceiling, same Redis, same concurrency and key spread. Plus two Redis-side
 * references: the seed guide's sorted-set script and the bare minimum a sliding log must do
 * (ZREMRANGEBYSCORE + ZCARD + ZADD + PEXPIRE), which bound what the sliding log can cost in Redis.
 */
import { ThrottlerStorageRedisService } from '@nest-lab/throttler-storage-redis';
import type { INestApplicationContext } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { RateLimiterRedis } from 'rate-limiter-flexible';
import { LuaScriptEngine, RateLimiterService, type RateLimitAlgorithm } from '../../lib';
import type { BenchRedis } from '../harness/clients';
import { ceilingScript } from '../harness/clients';
import type { Contender } from '../harness/measure';

/** Limits high enough that every call is allowed: the common, admitted path is what is measured. */
export const LIMIT = 1_000_000;
export const WINDOW_MS = 60_000;
/** Sliding log: a limit that keeps each key's log in the compact (listpack) encoding during the run. */
export const LOG_LIMIT = 100;

export const ALGORITHMS: readonly RateLimitAlgorithm[] = ['sliding-log', 'sliding-window', 'token-bucket', 'fixed-window'];

export const ourName = (algorithm: string): string => `nest-redis-lua ${algorithm}`;
export const FLEXIBLE = 'rate-limiter-flexible consume';
export const NEST_LAB = '@nest-lab/throttler-storage-redis increment';
export const CEILING = 'ceiling: `return 1` script (same client, through the library)';
export const IOREDIS_CEILING = 'reference: `return 1` by ioredis EVALSHA on the same connection (writes not coalesced)';
export const SEED = 'reference: seed sorted-set script';
export const MINIMAL_LOG = 'floor: bare TIME+ZREMRANGEBYSCORE+ZCARD+ZADD+PEXPIRE script (same client, through the library)';

/**
 * Key names for a sliding log of limit LOG_LIMIT: a new generation of names every 50 000 calls, so
 * no key sees more than ~50 hits (1000 keys) and every call is admitted, with a realistic log size.
 */
export function rotatingKeys(prefix: string, keys = 1000): (k: number) => string {
  let calls = 0;
  return (k) => `${prefix}${k}:${Math.floor(calls++ / (keys * 50))}`;
}

let generation = 0;

/**
 * Our limiter, one row per algorithm, called as the README shows (a fresh rule literal per call). The sliding log keeps a log per key: with a limit of 100 and
 * a long window a key would fill and be denied, so its keys rotate (each key sees < 100 hits), and
 * every call of this function (one per app variant) gets key names of its own. A denied call fails
 * the run: a denial would be answered by the local deny cache and measure something else.
 */
export function ourLimiters(app: INestApplicationContext): Contender[] {
  const limiter = app.get(RateLimiterService);
  const admitted = (result: { allowed: boolean }): void => {
    if (!result.allowed) throw new Error('bench: a limiter call was denied; the workload must be admitted');
  };
  generation++;
  // The README's call shape: a fresh rule literal on every call.
  return ALGORITHMS.map((algorithm) => {
    const logKey = rotatingKeys(`g${generation}k`);
    return {
      name: ourName(algorithm),
      op:
        algorithm === 'sliding-log'
          ? (k: number) => limiter.consume(logKey(k), { limit: LOG_LIMIT, windowMs: WINDOW_MS, algorithm }).then(admitted)
          : (k: number) => limiter.consume(`k${k}`, { limit: LIMIT, windowMs: WINDOW_MS, algorithm }).then(admitted),
    };
  });
}

export const REUSED = 'reference: nest-redis-lua fixed-window, one rule object reused';

/** The best case of the call: one rule object made once (a plan found by identity, no key built). */
export function reusedRule(app: INestApplicationContext): Contender {
  const limiter = app.get(RateLimiterService);
  const rule = { limit: LIMIT, windowMs: WINDOW_MS, algorithm: 'fixed-window' as const };
  return { name: REUSED, op: (k) => limiter.consume(`k${k}`, rule) };
}

/**
 * The ceiling: a script that does nothing, run the way the library runs its own scripts (a
 * {@link LuaScript} of the app's engine: same connection, same write coalescing). No library call
 * can cost less on the client.
 */
export function ceilingOn(app: INestApplicationContext): Contender {
  const ceiling = app.get(LuaScriptEngine).register<number>({ name: 'bench/return-1', lua: 'return 1', numberOfKeys: 1 });
  return { name: CEILING, op: (k) => ceiling.run([`bench-ceiling-${k}`]) };
}

/** The same script sent by ioredis itself on the library's connection (no write coalescing). */
export function ioredisCeilingOn(client: Redis): Contender {
  const ceiling = ceilingScript(client);
  return { name: IOREDIS_CEILING, op: (k) => ceiling(`bench-ceiling-${k}`) };
}

export function peerLimiters(redis: BenchRedis): Contender[] {
  const flexible = new RateLimiterRedis({
    storeClient: redis.client(),
    points: LIMIT,
    duration: WINDOW_MS / 1000,
    keyPrefix: 'bench-rlf',
  });
  const nestLab = new ThrottlerStorageRedisService(redis.client());
  return [
    { name: FLEXIBLE, op: (k) => flexible.consume(`k${k}`) },
    { name: NEST_LAB, op: (k) => nestLab.increment(`k${k}`, WINDOW_MS, LIMIT, 0, 'default') },
  ];
}

const SEED_LUA = `
local key = KEYS[1]
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local current_time = tonumber(ARGV[3])
local window_start = current_time - window
redis.call('ZREMRANGEBYSCORE', key, '-inf', window_start)
local count = redis.call('ZCARD', key)
if count < limit then
  redis.call('ZADD', key, current_time, current_time .. math.random())
  redis.call('EXPIRE', key, window)
  return {1, limit - count - 1}
else
  return {0, 0}
end`;

const MINIMAL_LOG_LUA = `
local t = redis.call('TIME')
local now = t[1] * 1000000 + t[2]
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 60000000)
redis.call('ZCARD', KEYS[1])
redis.call('ZADD', KEYS[1], now, now)
redis.call('PEXPIRE', KEYS[1], 60000)
return 1`;

/**
 * Redis-side references for the sliding log (same key rotation as ours): the seed guide's script on a
 * default client, and the least an exact sliding log must do in Redis (read the clock, trim, count,
 * add, extend the TTL) with nothing else, run the way ours is run (the library's engine and client):
 * our sliding log cannot be faster than that floor.
 */
export function referenceScripts(client: Redis, app: INestApplicationContext): Contender[] {
  client.defineCommand('benchSeed', { numberOfKeys: 1, lua: SEED_LUA });
  const seed = client as unknown as { benchSeed(key: string, limit: number, window: number, now: number): Promise<unknown> };
  const minimal = app.get(LuaScriptEngine).register<number>({ name: 'bench/minimal-log', lua: MINIMAL_LOG_LUA, numberOfKeys: 1 });
  const seedKey = rotatingKeys('bench-seed-');
  const minimalKey = rotatingKeys('bench-min-');
  return [
    { name: SEED, op: (k) => seed.benchSeed(seedKey(k), LOG_LIMIT, WINDOW_MS / 1000, Date.now() / 1000) },
    { name: MINIMAL_LOG, op: (k) => minimal.run([minimalKey(k)]) },
  ];
}
