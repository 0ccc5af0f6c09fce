/**
 * Every feature's replies under each wire protocol the installed ioredis speaks: RESP2, and with
 * ioredis 6 also RESP3 (its default) in both of its reply mappings (`legacy`, where RESP3-only types
 * keep their RESP2 shapes, and `resp3`, where maps arrive as objects and doubles as numbers). Lua
 * `false`/`nil`, nested tables and integer-vs-string replies must decode to the same results.
 */
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { version as ioredisVersion } from 'ioredis/package.json';
import {
  BoundedCounterService,
  CacheAsideService,
  LeaderboardService,
  LockService,
  LockTimeoutError,
  RateLimiterService,
  RedisLuaHealthIndicator,
  RedisLuaModule,
  getScriptToken,
  type LuaScript,
} from 'nest-redis-lua';
import { harnessAddresses } from '../harness/harness-env';
import { describeTopologies } from '../harness/topologies';
import { DECIDED } from '../harness/decided';

interface ProtocolVariant {
  readonly name: string;
  readonly options: RedisOptions;
  /** What CLIENT INFO reports as `resp=` for a connection opened with `options`. */
  readonly resp: 2 | 3;
}

const IOREDIS_MAJOR = Number(ioredisVersion.split('.')[0]);
/** ioredis 5 speaks only RESP2 (it has no `protocol` option); ioredis 6 speaks both and defaults to RESP3. */
const VARIANTS: readonly ProtocolVariant[] =
  IOREDIS_MAJOR >= 6
    ? [
        { name: 'RESP2', options: { protocol: 2 } as RedisOptions, resp: 2 },
        { name: 'RESP3 (legacy reply mapping)', options: { protocol: 3 } as RedisOptions, resp: 3 },
        { name: 'RESP3 (replyMapping resp3)', options: { protocol: 3, replyMapping: 'resp3' } as RedisOptions, resp: 3 },
      ]
    : [{ name: 'RESP2', options: {}, resp: 2 }];

/** A script returning the Lua values whose conversion differs most between protocols. */
const SHAPES = {
  name: 'resp-shapes',
  lua: "if ARGV[1] == 'false' then return false end\nif ARGV[1] == 'nil' then return nil end\nreturn {1, false, 'two', {3, 'four'}, 2.9, redis.call('EXISTS', KEYS[1])}",
  numberOfKeys: 1,
};

