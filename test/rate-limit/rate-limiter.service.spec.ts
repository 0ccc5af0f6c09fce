import { join } from 'node:path';
import {
  RateLimitInputError,
  RateLimiterService,
  RedisLuaModule,
  type RateLimitAlgorithm,
  type RateLimitModuleOptions,
  type RateLimitRule,
} from 'nest-redis-lua';
import { runTsChild } from '../harness/child-process';
import { describeTopologies, type TopologyContext } from '../harness/topologies';
import { DECIDED } from '../harness/decided';

const ALGORITHMS: RateLimitAlgorithm[] = ['sliding-log', 'sliding-window', 'token-bucket', 'fixed-window'];
const HOUR = 3_600_000;
const CLOCK_CHILD = join(__dirname, 'fixtures', 'clock-skewed-consumer.ts');

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function limiter(t: TopologyContext, prefix: string, rateLimit: RateLimitModuleOptions = {}): Promise<RateLimiterService> {
  const app = await t.app([RedisLuaModule.forRoot({ ...t.connection(), keyPrefix: prefix, rateLimit: { ...DECIDED, ...rateLimit } })]);
  return app.get(RateLimiterService);
}

describeTopologies('RateLimiterService', (t) => {
  it('admits exactly the limit of 1000 concurrent hits from 4 clients, for every algorithm and for mixed rules', async () => {
    const prefix = t.prefix();
    // Four applications: four ioredis clients (four connections, or four cluster clients).
    // No fail-open decision may count as an admitted hit (DECIDED, which limiter() applies).
    const services = await Promise.all([0, 1, 2, 3].map(() => limiter(t, prefix, { localCacheSize: 0 })));
    const cases: Array<[string, RateLimitRule[]]> = [
      ...ALGORITHMS.map((algorithm): [string, RateLimitRule[]] => [algorithm, [{ limit: 100, windowMs: HOUR, algorithm }]]),
      [
        'mixed',
        [
          { limit: 100, windowMs: HOUR, algorithm: 'token-bucket' },
          { limit: 150, windowMs: HOUR, algorithm: 'sliding-log' },
        ],
      ],
    ];
    for (const [name, rules] of cases) {
      const key = `exact-${name}`;
      const results = await Promise.all(Array.from({ length: 1000 }, (_, i) => services[i % 4].consume(key, rules)));
      expect(results.filter((r) => r.degraded !== undefined)).toEqual([]);
      const allowed = results.filter((r) => r.allowed && !r.degraded);
      expect({ name, allowed: allowed.length }).toEqual({ name, allowed: 100 });
      // Remaining counts down exactly once per admitted hit.
      expect(allowed.map((r) => r.remaining).sort((a, b) => a - b)).toEqual(Array.from({ length: 100 }, (_, i) => i));
      const denied = results.find((r) => !r.allowed)!;
      expect(denied.retryAfterMs).toBeGreaterThan(0);
      expect(denied.limit).toBe(100);
    }
  });

  it('sliding log: hits spread over a short window free their slots one by one; denied retries are not counted', async () => {
    const service = await limiter(t, t.prefix(), { localCacheSize: 0 });
    const WINDOW = 2_000;
    const rule: RateLimitRule = { limit: 3, windowMs: WINDOW };
    // Client-side bounds of when each hit reached Redis: the expected figures follow from them, not
    // from the sleeps (a loaded machine stretches the sleeps and the round trips).
    const timed = async () => {
      const before = performance.now();
      const result = await service.consume('spread', rule);
      return { result, before, after: performance.now() };
    };
    const first = await timed();
    expect(first.result.allowed).toBe(true);
    await sleep(120);
    const second = await timed();
    expect(second.result.allowed).toBe(true);
    await sleep(120);
    const third = await timed();
    expect(third.result.remaining).toBe(0);

    // The retrying client is denied many times; none of that counts.
    let denied = await service.consume('spread', rule);
    expect(denied.allowed).toBe(false);
    expect(denied.retryAfterMs).toBeGreaterThan(0);
    // The first hit frees its slot WINDOW after it was logged, so at most that minus the time since;
    // the script rounds retry-after up to a whole millisecond (seen: 1758 against a bound of 1757.98).
    expect(denied.retryAfterMs).toBeLessThanOrEqual(Math.ceil(WINDOW - (third.before - first.after)));
    for (let i = 0; i < 20; i++) denied = await service.consume('spread', rule);
    expect(denied.allowed).toBe(false);

    // When the oldest hit expires, one slot is free again, and only one.
    await sleep(denied.retryAfterMs + 2);
    const admitted = await timed();
    expect(admitted.result).toMatchObject({ allowed: true, remaining: 0 });
    const next = await service.consume('spread', rule);
    expect(next.allowed).toBe(false);
    // The next slot is the second hit's: at most its distance to the first one's.
    expect(next.retryAfterMs).toBeGreaterThan(0);
    expect(next.retryAfterMs).toBeLessThanOrEqual(Math.ceil(second.after - first.before));
  });

  it.each(ALGORITHMS)('%s: a denied hit is admitted after retryAfterMs, and denied hits are not counted', async (algorithm) => {
    const service = await limiter(t, t.prefix(), { localCacheSize: 0 });
    const rule: RateLimitRule = { limit: 2, windowMs: 300, algorithm };
    expect((await service.consume('k', rule)).allowed).toBe(true);
    expect((await service.consume('k', rule)).allowed).toBe(true);
    let denied = await service.consume('k', rule);
    for (let i = 0; i < 10; i++) denied = await service.consume('k', rule);
    expect(denied.allowed).toBe(false);
    expect(denied.retryAfterMs).toBeGreaterThan(0);
    expect(denied.retryAfterMs).toBeLessThanOrEqual(600);
    await sleep(denied.retryAfterMs + 2);
    expect((await service.consume('k', rule)).allowed).toBe(true);
  });

  it('two rules: a hit that would break either records nothing in either (all or nothing)', async () => {
    const service = await limiter(t, t.prefix());
    const perSecond: RateLimitRule = { limit: 3, windowMs: HOUR / 2, name: 'burst' };
    const perHour: RateLimitRule = { limit: 10, windowMs: HOUR, name: 'hourly', algorithm: 'token-bucket' };
    const both = [perSecond, perHour];
    for (let i = 0; i < 3; i++) expect((await service.consume('two', both)).allowed).toBe(true);
    const denied = await service.consume('two', both);
    expect(denied).toMatchObject({ allowed: false, limit: 3, remaining: 0, rule: { name: 'burst' } });
    // The hourly rule did not count the denied hit.
    expect(await service.peek('two', perHour)).toMatchObject({ allowed: true, remaining: 7 });

    // The other way round: cost 8 breaks the hourly rule (7 left), so the roomy rule records nothing either.
    await service.reset('two', perSecond);
    const heavy = await service.consume('two', [perHour, { limit: 100, windowMs: HOUR }], { cost: 8 });
    expect(heavy).toMatchObject({ allowed: false, rule: { name: 'hourly' } });
    expect(await service.peek('two', { limit: 100, windowMs: HOUR })).toMatchObject({ remaining: 100 });
    // When admitted, the result describes the rule with the fewest units left.
    expect(await service.consume('two', both)).toMatchObject({ allowed: true, remaining: 2, rule: { name: 'burst' } });
  });

  it.each(ALGORITHMS)(
    '%s: the single-rule path and the general path decide alike (denied hits not counted, same remaining)',
    async (algorithm) => {
      const service = await limiter(t, t.prefix(), { localCacheSize: 0 });
      const rule: RateLimitRule = { limit: 3, windowMs: HOUR, algorithm };
      // A second rule that never binds sends the same hits through the general, all-or-nothing path.
      const roomy: RateLimitRule = { limit: 1_000, windowMs: HOUR, algorithm };
      const decide = async (key: string, rules: RateLimitRule[]) => {
        const seen: Array<[boolean, number]> = [];
        for (const cost of [1, 1, 2, 1, 1]) {
          const r = await service.consume(key, rules, { cost });
          seen.push([r.allowed, r.remaining]);
        }
        return seen;
      };
      const single = await decide('single', [rule]);
      const general = await decide('general', [rule, roomy]);
      expect(general).toEqual(single);
      expect(single.map(([allowed]) => allowed)).toEqual([true, true, false, true, false]);
      expect((await service.peek('single', rule)).remaining).toBe((await service.peek('general', rule)).remaining);
    },
  );

  it('cost takes several units; peek records nothing; reset forgets', async () => {
    const service = await limiter(t, t.prefix());
    for (const algorithm of ALGORITHMS) {
      const rule: RateLimitRule = { limit: 10, windowMs: HOUR, algorithm };
      expect(await service.consume(`cost-${algorithm}`, rule, { cost: 4 })).toMatchObject({ allowed: true, remaining: 6 });
      expect(await service.consume(`cost-${algorithm}`, rule, { cost: 4 })).toMatchObject({ allowed: true, remaining: 2 });
      expect(await service.consume(`cost-${algorithm}`, rule, { cost: 4 })).toMatchObject({ allowed: false });
      expect(await service.peek(`cost-${algorithm}`, rule, { cost: 2 })).toMatchObject({ allowed: true, remaining: 2 });
      expect(await service.consume(`cost-${algorithm}`, rule, { cost: 2 })).toMatchObject({ allowed: true, remaining: 0 });
      await service.reset(`cost-${algorithm}`, rule);
      expect(await service.peek(`cost-${algorithm}`, rule)).toMatchObject({ allowed: true, remaining: 10 });
    }
  });

  it('reports exact remaining and reset at the largest limit and window, and a sliding log takes a cost of thousands of units', async () => {
    const service = await limiter(t, t.prefix());
    const MONTH = 30 * 24 * HOUR;
    const PER_UNIT = MONTH / 1_000_000; // token bucket: one unit comes back every 2592 ms
    // [lowest, highest] reset after the first hit (1 unit) and after the second (5000 more).
    const resets: Record<RateLimitAlgorithm, [[number, number], [number, number]]> = {
      'sliding-log': [
        [MONTH, MONTH],
        [MONTH - 10_000, MONTH + 5],
      ], // 5000 units logged at consecutive µs
      'sliding-window': [
        [MONTH, 2 * MONTH],
        [MONTH, 2 * MONTH],
      ], // two windows of counters
      'token-bucket': [
        [PER_UNIT, PER_UNIT],
        [5001 * PER_UNIT - 10_000, 5001 * PER_UNIT],
      ],
      'fixed-window': [
        [MONTH, MONTH],
        [MONTH - 10_000, MONTH],
      ],
    };
    for (const algorithm of ALGORITHMS) {
      const rule: RateLimitRule = { limit: 1_000_000, windowMs: MONTH, algorithm };
      const [[low1, high1], [low2, high2]] = resets[algorithm];
      const first = await service.consume(`big-${algorithm}`, rule);
      expect({ algorithm, ...first }).toMatchObject({ algorithm, allowed: true, limit: 1_000_000, remaining: 999_999, retryAfterMs: 0 });
      expect(first.rule).toEqual({ limit: 1_000_000, windowMs: MONTH, algorithm, name: 'default' });
      expect(first.resetMs).toBeGreaterThanOrEqual(low1);
      expect(first.resetMs).toBeLessThanOrEqual(high1);
      const second = await service.consume(`big-${algorithm}`, rule, { cost: 5000 });
      expect({ algorithm, ...second }).toMatchObject({ algorithm, allowed: true, remaining: 994_999, retryAfterMs: 0 });
      expect(second.degraded).toBeUndefined();
      expect(second.resetMs).toBeGreaterThanOrEqual(low2);
      expect(second.resetMs).toBeLessThanOrEqual(high2);
    }
    // Small figures decode as exactly: remaining 0 and a reset of one window.
    const tiny = await service.consume('tiny', { limit: 1, windowMs: 1, algorithm: 'fixed-window' });
    expect(tiny).toMatchObject({ allowed: true, remaining: 0, resetMs: 1 });
  });

  it('sliding log: compact members by rule (integer, 5 or 6 raw bytes), exact in each encoding', async () => {
    const prefix = t.prefix();
    const service = await limiter(t, prefix);
    const redis = t.client();
    // [windowMs, limit, member length in bytes (0: a decimal integer)]
    const cases: Array<[number, number, number]> = [
      [60_000, 5, 0], // listpack, span < 2^31 µs: the residue as an integer
      [HOUR, 5, 5], // span > 2^31 µs: a 64-bit integer would take 10 bytes, 5 raw bytes take 7
      [20 * 24 * HOUR, 5, 6], // span > 2^40 µs (over 12 days)
      [60_000, 200, 5], // skiplist: raw bytes whatever the window
    ];
    for (const [windowMs, limit, width] of cases) {
      const rule: RateLimitRule = { limit, windowMs, algorithm: 'sliding-log' };
      const id = `members-${windowMs}-${limit}`;
      const results = await Promise.all(Array.from({ length: limit + 3 }, () => service.consume(id, rule)));
      expect(results.filter((r) => r.allowed)).toHaveLength(limit);
      const members = await redis.zrangeBuffer(`${prefix}:rl:{${id}}:l:${windowMs}:${limit}`, '0', '-1');
      expect(members).toHaveLength(limit);
      for (const member of members) {
        if (width === 0) expect(member.toString()).toMatch(/^\d{1,10}$/);
        else expect(member.length).toBe(width);
      }
    }
  });

  it('sliding window: weighs the previous bucket, ignores older or future ones (the packed integer state)', async () => {
    const prefix = t.prefix();
    const service = await limiter(t, prefix);
    const redis = t.client();
    const limit = 1000;
    const rule: RateLimitRule = { limit, windowMs: HOUR, algorithm: 'sliding-window' };
    const W = HOUR * 1000; // µs
    const state = (idx: number, cur: number, prev: number): number => (((idx % 4) + 4) % 4) * 2 ** 42 + cur * 2 ** 21 + prev;
    // [bucket offset from now, cur, prev] and the hits the script must see in (this bucket, the previous one)
    const cases: Array<[number, number, number, number, number]> = [
      [0, 10, 500, 10, 500],
      [-1, 400, 77, 0, 400], // written in the previous bucket: its count is now the weighted one
      [-2, 400, 77, 0, 0], // two buckets old: expired by then, ignored
      [1, 400, 77, 0, 0], // a future bucket (the clock went back): ignored, as before
    ];
    for (const [offset, cur, prev, seenCur, seenPrev] of cases) {
      const key = `${prefix}:rl:{sw-${offset}}:s:${HOUR}:${limit}`;
      let [sec, usec] = await redis.time();
      if (W - ((Number(sec) * 1e6 + Number(usec)) % W) < 2e6) {
        // Within 2 s of the hour: let the bucket turn first (at most once an hour).
        await sleep(2_100);
        [sec, usec] = await redis.time();
      }
      const now = Number(sec) * 1e6 + Number(usec);
      const idx = Math.floor(now / W);
      await redis.set(key, String(state(idx + offset, cur, prev)), 'PX', HOUR * 2);
      const result = await service.consume(`sw-${offset}`, rule);
      // The weight of the previous bucket shrinks by ~1e-6 per ms: accept the estimate of now or 1 s later.
      const expected = (at: number): number => {
        const rest = W - (at - idx * W);
        return Math.floor((limit * W - seenPrev * rest - seenCur * W) / W) - 1;
      };
      expect([expected(now), expected(now + 1e6)]).toContain(result.remaining);
      const stored = Number(await redis.get(key));
      expect(stored).toBe(state(idx, seenCur + 1, seenPrev));
    }
  });

  it('a process-local cache answers a denied key until it may pass, without Redis', async () => {
    const service = await limiter(t, t.prefix());
    const rule: RateLimitRule = { limit: 1, windowMs: HOUR };
    await service.consume('cached', rule);
    const first = await service.consume('cached', rule);
    expect(first.allowed).toBe(false);
    // Another process resets the key in Redis: this process keeps denying from its cache.
    const other = await limiter(t, (service as unknown as { keys: { prefix: string } }).keys.prefix, { localCacheSize: 0 });
    await other.reset('cached', rule);
    expect((await service.consume('cached', rule)).allowed).toBe(false);
    expect((await other.consume('cached', rule)).allowed).toBe(true);
    // Its own reset clears its cache.
    await service.reset('cached', rule);
    expect((await service.consume('cached', rule)).allowed).toBe(true);

    // Two rules, denied by the second: resetting the second rule alone clears the local denial too.
    const burst: RateLimitRule = { limit: 100, windowMs: HOUR, name: 'burst' };
    const daily: RateLimitRule = { limit: 1, windowMs: 24 * HOUR, name: 'daily' };
    expect((await service.consume('two rules', [burst, daily])).allowed).toBe(true);
    expect((await service.consume('two rules', [burst, daily])).allowed).toBe(false);
    await service.reset('two rules', daily);
    expect((await service.consume('two rules', [burst, daily])).allowed).toBe(true);
  });

  it('identifiers with { } : * unicode or 10 kB never share a bucket', async () => {
    const service = await limiter(t, t.prefix());
    const long = 'x'.repeat(10_240);
    const ids = [
      'a',
      'a:b',
      'a%3Ab',
      'a}',
      '{a}',
      '{a',
      '}{',
      '*',
      'a*',
      ':',
      '::',
      '%',
      '#',
      '',
      'héllo',
      'hello',
      '日本語',
      '🔥',
      'a\nGET /x',
      long,
      `${long}y`,
      `y${long}`,
    ].filter((id) => id !== '');
    const rule: RateLimitRule = { limit: 1, windowMs: HOUR };
    const first = await Promise.all(ids.map((id) => service.consume(id, rule)));
    expect(first.map((r) => r.allowed)).toEqual(ids.map(() => true));
    const second = await Promise.all(ids.map((id) => service.consume(id, rule)));
    expect(second.map((r) => r.allowed)).toEqual(ids.map(() => false));
  });

  it('two instances whose clocks differ by 30 s enforce one shared limit exactly (time comes from Redis)', async () => {
    const prefix = t.prefix();
    const service = await limiter(t, prefix);
    const rule: RateLimitRule = { limit: 100, windowMs: 20_000 };
    const mine = await Promise.all(Array.from({ length: 60 }, () => service.consume('clock', rule)));
    expect(mine.filter((r) => r.allowed)).toHaveLength(60);
    // A second instance in another process, its Date.now() 30 s ahead. A limiter trusting client clocks
    // would see our hits as older than its window and admit 60 more.
    const child = await runTsChild(
      CLOCK_CHILD,
      [JSON.stringify({ ...t.connection(), keyPrefix: prefix }), 'clock', '60', JSON.stringify(rule)],
      25_000,
    );
    expect(child.stderr).toBe('');
    expect(JSON.parse(child.stdout.trim())).toEqual({ skewMs: 30_000, allowed: 40 });
    expect((await service.consume('clock', rule)).allowed).toBe(false);
  });

  it('rejects bad input with a typed error before touching Redis', async () => {
    const service = await limiter(t, t.prefix());
    const rule: RateLimitRule = { limit: 5, windowMs: 1000 };
    await expect(service.consume('', rule)).rejects.toThrow(RateLimitInputError);
    await expect(service.consume('k', rule, { cost: 0 })).rejects.toThrow(
      /cost must be an integer between 1 and the smallest limit \(5\), got 0/,
    );
    await expect(service.consume('k', rule, { cost: 6 })).rejects.toThrow(RateLimitInputError);
    await expect(service.consume('k', { limit: Number.NaN, windowMs: 1000 })).rejects.toThrow(/"limit" must be an integer/);
    await expect(service.consume('k', { limit: 5, windowMs: 0.5 })).rejects.toThrow(/"windowMs" must be an integer/);
    await expect(service.consume('k', { limit: 5, windowMs: 1000, algorithm: 'leaky' as RateLimitAlgorithm })).rejects.toThrow(
      /"algorithm" must be one of/,
    );
    await expect(service.consume('k', [rule, { ...rule }])).rejects.toThrow(/two rules are the same/);
    await expect(service.consume('k', [])).rejects.toThrow(/at least one rate-limit rule/);
    expect(await service.peek('k', rule)).toMatchObject({ remaining: 5 });
  });
});
