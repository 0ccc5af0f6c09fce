/**
 * Fault injection on a private standalone Redis, every feature under load at once: kill -9 and
 * restart, SCRIPT FLUSH, CLIENT KILL, a frozen server (SIGSTOP), Redis unreachable at boot.
 */
import type { INestApplication } from '@nestjs/common';
import { BoundedCounterService, LuaScriptEngine, RateLimiterService, RedisLuaModule } from 'nest-redis-lua';
import { Test } from '@nestjs/testing';
import { RedisServer, freePort } from '../harness/redis-server';
import { recordScenario } from '../harness/scenario-summary';
import {
  FEATURES,
  WAITING_FEATURES,
  featureApp,
  featureOps,
  newTally,
  USER_SCRIPT,
  type Feature,
  type FeatureTally,
} from './fixtures/features';
import { recordAll, underLoad } from './fixtures/scenario';
import { boundFor, timeCall } from '../harness/timing';

jest.setTimeout(60_000);

/** A call in flight or queued when the connection closes: ioredis's rejection (maxRetriesPerRequest: 0), as the library reports it. */
const CONNECTION_LOST =
  /^(RedisLuaUnavailableError: )?nest-redis-lua: .*Redis is unavailable: Reached the max retries per request limit \(which is 0\)/;
/** Every error a call may see while Redis is down: the library's own, each one clear, none a hang, never a raw ioredis error. */
const OUTAGE_ERRORS =
  /^(RedisLuaUnavailableError: nest-redis-lua: .*Redis is unavailable: (Reached the max retries per request limit|no reply within option "commandTimeout")|LockTimeoutError|SemaphoreTimeoutError|CacheWaitTimeoutError)/;

describe('faults on a standalone Redis', () => {
  let server: RedisServer;
  let app: INestApplication;
  let tally: FeatureTally;
  const COMMAND_TIMEOUT_MS = 1_500;

  beforeAll(async () => {
    server = await RedisServer.start();
    app = await featureApp({ redis: { host: server.host, port: server.port, commandTimeout: COMMAND_TIMEOUT_MS }, keyPrefix: 'rel' });
  });
  afterAll(async () => {
    await app?.close();
    await server?.destroy();
  });
  beforeEach(() => {
    tally = newTally();
  });

  const client = () => app.get(LuaScriptEngine).client;
  const closed = () => new Promise<void>((resolve) => client().once('close', () => resolve()));

  it('kill -9 and restart on the same port mid-load: clear errors or fail-open, then everything works again with scripts reloaded', async () => {
    await server.cli('script', 'flush');
    const results = await underLoad(featureOps(app, tally, { keys: 4 }), async (progress) => {
      await progress.successes(20);
      const down = closed();
      await server.stop(); // SIGKILL
      await down;
      await progress.operations(100); // calls made while Redis is gone
      await server.restart();
      await progress.successes(20); // every feature works again, same app
    });
    for (const [feature, r] of results) {
      expect(r.unhandledRejections).toBe(0);
      for (const message of r.errors.keys()) expect(message).toMatch(OUTAGE_ERRORS);
      // No call hangs: the longest is bounded by commandTimeout (lock and cache: plus their waitMs).
      const bound = boundFor(COMMAND_TIMEOUT_MS + (WAITING_FEATURES.includes(feature) ? 2_000 : 0), r.maxLateMs, 1_000);
      expect(r.maxLatencyMs).toBeLessThan(bound);
    }
    // The rate limiter never fails: failMode open decides while Redis is down.
    expect(results.get('rate limit')!.failures).toBe(0);
    expect(tally.rateDegraded).toBeGreaterThan(0);
    expect(tally.maxHolders).toBe(1);
    expect(tally.maxPermitHolders).toBeLessThanOrEqual(2);
    // The restarted server had an empty script cache: NOSCRIPT → EVAL reloaded them transparently.
    const engine = app.get(LuaScriptEngine);
    const used = [
      'rate-limit/sliding-log',
      'lock/acquire',
      'lock/read-acquire',
      'lock/fair-acquire',
      'semaphore/acquire',
      'idempotency/claim',
      'leaderboard/submit',
      'counter/change',
      'cache/get-or-lock',
      USER_SCRIPT.name,
    ];
    const shas = used.map((name) => engine.get(name)!.sha);
    expect(server.cli('script', 'exists', ...shas).split('\n')).toEqual(used.map(() => '1'));
    recordAll('redis kill -9 + restart', 'standalone', results, (f) => (f === 'rate limit' ? `${tally.rateDegraded} failed open` : ''));
  });

  it('SCRIPT FLUSH mid-load: no call fails', async () => {
    const results = await underLoad(featureOps(app, tally, { keys: 4 }), async (progress) => {
      await progress.successes(20);
      server.cli('script', 'flush');
      await progress.successes(20);
      server.cli('script', 'flush');
      await progress.successes(20);
    });
    for (const [, r] of results) {
      expect(r.failures).toBe(0);
      expect(r.unhandledRejections).toBe(0);
    }
    expect(tally.rateDegraded).toBe(0);
    recordAll('SCRIPT FLUSH x2', 'standalone', results);
  });

  it('CLIENT KILL TYPE normal mid-load: only calls in flight fail (never run twice), the rest succeed', async () => {
    const counterKey = 'ctr-0';
    const counters = app.get(BoundedCounterService);
    const limiter = app.get(RateLimiterService);
    await counters.delete(counterKey);
    const rule = { limit: 1_000_000, windowMs: 600_000 };
    await limiter.reset('rl-0', rule);
    const scriptKey = `rel:user:{bump-0}`;
    server.cli('del', scriptKey);
    const concurrency = 4;
    const results = await underLoad(
      featureOps(app, tally, { keys: 1, lockTtlMs: 1_000 }),
      async (progress) => {
        await progress.successes(20);
        const down = closed();
        server.cli('client', 'kill', 'type', 'normal');
        await down;
        await progress.successes(20);
      },
      { concurrency },
    );
    for (const [feature, r] of results) {
      expect(r.unhandledRejections).toBe(0);
      // At most the calls in flight on the killed connection fail, with the connection-lost error.
      const lost = [...r.errors].filter(([m]) => CONNECTION_LOST.test(m)).reduce((n, [, c]) => n + c, 0);
      expect({ feature, lost }).toEqual({ feature, lost: Math.min(lost, concurrency) });
      // Nothing else fails: a lock or cache loader lock whose acquire or release reply was lost is
      // handed back by token once the connection is back, so nobody waits for its TTL meanwhile.
      const others = [...r.errors.keys()].filter((m) => !CONNECTION_LOST.test(m));
      expect({ feature, others }).toEqual({ feature, others: [] });
    }
    // The rate limiter decides lost calls by failMode: no failure, and no hit counted twice.
    expect(results.get('rate limit')!.failures).toBe(0);
    const stored = rule.limit - (await limiter.peek('rl-0', rule)).remaining;
    expect(stored).toBeGreaterThanOrEqual(tally.rateAllowed);
    expect(stored).toBeLessThanOrEqual(tally.rateAllowed + tally.rateDegraded);
    // A failed call may or may not have run, but no call ran twice.
    const counterValue = await counters.get(counterKey);
    expect(counterValue).toBeGreaterThanOrEqual(tally.counterApplied);
    expect(counterValue).toBeLessThanOrEqual(tally.counterApplied + results.get('counter')!.failures);
    const scriptValue = Number(server.cli('get', scriptKey));
    expect(scriptValue).toBeGreaterThanOrEqual(tally.scriptRuns);
    expect(scriptValue).toBeLessThanOrEqual(tally.scriptRuns + results.get('user script')!.failures);
    recordAll('CLIENT KILL TYPE normal', 'standalone', results, (f, r) =>
      f === 'counter'
        ? `value ${counterValue} = ${tally.counterApplied} acknowledged + ${counterValue - tally.counterApplied} of ${r.failures} failed`
        : f === 'rate limit'
          ? `stored ${stored}, admitted ${tally.rateAllowed} + ${tally.rateDegraded} failed open`
          : '',
    );
  });
});

