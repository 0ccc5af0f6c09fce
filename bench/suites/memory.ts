/**
 * Memory: MEMORY USAGE (SAMPLES 0: every element counted) per logged request for the sliding log at
 * limit 100 (listpack) and 1000 (skiplist), and per key for the O(1) algorithms; the seed guide's
 * `time .. math.random()` members as the reference. Deterministic: measured once, not timed.
 */
import type { INestApplicationContext } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { RateLimiterService, type RateLimitAlgorithm } from '../../lib';
import { limitCheck, type SuiteResult } from '../harness/report';

const KEYS = 20;

async function usage(admin: Redis, pattern: string): Promise<number> {
  const keys = await admin.keys(pattern);
  let total = 0;
  for (const key of keys) total += Number(await admin.memory('USAGE', key, 'SAMPLES', 0));
  return total;
}

async function seedLog(admin: Redis, key: string, entries: number): Promise<void> {
  // The seed guide's members: `time .. math.random()` (seconds with a float tail, random fraction).
  const now = Date.now() / 1000;
  const args: Array<string | number> = [];
  for (let i = 0; i < entries; i++) {
    const t = now + i / 1e6;
    args.push(t, `${t}${Math.random()}`);
  }
  await admin.zadd(key, ...args);
}

export async function memorySuite(app: INestApplicationContext, admin: Redis): Promise<SuiteResult> {
  const limiter = app.get(RateLimiterService);
  const rows: SuiteResult['rows'] = [];
  const perEntry: Record<number, number> = {};
  for (const limit of [100, 1000]) {
    // Empty-key overhead is measured with 1 entry and subtracted: what remains is per request.
    const rule = { limit, windowMs: 3_600_000, algorithm: 'sliding-log' as const };
    for (let k = 0; k < KEYS; k++) {
      await limiter.consume(`mem-one-${limit}-${k}`, rule);
      await Promise.all(Array.from({ length: limit }, () => limiter.consume(`mem-full-${limit}-${k}`, rule)));
    }
    const one = (await usage(admin, `bench:rl:{mem-one-${limit}-*`)) / KEYS;
    const full = (await usage(admin, `bench:rl:{mem-full-${limit}-*`)) / KEYS;
    perEntry[limit] = (full - one) / (limit - 1);
    for (let k = 0; k < KEYS; k++) {
      await seedLog(admin, `mem-seed-one-${limit}-${k}`, 1);
      await seedLog(admin, `mem-seed-full-${limit}-${k}`, limit);
    }
    const seedOne = (await usage(admin, `mem-seed-one-${limit}-*`)) / KEYS;
    const seedFull = (await usage(admin, `mem-seed-full-${limit}-*`)) / KEYS;
    rows.push(
      { name: `nest-redis-lua sliding-log, limit ${limit}`, values: { bytes: perEntry[limit], key: full } },
      { name: `reference: seed members, limit ${limit}`, values: { bytes: (seedFull - seedOne) / (limit - 1), key: seedFull } },
    );
  }
  const perKey: Record<string, number> = {};
  for (const algorithm of ['sliding-window', 'token-bucket', 'fixed-window'] as RateLimitAlgorithm[]) {
    for (let k = 0; k < KEYS; k++) await limiter.consume(`mem-${algorithm}-${k}`, { limit: 1000, windowMs: 60_000, algorithm });
    perKey[algorithm] = (await usage(admin, `bench:rl:{mem-${algorithm}-*`)) / KEYS;
    rows.push({ name: `nest-redis-lua ${algorithm} (per key)`, values: { bytes: perKey[algorithm], key: perKey[algorithm] } });
  }
  return {
    id: 'memory',
    title: 'Memory (MEMORY USAGE)',
    setup: `${KEYS} keys each; sliding log: bytes per logged request = (usage of a full log − usage of a one-entry log) ÷ (limit − 1); O(1) algorithms: bytes per key (key name included)`,
    columns: [
      { key: 'bytes', label: 'bytes per request (log) / per key', digits: 1 },
      { key: 'key', label: 'bytes per key', digits: 0 },
    ],
    rows,
    targets: [
      limitCheck('sliding-log bytes per logged request, limit 100', perEntry[100], 20),
      limitCheck('sliding-log bytes per logged request, limit 1000', perEntry[1000], 100),
      ...Object.entries(perKey).map(([a, b]) => limitCheck(`${a} bytes per key`, b, 200)),
    ],
  };
}
