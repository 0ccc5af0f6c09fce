import {
  BoundedCounterService,
  CacheAsideService,
  LeaderboardService,
  LockService,
  RateLimiterService,
  RedisLuaInputError,
  RedisLuaModule,
} from 'nest-redis-lua';
import { describeTopologies } from '../harness/topologies';

describeTopologies('RedisLuaInputError', (t) => {
  it('is the one class every feature raises for bad input, naming the field, before any Redis call', async () => {
    const prefix = t.prefix();
    const app = await t.app([RedisLuaModule.forRoot({ ...t.connection(), keyPrefix: prefix })]);
    const cases: Array<[string, () => Promise<unknown>, string | undefined]> = [
      ['rate limit: empty key', () => app.get(RateLimiterService).consume('', { limit: 1, windowMs: 1000 }), undefined],
      ['lock: empty resource', () => app.get(LockService).tryAcquire(''), 'resource'],
      ['leaderboard: NaN score', () => app.get(LeaderboardService).submit('board', 'ann', Number.NaN), 'score'],
      ['counter: negative amount', () => app.get(BoundedCounterService).increment('stock', -1, 10), 'amount'],
      ['cache: zero TTL', () => app.get(CacheAsideService).getOrLoad('product', 0, () => 1), 'ttlMs'],
    ];
    for (const [name, call, field] of cases) {
      const err = await call().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect({ name, isInputError: err instanceof RedisLuaInputError, isTypeError: err instanceof TypeError }).toEqual({
        name,
        isInputError: true,
        isTypeError: true,
      });
      if (field) expect((err as RedisLuaInputError).field).toBe(field);
    }
    const masters = await t.masters();
    for (const master of masters) expect(await master.keys(`${prefix}:*`)).toEqual([]);
  });
});
