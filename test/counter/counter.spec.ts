import type { INestApplication } from '@nestjs/common';
import { BoundedCounterService, CounterInputError, KeyBuilder, REDIS_LUA_KEYS, RedisLuaModule } from 'nest-redis-lua';
import { describeTopologies } from '../harness/topologies';

describeTopologies('BoundedCounterService', (t) => {
  let counters: BoundedCounterService;
  let keys: KeyBuilder;
  const prefix = (): string => t.prefix();

  const boot = (keyPrefix: string): Promise<INestApplication> => t.app([RedisLuaModule.forRoot({ ...t.connection(), keyPrefix })]);

  beforeEach(async () => {
    const app = await boot(prefix());
    counters = app.get(BoundedCounterService);
    keys = app.get<KeyBuilder>(REDIS_LUA_KEYS);
  });

  it('increments up to max and decrements down to min, refusing what would pass the bound', async () => {
    expect(await counters.increment('seats', 3, 10)).toEqual({ applied: true, value: 3 });
    expect(await counters.increment('seats', 8, 10)).toEqual({ applied: false, value: 3 });
    expect(await counters.increment('seats', 7, 10)).toEqual({ applied: true, value: 10 });
    expect(await counters.increment('seats', 1, 10)).toEqual({ applied: false, value: 10 });
    expect(await counters.decrement('seats', 11)).toEqual({ applied: false, value: 10 });
    expect(await counters.decrement('seats', 10)).toEqual({ applied: true, value: 0 });
    expect(await counters.decrement('seats', 1)).toEqual({ applied: false, value: 0 });
    expect(await counters.decrement('seats', 5, -5)).toEqual({ applied: true, value: -5 });
    expect(await counters.get('seats')).toBe(-5);
    expect(await counters.get('never')).toBe(0);

    await counters.set('seats', 42);
    expect(await counters.get('seats')).toBe(42);
    expect(await counters.increment('seats', 1, 40)).toEqual({ applied: false, value: 42 });
    expect(await counters.delete('seats')).toBe(true);
    expect(await counters.get('seats')).toBe(0);
    // Large safe integers stay exact.
    await counters.set('big', Number.MAX_SAFE_INTEGER - 1);
    expect(await counters.increment('big', 1, Number.MAX_SAFE_INTEGER)).toEqual({ applied: true, value: Number.MAX_SAFE_INTEGER });
    expect(await counters.increment('big', 1, Number.MAX_SAFE_INTEGER)).toEqual({ applied: false, value: Number.MAX_SAFE_INTEGER });
  });

  it('ttlMs: set when a change creates the counter, kept by later changes; set() replaces it', async () => {
    const redis = t.client();
    const key = keys.key('counter', ['quota']);
    await counters.increment('quota', 1, 100, { ttlMs: 60_000 });
    const first = await redis.pttl(key);
    expect(first).toBeGreaterThan(0);
    expect(first).toBeLessThanOrEqual(60_000);
    await counters.increment('quota', 1, 100, { ttlMs: 120_000 });
    expect(await redis.pttl(key)).toBeLessThanOrEqual(60_000);
    await counters.decrement('quota', 1);
    expect(await redis.pttl(key)).toBeGreaterThan(0);
    await counters.set('quota', 5, { ttlMs: 30_000 });
    expect(await redis.pttl(key)).toBeLessThanOrEqual(30_000);
    await counters.set('quota', 5);
    expect(await redis.pttl(key)).toBe(-1);
    await counters.increment('plain', 1, 5);
    expect(await redis.pttl(keys.key('counter', ['plain']))).toBe(-1);
  });

  it('500 concurrent increment(key, 1, 300) over two instances: exactly 300 applied', async () => {
    const shared = prefix();
    const [one, two] = await Promise.all([boot(shared), boot(shared)]);
    const services = [one.get(BoundedCounterService), two.get(BoundedCounterService)];
    const results = await Promise.all(Array.from({ length: 500 }, (_, i) => services[i % 2].increment('tickets', 1, 300)));
    expect(results.filter((r) => r.applied)).toHaveLength(300);
    expect(new Set(results.filter((r) => r.applied).map((r) => r.value)).size).toBe(300);
    expect(results.filter((r) => !r.applied).every((r) => r.value === 300)).toBe(true);
    expect(await services[0].get('tickets')).toBe(300);

    const down = await Promise.all(Array.from({ length: 500 }, (_, i) => services[i % 2].decrement('tickets', 1, 100)));
    expect(down.filter((r) => r.applied)).toHaveLength(200);
    expect(await services[1].get('tickets')).toBe(100);
  });

  it('negative, zero, fractional or non-finite amounts and bounds: clear errors, nothing written', async () => {
    const cases: Array<[() => Promise<unknown>, string]> = [
      [() => counters.increment('bad', -1, 10), 'amount'],
      [() => counters.increment('bad', 0, 10), 'amount'],
      [() => counters.increment('bad', 1.5, 10), 'amount'],
      [() => counters.increment('bad', Number.NaN, 10), 'amount'],
      [() => counters.increment('bad', Infinity, 10), 'amount'],
      [() => counters.increment('bad', 2 ** 53, 2 ** 60), 'amount'],
      [() => counters.increment('bad', 1, Number.NaN), 'max'],
      [() => counters.increment('bad', 1, 10.5), 'max'],
      [() => counters.increment('bad', 1, 10, { ttlMs: 0 }), 'ttlMs'],
      [() => counters.decrement('bad', -3), 'amount'],
      [() => counters.decrement('bad', 1, -Infinity), 'min'],
      [() => counters.set('bad', 1.25), 'value'],
      [() => counters.set('bad', 1, { ttlMs: -5 }), 'ttlMs'],
      [() => counters.increment('', 1, 10), 'key'],
    ];
    for (const [call, field] of cases) {
      const err = await call().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(CounterInputError);
      expect((err as CounterInputError).field).toBe(field);
      expect((err as Error).message).toContain(field);
    }
    const redis = t.client();
    expect(await redis.exists(keys.key('counter', ['bad']))).toBe(0);
    expect(await redis.exists(keys.key('counter', ['']))).toBe(0);
  });
});