describe('a frozen Redis (SIGSTOP) on a standalone server', () => {
  let server: RedisServer;
  const apps: INestApplication[] = [];
  afterAll(async () => {
    server?.resume();
    await Promise.all(apps.map((a) => a.close()));
    await server?.destroy();
  });

  it('the limiter decides within timeoutMs, calls end at commandTimeout, locks never have two holders', async () => {
    server = await RedisServer.start();
    const RATE_TIMEOUT_MS = 200;
    const COMMAND_TIMEOUT_MS = 500;
    const connection = { redis: { host: server.host, port: server.port, commandTimeout: COMMAND_TIMEOUT_MS }, keyPrefix: 'frozen' };
    apps.push(await featureApp(connection), await featureApp(connection));
    const tally = newTally(); // shared: lock holders are counted across both apps
    const [a, b] = apps.map((app) => featureOps(app, tally, { keys: 2, rateTimeoutMs: RATE_TIMEOUT_MS, lockTtlMs: 1_000 }));
    // Two apps (two connections) contend for the same lock resources.
    const ops = { ...a, lock: (i: number) => (i % 2 ? a.lock(i) : b.lock(i)) };
    let pausedFor = 0;
    const results = await underLoad(ops, async (progress) => {
      await progress.successes(20);
      const started = performance.now();
      server.pause();
      // Frozen long enough for every kind of call to meet its timeout.
      await progress.when(() => tally.rateDegraded >= 20 && (progress.failed.get('counter') ?? 0) >= 1, 'calls decided during the freeze');
      server.resume();
      pausedFor = performance.now() - started;
      await progress.successes(20);
    });
    const rate = results.get('rate limit')!;
    expect(rate.failures).toBe(0);
    expect(rate.maxLatencyMs).toBeLessThan(boundFor(RATE_TIMEOUT_MS, rate.maxLateMs, 300));
    expect(tally.maxHolders).toBe(1);
    expect(tally.maxPermitHolders).toBeLessThanOrEqual(2);
    expect(tally.fenceOrderViolations).toBe(0);
    for (const [feature, r] of results) {
      expect(r.unhandledRejections).toBe(0);
      for (const message of r.errors.keys()) expect(message).toMatch(OUTAGE_ERRORS);
      const bound = boundFor(
        COMMAND_TIMEOUT_MS + (WAITING_FEATURES.includes(feature) ? 2_000 + COMMAND_TIMEOUT_MS : 0),
        r.maxLateMs,
        1_000,
      );
      expect(r.maxLatencyMs).toBeLessThan(bound);
    }
    recordAll('SIGSTOP (frozen Redis)', 'standalone', results, (f) =>
      f === 'rate limit'
        ? `frozen ${(pausedFor / 1000).toFixed(1)} s; ${tally.rateDegraded} decided open within ${RATE_TIMEOUT_MS} ms`
        : f === 'lock'
          ? 'max 1 holder, 2 apps'
          : '',
    );
  });
});

