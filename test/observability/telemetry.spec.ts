/**
 * Observability: with an OpenTelemetry meter provider registered (the in-memory exporter), every
 * decision shows up in the library's metrics with bounded attributes — rate-limit decisions per
 * route and rule, lock waits, holds and losses, cache outcomes, counter rejections, leaderboard
 * submits, script durations and reloads, calls Redis could not answer; `onEvent` receives the same
 * events; a throwing listener changes no answer; `tracing: true` makes one client span per script
 * call, child of the active span.
 */
import { Controller, Get, Logger } from '@nestjs/common';
import {
  BoundedCounterService,
  CacheAsideService,
  CacheWaitTimeoutError,
  LeaderboardService,
  LockService,
  LockTimeoutError,
  LuaScriptError,
  getScriptToken,
  type LuaScript,
  RateLimit,
  RateLimiterService,
  RateLimitMiddleware,
  RedisLuaModule,
  type RedisLuaEvent,
  type RedisLuaModuleOptions,
} from 'nest-redis-lua';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import { SpanKind } from '@opentelemetry/api';
import { DECIDED } from '../harness/decided';
import { describeTopologies, type TopologyContext } from '../harness/topologies';
import { RegisteredMetrics, RegisteredTracing } from './otel';

@Controller()
class LimitedController {
  @Get('limited/:id')
  @RateLimit({ limit: 3, windowMs: 60_000 })
  limited(): string {
    return 'ok';
  }

  @Get('early')
  @RateLimit({ limit: 1, windowMs: 60_000, earlyDeny: true })
  early(): string {
    return 'ok';
  }
}

