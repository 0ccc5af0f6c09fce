/**
 * Waiting for capacity: `consume(key, rules, { waitMs })` records a hit that does not fit now at the
 * earliest time it fits (after every hit already recorded: arrival order across instances) and
 * sleeps until then; on standalone and cluster. Admission times are read from Redis (the sliding
 * log's scores are Redis TIME), not from the test's clock.
 */
import { RateLimitInputError, RateLimiterService, RedisLuaModule, type RateLimitResult, type RateLimitRule } from 'nest-redis-lua';
import { describeTopologies, type TopologyContext } from '../harness/topologies';
import { DECIDED } from '../harness/decided';

const SECOND_US = 1_000_000;

async function limiters(t: TopologyContext, count: number, prefix = t.prefix()): Promise<RateLimiterService[]> {
  const services: RateLimiterService[] = [];
  for (let i = 0; i < count; i++) {
    const app = await t.app([
      RedisLuaModule.forRoot({
        ...t.connection(),
        keyPrefix: prefix,
        rateLimit: { localCacheSize: 0, ...DECIDED },
      }),
    ]);
    services.push(app.get(RateLimiterService));
  }
  return services;
}

/** The scores (Redis TIME, µs) of a sliding-log key's entries, oldest first. */
async function admissionTimes(t: TopologyContext, key: string): Promise<number[]> {
  const flat = await t.client().zrange(key, '0', '-1', 'WITHSCORES');
  return flat.filter((_, i) => i % 2 === 1).map(Number);
}