describe('Redis unreachable at boot', () => {
  it('boot fails with a clear error within bootTimeoutMs and the process is left clean', async () => {
    const port = await freePort();
    const moduleRef = await Test.createTestingModule({
      imports: [RedisLuaModule.forRoot({ url: `redis://127.0.0.1:${port}`, bootTimeoutMs: 800 })],
    }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    const boot = await timeCall(() => app.init());
    expect(boot.error).toBeInstanceOf(Error);
    expect((boot.error as Error).message).toMatch(
      /cannot load Lua scripts into Redis at redis:\/\/127\.0\.0\.1:\d+: no answer within 800 ms \(option "bootTimeoutMs"\).*lazyConnect: true/,
    );
    const took = boot.ms;
    expect(took).toBeLessThan(boundFor(800, boot.lateMs, 1_500));
    await app.close();
    recordScenario({
      scenario: 'Redis unreachable at boot',
      topology: 'standalone',
      operations: 1,
      failures: 1,
      unhandledRejections: 0,
      maxLatencyMs: took,
      note: 'clear error after bootTimeoutMs 800',
    });
  });

  it('boot waits for a Redis that comes up within bootTimeoutMs', async () => {
    const port = await freePort();
    const moduleRef = await Test.createTestingModule({
      imports: [
        RedisLuaModule.forRoot({ url: `redis://127.0.0.1:${port}`, bootTimeoutMs: 10_000 }),
        RedisLuaModule.forFeature([USER_SCRIPT]),
      ],
    }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    const booting = app.init();
    const engine = app.get(LuaScriptEngine);
    // Start the server once the client has failed to connect at least once.
    await new Promise<void>((resolve) => engine.client.once('reconnecting', () => resolve()));
    const server = await RedisServer.start({}, port);
    try {
      await booting;
      expect(server.cli('script', 'exists', engine.get(USER_SCRIPT.name)!.sha)).toBe('1');
    } finally {
      await app.close();
      await server.destroy();
    }
  });

  it('lazyConnect: boot succeeds without Redis, calls fail clearly, then work once Redis is up', async () => {
    const port = await freePort();
    const moduleRef = await Test.createTestingModule({
      imports: [
        RedisLuaModule.forRoot({
          url: `redis://127.0.0.1:${port}`,
          lazyConnect: true,
          keyPrefix: 'lazy',
          rateLimit: { failMode: 'closed' },
        }),
        RedisLuaModule.forFeature([USER_SCRIPT]),
      ],
    }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    await app.init();
    let server: RedisServer | undefined;
    try {
      const counters = app.get(BoundedCounterService);
      const limiter = app.get(RateLimiterService);
      const calls = await timeCall(async () => {
        await expect(counters.increment('c', 1, 10)).rejects.toThrow(CONNECTION_LOST);
        await expect(limiter.consume('k', { limit: 5, windowMs: 1000 })).rejects.toThrow(/Redis is unavailable|unavailable/i);
      });
      if (calls.error) throw calls.error;
      const failedWithin = calls.ms;
      // Fails fast: no call waits for a connection that cannot come (nor for commandTimeout, 5 s).
      expect(failedWithin).toBeLessThan(boundFor(0, calls.lateMs, 2_000));
      server = await RedisServer.start({}, port);
      const engine = app.get(LuaScriptEngine);
      if (engine.client.status !== 'ready') await new Promise((resolve) => engine.client.once('ready', resolve));
      await expect(counters.increment('c', 1, 10)).resolves.toEqual({ applied: true, value: 1 });
      await expect(limiter.consume('k', { limit: 5, windowMs: 1000 })).resolves.toMatchObject({ allowed: true, remaining: 4 });
      recordScenario({
        scenario: 'lazyConnect, Redis down then up',
        topology: 'standalone',
        operations: 4,
        failures: 2,
        unhandledRejections: 0,
        maxLatencyMs: failedWithin,
        note: 'fails fast, then works without restart',
      });
    } finally {
      await app.close();
      await server?.destroy();
    }
  });
});

export type { Feature };
void FEATURES;