describeTopologies('observability', (t) => {
  let otel: RegisteredMetrics;
  beforeEach(() => {
    otel = new RegisteredMetrics();
  });
  afterEach(async () => {
    await otel.stop();
  });

  const boot = async (options: Partial<RedisLuaModuleOptions> = {}, controllers: Array<new () => object> = []) =>
    t.app([RedisLuaModule.forRoot({ ...t.connection(), keyPrefix: t.prefix(), rateLimit: DECIDED, ...options })], { controllers });

  it('5 requests at limit 3: rate_limit.decisions allowed 3, denied 2 for the route and rule; onEvent sees the same', async () => {
    const events: RedisLuaEvent[] = [];
    const app = await boot({ onEvent: (event) => events.push(event) }, [LimitedController]);
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await request(app.getHttpServer()).get('/limited/42')).status);
    expect(statuses).toEqual([200, 200, 200, 429, 429]);

    const route = 'GET /limited/:id';
    expect(await otel.points('nest_redis_lua.rate_limit.decisions')).toEqual(
      expect.arrayContaining([
        { attributes: { outcome: 'allowed', rule: 'default', route }, value: 3 },
        { attributes: { outcome: 'denied', rule: 'default', route }, value: 2 },
      ]),
    );
    expect(await otel.total('nest_redis_lua.rate_limit.decisions')).toBe(5);
    const decisions = events.filter((e) => e.type === 'rate_limit.decision');
    expect(decisions.map((e) => [e.outcome, e.allowed, e.rule, e.route, e.cost])).toEqual([
      ...Array(3).fill(['allowed', true, 'default', route, 1]),
      ...Array(2).fill(['denied', false, 'default', route, 1]),
    ]);
    // The identifier reaches the listener, never a metric attribute.
    expect(decisions[0]).toMatchObject({ key: expect.stringMatching(/^127\.0\.0\.1\nGET \/limited\/:id$/) });
    const attributes = (await otel.points('nest_redis_lua.rate_limit.decisions')).flatMap((p) => Object.values(p.attributes));
    expect(attributes.join(' ')).not.toContain('127.0.0.1');
    // Every script call is timed: four (the fifth request is denied by this process's deny cache).
    expect(await otel.points('nest_redis_lua.script.duration')).toEqual([{ attributes: { script: 'rate-limit/sliding-log' }, value: 4 }]);
    expect(await otel.descriptor('nest_redis_lua.script.duration')).toMatchObject({ unit: 'ms' });
  });

  it('earlyDeny: a denial RateLimitMiddleware answers before routing is a decision of the route too', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [RedisLuaModule.forRoot({ ...t.connection(), keyPrefix: t.prefix(), rateLimit: DECIDED })],
      controllers: [LimitedController],
    }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    RateLimitMiddleware.install(app);
    await app.init();
    const statuses: number[] = [];
    try {
      for (let i = 0; i < 3; i++) statuses.push((await request(app.getHttpServer()).get('/early')).status);
    } finally {
      await app.close();
    }
    expect(statuses).toEqual([200, 429, 429]);
    expect(await otel.points('nest_redis_lua.rate_limit.decisions')).toEqual(
      expect.arrayContaining([
        { attributes: { outcome: 'allowed', rule: 'default', route: 'GET /early' }, value: 1 },
        { attributes: { outcome: 'denied', rule: 'default', route: 'GET /early' }, value: 2 },
      ]),
    );
  });

  it('the service: a call reports its `route` option; peeks and input errors are no decisions; a ban is "blocked"', async () => {
    const app = await boot({ rateLimit: { ...DECIDED, bans: true } });
    const limiter = app.get(RateLimiterService);
    const rule = { limit: 1, windowMs: 60_000, name: 'per-minute' };
    await limiter.consume('u1', rule, { route: 'partner-api' });
    await limiter.consume('u1', rule, { route: 'partner-api' });
    await limiter.peek('u1', rule);
    await expect(limiter.consume('', rule)).rejects.toThrow();
    await expect(limiter.consume('u1', rule, { route: '' })).rejects.toThrow('option "route" must be a non-empty string');
    await limiter.block('u2', 60_000);
    await limiter.consume('u2', rule);
    expect(await otel.points('nest_redis_lua.rate_limit.decisions')).toEqual(
      expect.arrayContaining([
        { attributes: { outcome: 'allowed', rule: 'per-minute', route: 'partner-api' }, value: 1 },
        { attributes: { outcome: 'denied', rule: 'per-minute', route: 'partner-api' }, value: 1 },
        { attributes: { outcome: 'blocked', rule: 'per-minute' }, value: 1 },
      ]),
    );
    expect(await otel.total('nest_redis_lua.rate_limit.decisions')).toBe(3);
  });

  it('a listener that throws changes no response, and is logged once', async () => {
    const errors = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    try {
      const app = await boot(
        {
          onEvent: () => {
            throw new Error('listener bug');
          },
        },
        [LimitedController],
      );
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) statuses.push((await request(app.getHttpServer()).get('/limited/7')).status);
      expect(statuses).toEqual([200, 200, 200, 429, 429]);
      // The metrics still count every decision.
      expect(await otel.total('nest_redis_lua.rate_limit.decisions', { outcome: 'allowed' })).toBe(3);
      const logged = errors.mock.calls.map((call) => String(call[0])).filter((line) => line.includes('onEvent'));
      expect(logged).toEqual([
        expect.stringMatching(/^nest-redis-lua: the onEvent listener threw on a "[a-z_.]+" event .*: listener bug$/),
      ]);
    } finally {
      errors.mockRestore();
    }
  });

  it('locks: a timeout, a hold released, a lock lost by expiry (acquire duration, held duration, lost by reason)', async () => {
    const events: RedisLuaEvent[] = [];
    const app = await boot({ onEvent: (event) => events.push(event) });
    const locks = app.get(LockService);
    const held = await locks.acquire('job:1');
    await expect(locks.acquire('job:1', { waitMs: 30 })).rejects.toThrow(LockTimeoutError);
    expect(await locks.tryAcquire('job:1')).toBeNull();
    await held.release();

    const lost = await locks.acquire('job:2', { ttlMs: 100, autoExtend: false });
    await new Promise<void>((resolve) => lost.signal.addEventListener('abort', () => resolve(), { once: true }));

    const acquire = 'nest_redis_lua.lock.acquire.duration';
    expect(await otel.total(acquire, { kind: 'lock', outcome: 'acquired' })).toBe(2);
    expect(await otel.total(acquire, { kind: 'lock', outcome: 'timeout' })).toBe(1);
    expect(await otel.total(acquire, { kind: 'lock', outcome: 'busy' })).toBe(1);
    expect(await otel.total('nest_redis_lua.lock.held.duration', { kind: 'lock', end: 'released' })).toBe(1);
    expect(await otel.total('nest_redis_lua.lock.held.duration', { kind: 'lock', end: 'lost' })).toBe(1);
    expect(await otel.points('nest_redis_lua.lock.lost')).toEqual([{ attributes: { kind: 'lock', reason: 'expired' }, value: 1 }]);
    // The timeout waited (about 30 ms): its duration says so.
    const timeout = events.find((e) => e.type === 'lock.acquire' && e.outcome === 'timeout');
    expect(timeout).toMatchObject({ resource: 'job:1', durationMs: expect.any(Number) });
    expect((timeout as { durationMs: number }).durationMs).toBeGreaterThanOrEqual(25);
    expect(events.filter((e) => e.type === 'lock.lost')).toEqual([
      { type: 'lock.lost', kind: 'lock', reason: 'expired', resource: 'job:2' },
    ]);
  });

  it('cache: miss-loaded, hit, waited (for another caller’s load), timeout, error', async () => {
    const events: RedisLuaEvent[] = [];
    const app = await boot({ onEvent: (event) => events.push(event) });
    const cache = app.get(CacheAsideService);
    expect(await cache.getOrLoad('p:1', 60_000, () => 'one')).toBe('one');
    expect(await cache.getOrLoad('p:1', 60_000, () => 'other')).toBe('one');
    await expect(cache.getOrLoad('p:2', 60_000, () => Promise.reject(new Error('db down')))).rejects.toThrow('db down');

    // A slow load: a second caller times out (waitMs 0), a third waits for it.
    let finish!: (value: string) => void;
    const slow = cache.getOrLoad('p:3', 60_000, () => new Promise<string>((resolve) => (finish = resolve)));
    const attempts = () => events.filter((e) => e.type === 'script.call' && e.script === 'cache/get-or-lock').length;
    await expect(cache.getOrLoad('p:3', 60_000, () => 'never', { waitMs: 0 })).rejects.toThrow(CacheWaitTimeoutError);
    const before = attempts();
    const waiting = cache.getOrLoad('p:3', 60_000, () => 'never', { waitMs: 60_000 });
    // The waiter's first attempt found the load running (the loader has not finished): now finish it.
    await until(() => attempts() > before);
    finish('three');
    expect(await Promise.all([slow, waiting])).toEqual(['three', 'three']);

    const counts = Object.fromEntries(
      (await otel.points('nest_redis_lua.cache.requests')).map((p) => [String(p.attributes.outcome), p.value]),
    );
    expect(counts).toEqual({ 'miss-loaded': 2, hit: 1, error: 1, timeout: 1, waited: 1 });
  });

  it('counters and leaderboards: rejections by operation, submissions by outcome', async () => {
    const app = await boot();
    const counters = app.get(BoundedCounterService);
    const boards = app.get(LeaderboardService);
    expect((await counters.increment('seats', 2, 2)).applied).toBe(true);
    expect((await counters.increment('seats', 1, 2)).applied).toBe(false);
    expect((await counters.decrement('seats', 5)).applied).toBe(false);
    expect((await counters.decrement('seats', 1)).applied).toBe(true);
    expect(await otel.points('nest_redis_lua.counter.rejections')).toEqual(
      expect.arrayContaining([
        { attributes: { operation: 'increment' }, value: 1 },
        { attributes: { operation: 'decrement' }, value: 1 },
      ]),
    );
    expect(await otel.points('nest_redis_lua.script.duration')).toEqual([{ attributes: { script: 'counter/change' }, value: 4 }]);

    await boards.submit('tetris', 'ada', 10);
    await boards.submit('tetris', 'ada', 5);
    await boards.submit('tetris', 'bob', 20);
    expect(await otel.points('nest_redis_lua.leaderboard.submissions')).toEqual(
      expect.arrayContaining([
        { attributes: { outcome: 'best' }, value: 2 },
        { attributes: { outcome: 'not-best' }, value: 1 },
      ]),
    );
  });

  it('a script that fails: script.duration with its error.type, the same in both script modes', async () => {
    const app = await t.app([
      RedisLuaModule.forRoot({ ...t.connection(), keyPrefix: t.prefix() }),
      RedisLuaModule.forFeature([{ name: 'refuse', lua: "return redis.error_reply('ERR not today')", numberOfKeys: 1 }]),
    ]);
    const refuse = app.get<LuaScript>(getScriptToken('refuse'));
    await expect(refuse.run(['k'])).rejects.toThrow(LuaScriptError);
    expect(await otel.points('nest_redis_lua.script.duration')).toEqual([
      { attributes: { script: 'refuse', 'error.type': 'ERR' }, value: 1 },
    ]);
  });

  it('a counter keeps at most 2000 series: 1999 attribute sets, the rest folded into the overflow set (the SDK default)', async () => {
    const app = await boot();
    const limiter = app.get(RateLimiterService);
    const rule = { limit: 1_000_000, windowMs: 60_000 };
    for (let batch = 0; batch < 2005; batch += 100) {
      await Promise.all(
        Array.from({ length: Math.min(100, 2005 - batch) }, (_, i) => limiter.consume('u', rule, { route: `r${batch + i}` })),
      );
    }
    const points = await otel.points('nest_redis_lua.rate_limit.decisions');
    expect(points).toHaveLength(2000);
    expect(points.find((p) => p.attributes['otel.metric.overflow'] === true)).toEqual({
      attributes: { 'otel.metric.overflow': true },
      value: 6,
    });
    expect(await otel.total('nest_redis_lua.rate_limit.decisions')).toBe(2005);
  });

  it('the boot line says where events go', async () => {
    const log = jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    try {
      await boot({ onEvent: () => undefined });
      const lines = log.mock.calls.map((call) => String(call[0])).filter((line) => line.startsWith('Connected to'));
      expect(lines).toEqual([expect.stringMatching(/ Lua scripts loaded.*; events to OpenTelemetry metrics and onEvent$/)]);
    } finally {
      log.mockRestore();
    }
  });

  it('metrics: false records nothing; onEvent alone still gets every event', async () => {
    const events: RedisLuaEvent[] = [];
    const app = await boot({ metrics: false, onEvent: (event) => events.push(event) });
    await app.get(BoundedCounterService).increment('n', 1, 0);
    expect(await otel.points('nest_redis_lua.counter.rejections')).toEqual([]);
    expect(await otel.points('nest_redis_lua.script.duration')).toEqual([]);
    expect(events.map((e) => e.type)).toEqual(['script.call', 'counter.rejection']);
  });

  tracingSuite(t);
});