describeTopologies('rate limit: waiting for capacity', (t) => {
  it('15 waiting calls from 3 instances at 5 per second: all admitted in 2.0-3.0 s, never more than 5 in a second', async () => {
    const prefix = t.prefix();
    const services = await limiters(t, 3, prefix);
    const rule: RateLimitRule = { limit: 5, windowMs: 1_000 };
    const results = await Promise.all(
      Array.from({ length: 15 }, (_, i) => services[i % 3].consume('outbound', { ...rule }, { waitMs: 2_000 })),
    );
    expect(results.map((r) => r.allowed)).toEqual(results.map(() => true));
    // Five went through at once; ten waited, none longer than waitMs.
    expect(results.filter((r) => r.waitedMs === undefined)).toHaveLength(5);
    const waits = results.flatMap((r) => (r.waitedMs === undefined ? [] : [r.waitedMs]));
    expect(waits).toHaveLength(10);
    for (const wait of waits) {
      expect(wait).toBeGreaterThan(0);
      expect(wait).toBeLessThanOrEqual(2_000);
    }

    const times = await admissionTimes(t, `${prefix}:rl:{outbound}:l:1000:5`);
    expect(times).toHaveLength(15);
    const span = times[14] - times[0];
    expect(span).toBeGreaterThanOrEqual(2 * SECOND_US);
    expect(span).toBeLessThan(3 * SECOND_US);
    // Any 6 consecutive admissions span a second at least: no second holds more than 5.
    for (let i = 0; i + 5 < times.length; i++) expect(times[i + 5] - times[i]).toBeGreaterThanOrEqual(SECOND_US);
  });

  it('token bucket: waiters are admitted at the refill rate, in arrival order', async () => {
    const [a, b] = await limiters(t, 2);
    const rule: RateLimitRule = { limit: 4, windowMs: 1_000, algorithm: 'token-bucket' }; // one unit per 250 ms
    for (let i = 0; i < 4; i++) expect((await a.consume('tb', rule)).allowed).toBe(true);
    // Sent together from two instances: each is scheduled one interval after the one Redis ran before it.
    const waits = (
      await Promise.all([
        a.consume('tb', rule, { waitMs: 5_000 }),
        b.consume('tb', rule, { waitMs: 5_000 }),
        a.consume('tb', rule, { waitMs: 5_000 }),
      ])
    ).map((r) => {
      expect(r.allowed).toBe(true);
      return r.waitedMs ?? 0;
    });
    const [w1, w2, w3] = waits.sort((x, y) => x - y);
    expect(w1).toBeGreaterThan(0);
    expect(w1).toBeLessThanOrEqual(250);
    expect(w2).toBeGreaterThan(w1);
    expect(w2).toBeLessThanOrEqual(500);
    expect(w3).toBeGreaterThan(w2);
    expect(w3).toBeLessThanOrEqual(750);
    // The bucket is empty as of the last admission: a call that cannot wait that long is denied at once.
    const denied = await b.consume('tb', rule, { waitMs: 1 });
    expect(denied).toMatchObject({ allowed: false });
    expect(denied.waitedMs).toBeUndefined();
  });

  it('a wait that would be too long is denied at once, records nothing, and says how long it would take', async () => {
    const [service] = await limiters(t, 1);
    const rules: RateLimitRule[] = [
      { limit: 2, windowMs: 60_000 },
      { limit: 10, windowMs: 1_000, algorithm: 'token-bucket' },
    ];
    expect((await service.consume('slow', rules)).allowed).toBe(true);
    expect((await service.consume('slow', rules)).allowed).toBe(true);
    const denied: RateLimitResult = await service.consume('slow', rules, { waitMs: 1_000 });
    expect(denied.allowed).toBe(false);
    expect(denied.retryAfterMs).toBeGreaterThan(55_000);
    expect(denied.rule.windowMs).toBe(60_000);
    expect(await service.peek('slow', rules)).toMatchObject({ allowed: false, remaining: 0 });
    // Nothing was recorded for it: the token bucket still has its 8 units.
    expect(await service.peek('slow', { limit: 10, windowMs: 1_000, algorithm: 'token-bucket' })).toMatchObject({ remaining: 8 });
  });

  it('several rules: the hit waits for the slowest and is logged in every rule, with the keys expiring', async () => {
    const prefix = t.prefix();
    const [service] = await limiters(t, 1, prefix);
    const bucket: RateLimitRule = { limit: 1, windowMs: 300, algorithm: 'token-bucket' };
    const hourly: RateLimitRule = { limit: 10, windowMs: 3_600_000 };
    expect((await service.consume('multi', bucket)).allowed).toBe(true);
    // The hourly log is empty: only the bucket makes the hit wait, and the log gets it at its admission time.
    const waited = await service.consume('multi', [bucket, hourly], { waitMs: 1_000 });
    expect(waited).toMatchObject({ allowed: true, remaining: 0, rule: { algorithm: 'token-bucket' } });
    expect(waited.waitedMs).toBeGreaterThan(0);
    expect(waited.waitedMs).toBeLessThanOrEqual(300);
    const times = await admissionTimes(t, `${prefix}:rl:{multi}:l:3600000:10`);
    expect(times).toHaveLength(1);
    for (const master of await t.masters()) {
      for (const key of await master.keys(`${prefix}:*`)) expect(await master.pttl(key)).toBeGreaterThan(0);
    }
    expect(await service.peek('multi', hourly)).toMatchObject({ remaining: 9 });
  });

  it('a hit that fits now does not wait; waitMs 0 is a plain consume', async () => {
    const [service] = await limiters(t, 1);
    const rule: RateLimitRule = { limit: 1, windowMs: 60_000 };
    const admitted = await service.consume('now', rule, { waitMs: 5_000 });
    expect(admitted).toMatchObject({ allowed: true, remaining: 0 });
    expect(admitted.waitedMs).toBeUndefined();
    expect(await service.consume('now', rule, { waitMs: 0 })).toMatchObject({ allowed: false });
  });

  it('a blockMs block is not waited out', async () => {
    const [service] = await limiters(t, 1);
    const rule: RateLimitRule = { limit: 1, windowMs: 200, blockMs: 60_000 };
    expect((await service.consume('blocked', rule)).allowed).toBe(true);
    expect((await service.consume('blocked', rule)).allowed).toBe(false); // sets the block
    const denied = await service.consume('blocked', rule, { waitMs: 1_000 });
    expect(denied.allowed).toBe(false);
    expect(denied.retryAfterMs).toBeGreaterThan(50_000);
  });

  it('refuses waitMs where it cannot work, before any Redis call', async () => {
    const [service] = await limiters(t, 1);
    const rule: RateLimitRule = { limit: 1, windowMs: 1_000 };
    await expect(service.consume('x', { limit: 1, windowMs: 1_000, algorithm: 'fixed-window' }, { waitMs: 100 })).rejects.toEqual(
      new RateLimitInputError(
        'nest-redis-lua: RateLimiterService.consume: option "waitMs" needs sliding-log or token-bucket rules: rule "default" is fixed-window, whose counter cannot hold a hit of a later window',
      ),
    );
    await expect(
      service.consume('x', [rule, { limit: 5, windowMs: 60_000, algorithm: 'sliding-window' }], { waitMs: 100 }),
    ).rejects.toThrow('rule "rule2" is sliding-window');
    await expect(service.peek('x', rule, { waitMs: 100 })).rejects.toThrow('option "waitMs" is for consume and reserve');
    await expect(service.consume('x', rule, { waitMs: -1 })).rejects.toThrow(
      'option "waitMs" must be an integer between 0 and 3600000, got -1',
    );
    await expect(service.consume('x', rule, { waitMs: 3_600_001 })).rejects.toThrow(RateLimitInputError);
    expect(await service.peek('x', rule)).toMatchObject({ remaining: 1 });
  });
});