describe.each(VARIANTS)('script replies over $name', (variant) => {
  describeTopologies('every feature', (t) => {
    const clients: Array<Redis | Cluster> = [];
    afterAll(() => clients.forEach((c) => c.disconnect()));

    /** The application's own client with this protocol, handed to the module. */
    const boot = async () => {
      const addresses = harnessAddresses();
      const client =
        t.topology === 'standalone'
          ? new Redis({ ...addresses.standalone, ...variant.options })
          : new Cluster(addresses.cluster, { redisOptions: variant.options });
      clients.push(client);
      const app = await t.app([
        RedisLuaModule.forRoot({ client, keyPrefix: t.prefix(), rateLimit: DECIDED }),
        RedisLuaModule.forFeature([SHAPES]),
      ]);
      return { app, client };
    };

    it('the connection speaks the protocol under test', async () => {
      const { client } = await boot();
      const node = client instanceof Cluster ? client.nodes('master')[0] : client;
      expect(String(await node.client('INFO'))).toContain(`resp=${variant.resp}`);
    });

    it('Lua false, nil, nested tables and numbers decode alike', async () => {
      const { app } = await boot();
      const shapes = app.get<LuaScript>(getScriptToken(SHAPES.name));
      expect(await shapes.run(['{k}'], ['false'])).toBeNull();
      expect(await shapes.run(['{k}'], ['nil'])).toBeNull();
      expect(await shapes.run(['{k}'], ['table'])).toEqual([1, null, 'two', [3, 'four'], 2, 0]);
    });

    it('rate limits: single and several rules, allowed and denied, peek', async () => {
      const { app } = await boot();
      const limiter = app.get(RateLimiterService);
      for (const algorithm of ['sliding-log', 'sliding-window', 'token-bucket', 'fixed-window'] as const) {
        const rule = { limit: 2, windowMs: 60_000, algorithm };
        const results = [];
        for (let i = 0; i < 3; i++) results.push(await limiter.consume(`u-${algorithm}`, rule));
        expect(results.map((r) => [r.allowed, r.remaining, r.limit])).toEqual([
          [true, 1, 2],
          [true, 0, 2],
          [false, 0, 2],
        ]);
        expect(results[2].retryAfterMs).toBeGreaterThan(0);
        expect(Number.isInteger(results[2].resetMs)).toBe(true);
        expect((await limiter.peek(`u-${algorithm}`, rule)).remaining).toBe(0);
      }
      const rules = [
        { limit: 3, windowMs: 60_000, name: 'minute' },
        { limit: 1, windowMs: 60_000, name: 'burst', algorithm: 'token-bucket' as const },
      ];
      const first = await limiter.consume('multi', rules);
      const second = await limiter.consume('multi', rules);
      expect([first.allowed, first.rule.name, second.allowed, second.rule.name]).toEqual([true, 'burst', false, 'burst']);
    });

    it('locks: acquire, contention with the holder TTL, wake-up on release, extend, release', async () => {
      const { app } = await boot();
      const locks = app.get(LockService);
      const lock = await locks.acquire('r', { ttlMs: 10_000 });
      expect(Number.isSafeInteger(lock.fence)).toBe(true);
      expect(await locks.tryAcquire('r')).toBeNull();
      const refused = await locks.acquire('r', { waitMs: 0 }).catch((err: unknown) => err);
      expect(refused).toBeInstanceOf(LockTimeoutError);
      expect((refused as LockTimeoutError).retryAfterMs).toBeGreaterThan(0);
      const waiting = locks.acquire('r', { waitMs: 10_000 });
      await lock.extend(20_000);
      expect(await lock.release()).toBe(true);
      const next = await waiting;
      expect(next.fence).toBeGreaterThan(lock.fence);
      expect(await locks.extend('r', next.token, 5_000)).toBe(true);
      expect(await locks.release('r', 'not-the-token')).toBe(false);
      expect(await next.release()).toBe(true);
    });

    it('leaderboards: ranks, a member trimmed off (nil rank and score), reads', async () => {
      const { app } = await boot();
      const boards = app.get(LeaderboardService);
      expect(await boards.submit('b', 'a', 10.5, { maxEntries: 2 })).toEqual({
        rank: 1,
        score: 10.5,
        personalBest: true,
        previousBest: null,
      });
      expect(await boards.submit('b', 'b', 20, { maxEntries: 2 })).toEqual({ rank: 1, score: 20, personalBest: true, previousBest: null });
      expect(await boards.submit('b', 'c', 1, { maxEntries: 2 })).toEqual({
        rank: null,
        score: null,
        personalBest: false,
        previousBest: null,
      });
      expect(await boards.submit('b', 'a', 5, { maxEntries: 2 })).toEqual({
        rank: 2,
        score: 10.5,
        personalBest: false,
        previousBest: 10.5,
      });
      expect(await boards.rank('b', 'c')).toBeNull();
      expect(await boards.score('b', 'a')).toBe(10.5);
      expect(await boards.top('b', 10)).toEqual([
        { member: 'b', score: 20, rank: 1 },
        { member: 'a', score: 10.5, rank: 2 },
      ]);
      expect((await boards.around('b', 'a', 1)).map((e) => e.member)).toEqual(['b', 'a']);
      expect((await boards.history('b', 'a')).map((h) => h.score)).toEqual([5, 10.5]);
      expect(await boards.count('b')).toBe(2);
    });

    it('bounded counters and cache-aside', async () => {
      const { app } = await boot();
      const counters = app.get(BoundedCounterService);
      expect(await counters.increment('c', 2, 3)).toEqual({ applied: true, value: 2 });
      expect(await counters.increment('c', 2, 3)).toEqual({ applied: false, value: 2 });
      expect(await counters.decrement('c', 2)).toEqual({ applied: true, value: 0 });
      expect(await counters.get('missing')).toBe(0);
      const cache = app.get(CacheAsideService);
      let loads = 0;
      const load = () => cache.getOrLoad('item', 60_000, () => ({ loads: ++loads, price: 1.25 }));
      expect(await Promise.all([load(), load(), load()])).toEqual([1, 1, 1].map(() => ({ loads: 1, price: 1.25 })));
      expect(await load()).toEqual({ loads: 1, price: 1.25 });
      expect(await cache.invalidate('item')).toBe(true);
    });

    it('the health indicator', async () => {
      const { app } = await boot();
      const health = await app.get(RedisLuaHealthIndicator).isHealthy('redis');
      expect(health.redis).toMatchObject({ status: 'up', nodes: t.topology === 'cluster' ? 3 : 1, scriptsReloaded: 0 });
    });
  });
});
