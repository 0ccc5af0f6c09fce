/**
 * Observability of script recovery and outages, on private servers (their script caches and
 * libraries are flushed here): SCRIPT FLUSH then a call → `script.reloads` 1 (NOSCRIPT), FUNCTION
 * FLUSH in functions mode → 1 (missing function), on one server and on a 3-master cluster; a Redis
 * that cannot be reached → `connection.unavailable` and a `degraded` decision; the module's
 * telemetry options are validated at boot.
 */
import { Test } from '@nestjs/testing';
import { BoundedCounterService, RateLimiterService, RedisLuaModule, type RedisLuaEvent, type RedisLuaModuleOptions } from 'nest-redis-lua';
import { bootError } from '../harness/boot';
import { RedisClusterHarness, RedisServer } from '../harness/redis-server';
import { RegisteredMetrics } from './otel';

jest.setTimeout(60_000);

describe.each(['standalone', 'cluster'] as const)('script reloads [%s]', (topology) => {
  let servers: RedisServer[];
  let cluster: RedisClusterHarness | undefined;
  let connection: RedisLuaModuleOptions;
  let otel: RegisteredMetrics;

  beforeAll(async () => {
    if (topology === 'cluster') {
      cluster = await RedisClusterHarness.start({ masters: 3 });
      servers = cluster.servers;
      connection = { cluster: { nodes: cluster.nodes } };
    } else {
      servers = [await RedisServer.start()];
      connection = { url: servers[0].url };
    }
  }, 60_000);
  afterAll(async () => {
    await cluster?.destroy();
    if (!cluster) await Promise.all(servers.map((s) => s.destroy()));
  });
  beforeEach(() => {
    otel = new RegisteredMetrics();
  });
  afterEach(() => otel.stop());

  const boot = async (options: RedisLuaModuleOptions) => {
    const moduleRef = await Test.createTestingModule({
      imports: [RedisLuaModule.forRoot({ ...connection, keyPrefix: `rl${Math.random().toString(36).slice(2, 8)}`, ...options })],
    }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    await app.init();
    return app;
  };

  // EVAL mode reloads each script where it is missing; functions mode loads the whole library at once,
  // so the second script finds it there.
  it.each([
    ['eval', 'SCRIPT', 'NOSCRIPT', ['counter/change', 'rate-limit/sliding-log']],
    ['functions', 'FUNCTION', 'missing function', ['counter/change']],
  ] as const)(
    'scripts: %s, %s FLUSH on every server, then a counter and a limiter call: script.reloads %s of %j',
    async (scripts, flush, reason, reloaded) => {
      const events: RedisLuaEvent[] = [];
      const app = await boot({ scripts, onEvent: (event) => events.push(event), rateLimit: { failMode: 'closed', timeoutMs: 60_000 } });
      try {
        const counters = app.get(BoundedCounterService);
        const limiter = app.get(RateLimiterService);
        await counters.increment('c', 1, 10);
        await limiter.consume('u', { limit: 10, windowMs: 60_000 });
        expect(await otel.total('nest_redis_lua.script.reloads')).toBe(0);

        for (const server of servers) server.cli(flush.toLowerCase(), 'flush');
        expect((await counters.increment('c', 1, 10)).value).toBe(2);
        expect((await limiter.consume('u', { limit: 10, windowMs: 60_000 })).remaining).toBe(8);

        const points = await otel.points('nest_redis_lua.script.reloads');
        expect(points.sort((a, b) => String(a.attributes.script).localeCompare(String(b.attributes.script)))).toEqual(
          reloaded.map((script) => ({ attributes: { script, reason }, value: 1 })),
        );
        // The call that found the script missing is reported once, by its resend: no error outcome.
        const durations = await otel.points('nest_redis_lua.script.duration');
        expect(durations.filter((p) => 'error.type' in p.attributes)).toEqual([]);
        expect(await otel.total('nest_redis_lua.script.duration', { script: 'counter/change' })).toBe(2);
        expect(events.filter((e) => e.type === 'script.reload')).toEqual(
          reloaded.map((script) => ({ type: 'script.reload', script, reason })),
        );
      } finally {
        await app.close();
      }
    },
  );
});

describe('Redis unreachable', () => {
  let otel: RegisteredMetrics;
  beforeEach(() => {
    otel = new RegisteredMetrics();
  });
  afterEach(() => otel.stop());

  it('a consume that fails open is a degraded decision (not allowed), and connection.unavailable counts the call', async () => {
    const events: RedisLuaEvent[] = [];
    const moduleRef = await Test.createTestingModule({
      imports: [
        RedisLuaModule.forRoot({
          url: 'redis://127.0.0.1:1',
          lazyConnect: true,
          onEvent: (event) => events.push(event),
          rateLimit: { failMode: 'open' },
        }),
      ],
    }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    await app.init();
    try {
      const result = await app.get(RateLimiterService).consume('u', { limit: 1, windowMs: 60_000, name: 'minute' });
      expect(result).toMatchObject({ allowed: true, degraded: true });
      expect(await otel.points('nest_redis_lua.rate_limit.decisions')).toEqual([
        { attributes: { outcome: 'degraded', rule: 'minute' }, value: 1 },
      ]);
      expect(await otel.points('nest_redis_lua.connection.unavailable')).toEqual([
        { attributes: { reason: 'unreachable', operation: 'script "rate-limit/sliding-log"' }, value: 1 },
      ]);
      expect(events.find((e) => e.type === 'rate_limit.decision')).toMatchObject({ outcome: 'degraded', allowed: true, key: 'u' });
    } finally {
      await app.close();
    }
  });

  it.each([
    [{ onEvent: 'log' }, 'option "onEvent" must be a function (event) => void, got "log"'],
    [{ tracing: 'yes' }, 'option "tracing" must be true or false, got "yes"'],
    [{ metrics: 1 }, 'option "metrics" must be true or false, got 1'],
  ])('forRoot(%j) fails boot, naming the option', async (options, text) => {
    const err = await bootError({ url: 'redis://127.0.0.1:1', lazyConnect: true, ...(options as object) });
    expect(err?.message).toBe(`nest-redis-lua: ${text}`);
  });
});