/** Waits for `condition`, checking after every pass of the event loop (no fixed sleep). */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setImmediate(resolve));
}

function tracingSuite(t: TopologyContext): void {
  describe('tracing: true', () => {
    let tracing: RegisteredTracing;
    beforeEach(() => {
      tracing = new RegisteredTracing();
    });
    afterEach(async () => {
      await tracing.stop();
    });

    it('one client span per script call, child of the active span, with the database conventions', async () => {
      const app = await t.app([
        RedisLuaModule.forRoot({ ...t.connection(), keyPrefix: t.prefix(), rateLimit: DECIDED, tracing: true, metrics: false }),
      ]);
      const limiter = app.get(RateLimiterService);
      const parent = await tracing.inSpan('GET /orders', () => limiter.consume('u', { limit: 5, windowMs: 60_000 }));
      const functions = t.connection().scripts === 'functions';
      const spans = tracing.spans().filter((span) => span.name !== 'GET /orders');
      expect(spans).toHaveLength(1);
      const [span] = spans;
      const operation = functions ? 'FCALL' : 'EVALSHA';
      expect(span.name).toBe(`${operation} rate-limit/sliding-log`);
      expect(span.kind).toBe(SpanKind.CLIENT);
      expect(span.parentSpanContext?.spanId).toBe(parent);
      expect(span.attributes).toEqual({
        'db.system.name': 'redis',
        'db.operation.name': operation,
        'db.stored_procedure.name': 'rate-limit/sliding-log',
      });
      expect(span.status.code).not.toBe(2);
    });
  });
}
