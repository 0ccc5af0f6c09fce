/**
 * Every node of a private cluster down at once: calls fail fast with a clear error instead of waiting
 * in the Cluster client's offline queue for the whole outage and running long after the caller gave up.
 */
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { BoundedCounterService, LockService, RateLimiterService, RedisLuaModule, RedisLuaUnavailableError } from 'nest-redis-lua';
import { RedisClusterHarness } from '../harness/redis-server';
import { boundFor, timeCall } from '../harness/timing';

jest.setTimeout(60_000);

describe('cluster with every node down', () => {
  let cluster: RedisClusterHarness;
  let app: INestApplication;

  beforeAll(async () => {
    cluster = await RedisClusterHarness.start({ masters: 3 });
    const moduleRef = await Test.createTestingModule({
      imports: [RedisLuaModule.forRoot({ cluster: { nodes: cluster.nodes }, keyPrefix: 'outage' })],
    }).compile();
    app = moduleRef.createNestApplication({ logger: false });
    await app.init();
  }, 60_000);
  afterAll(async () => {
    await app?.close();
    await cluster?.destroy();
  });

  it('fails calls at once with a clear error and decides rate limits by failMode', async () => {
    const counter = app.get(BoundedCounterService);
    expect((await counter.increment('stock', 1, 100)).value).toBe(1);
    await Promise.all(cluster.servers.map((s) => s.stop()));

    // Each bound is the call's contract (fail at once; the lock: waitMs) plus the measured timer lateness.
    const increment = await timeCall(() => counter.increment('stock', 1, 100));
    expect(increment.error).toBeInstanceOf(RedisLuaUnavailableError);
    expect((increment.error as Error).message).toMatch(
      /Redis is unavailable: .*(Connection is closed|isn't ready|Too many Cluster redirections|max retries)/i,
    );
    expect(increment.ms).toBeLessThan(boundFor(0, increment.lateMs, 1_500));

    const lock = await timeCall(() => app.get(LockService).acquire('r', { waitMs: 1_000 }));
    expect(lock.error).toBeInstanceOf(RedisLuaUnavailableError);
    expect(lock.ms).toBeLessThan(boundFor(1_000, lock.lateMs, 1_500));

    const limited = await timeCall(() => app.get(RateLimiterService).consume('u', { limit: 5, windowMs: 1_000 }));
    expect(limited.value).toMatchObject({ allowed: true, degraded: true });
    // The client knows it is disconnected: the fail mode decides at once, well before timeoutMs (250 ms).
    expect(limited.ms).toBeLessThan(boundFor(0, limited.lateMs, 250));
  });
});
