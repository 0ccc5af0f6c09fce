import { Controller, Get, Module, UseGuards, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import {
  RateLimit,
  RateLimitGuard,
  RateLimiterService,
  RateLimitUnavailableError,
  RedisLuaModule,
  type RateLimitFailMode,
  type RateLimitUnavailableEvent,
  type RedisLuaModuleOptions,
  RedisLuaUnavailableError,
  LuaScriptEngine,
} from 'nest-redis-lua';
import { join } from 'node:path';
import { runTsChild } from '../harness/child-process';
import { harnessAddresses } from '../harness/harness-env';
import { RedisClusterHarness, RedisServer } from '../harness/redis-server';
import { boundFor, timeCall } from '../harness/timing';

const TIMEOUT_MS = 250;
const CLOSE_CHILD = join(__dirname, 'fixtures', 'close-after-cluster-pause.ts');

@Controller('limited')
@UseGuards(RateLimitGuard)
class LimitedController {
  @Get()
  @RateLimit({ limit: 100, windowMs: 60_000 })
  get(): { ok: true } {
    return { ok: true };
  }
}

@Controller('closed')
@UseGuards(RateLimitGuard)
class ClosedController {
  @Get()
  @RateLimit({ limit: 100, windowMs: 60_000, failMode: 'closed' })
  get(): { ok: true } {
    return { ok: true };
  }
}

@Controller('five')
@UseGuards(RateLimitGuard)
class FiveController {
  @Get()
  @RateLimit({ limit: 5, windowMs: 60_000 })
  get(): { ok: true } {
    return { ok: true };
  }
}

async function app(
  connection: Pick<RedisLuaModuleOptions, 'url' | 'cluster'>,
  failMode: RateLimitFailMode,
  events: RateLimitUnavailableEvent[],
  localLimitFactor?: number,
): Promise<INestApplication> {
  const moduleRef = await Test.createTestingModule({
    imports: [
      RedisLuaModule.forRoot({
        ...connection,
        keyPrefix: `fail${process.pid}`,
        rateLimit: { failMode, timeoutMs: TIMEOUT_MS, onUnavailable: (e) => events.push(e), localLimitFactor },
      }),
    ],
    controllers: [LimitedController, ClosedController, FiveController],
  }).compile();
  const nest = moduleRef.createNestApplication({ logger: false });
  await nest.init();
  return nest;
}

/** Time one request: its status, how long it took and how late this process's timers ran meanwhile. */
async function timed(server: unknown, path: string): Promise<{ status: number; ms: number; lateMs: number }> {
  const call = await timeCall(() => request(server as Parameters<typeof request>[0]).get(path));
  if (call.error) throw call.error;
  return { status: call.value!.status, ms: call.ms, lateMs: call.lateMs };
}

describe('rate limit fail modes', () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => {
    unhandled.push(reason);
  };
  beforeAll(() => process.on('unhandledRejection', onUnhandled));
  afterAll(() => process.off('unhandledRejection', onUnhandled));

  describe('standalone', () => {
    let server: RedisServer;
    beforeEach(async () => {
      server = await RedisServer.start();
    });
    afterEach(async () => {
      await server.destroy();
    });

    it.each<[RateLimitFailMode, number]>([
      ['open', 200],
      ['closed', 503],
    ])(
      'Redis stopped, failMode %s: answers %i within timeoutMs (plus the measured timer lateness), reports it, no unhandled rejection',
      async (failMode, status) => {
        const events: RateLimitUnavailableEvent[] = [];
        const nest = await app({ url: server.url }, failMode, events);
        const http = nest.getHttpServer();
        expect((await timed(http, '/limited')).status).toBe(200);
        await server.stop();
        for (let i = 0; i < 3; i++) {
          const res = await timed(http, '/limited');
          expect(res.status).toBe(status);
          expect(res.ms).toBeLessThan(boundFor(TIMEOUT_MS, res.lateMs));
        }
        // A route's own failMode wins over the module's.
        expect((await timed(http, '/closed')).status).toBe(503);
        expect(events.length).toBeGreaterThanOrEqual(4);
        expect(events[0]).toMatchObject({ failMode });
        await nest.close();
        expect(unhandled).toEqual([]);
      },
    );

    it.each<[RateLimitFailMode, number]>([
      ['open', 200],
      ['closed', 503],
    ])(
      'Redis paused (connected, silent), failMode %s: answers %i after timeoutMs, and the late reply is harmless',
      async (failMode, status) => {
        const events: RateLimitUnavailableEvent[] = [];
        const nest = await app({ url: server.url }, failMode, events);
        const http = nest.getHttpServer();
        expect((await timed(http, '/limited')).status).toBe(200);
        server.pause();
        const res = await timed(http, '/limited');
        server.resume();
        expect(res.status).toBe(status);
        expect(res.ms).toBeGreaterThanOrEqual(TIMEOUT_MS - 5);
        expect(res.ms).toBeLessThan(boundFor(TIMEOUT_MS, res.lateMs));
        expect(events[0].error).toBeInstanceOf(RedisLuaUnavailableError);
        expect(events[0].error).toMatchObject({
          reason: 'timeout',
          message: expect.stringMatching(/no reply within 250 ms \(option "timeoutMs"\)/),
        });
        // Redis answers again: the limiter works again.
        expect((await timed(http, '/limited')).status).toBe(200);
        await nest.close();
        expect(unhandled).toEqual([]);
      },
    );

    it('the service throws RateLimitUnavailableError in closed mode and returns a degraded admission in open mode', async () => {
      const events: RateLimitUnavailableEvent[] = [];
      const nest = await app({ url: server.url }, 'open', events);
      const limiter = nest.get(RateLimiterService);
      await server.stop();
      const rule = { limit: 1, windowMs: 1000 };
      expect(await limiter.consume('k', rule)).toMatchObject({ allowed: true, degraded: true });
      await expect(limiter.consume('k', rule, { failMode: 'closed' })).rejects.toThrow(RateLimitUnavailableError);
      await nest.close();
      expect(unhandled).toEqual([]);
    });

    it("Redis stopped, failMode 'local' (limit 5): 10 requests → 5 admitted (degraded), 5 × 429 with Retry-After; Redis decides again once back", async () => {
      const events: RateLimitUnavailableEvent[] = [];
      const nest = await app({ url: server.url }, 'local', events);
      const http = nest.getHttpServer();
      const limiter = nest.get(RateLimiterService);
      expect((await timed(http, '/five')).status).toBe(200);
      await server.stop();
      const statuses: number[] = [];
      for (let i = 0; i < 10; i++) {
        const res = await request(http).get('/five');
        statuses.push(res.status);
        if (res.status === 429) expect(Number(res.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      }
      expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429, 429, 429, 429]);
      // The service: the same in memory, marked degraded either way; the factor scales a limit down.
      const rule = { limit: 3, windowMs: 60_000, algorithm: 'token-bucket' as const };
      const results = [];
      for (let i = 0; i < 5; i++) results.push(await limiter.consume('svc', rule));
      expect(results.map((r) => [r.allowed, r.degraded])).toEqual([
        [true, true],
        [true, true],
        [true, true],
        [false, true],
        [false, true],
      ]);
      expect(results[3].retryAfterMs).toBeGreaterThan(0);
      expect(events.every((e) => e.failMode === 'local')).toBe(true);
      // A reservation decided without Redis settles without it (nothing was taken in Redis).
      const reservation = await limiter.reserve('reserved', { limit: 3, windowMs: 60_000 }, { cost: 2 });
      expect(reservation.result).toMatchObject({ allowed: true, degraded: true });
      await expect(reservation.commit(1)).resolves.toBeUndefined();
      await server.restart();
      const client = nest.get(LuaScriptEngine).client;
      if (client.status !== 'ready') await new Promise((resolve) => client.once('ready', resolve));
      const back = await limiter.consume('svc', rule);
      expect(back).toMatchObject({ allowed: true, remaining: 2 });
      expect(back.degraded).toBeUndefined();
      await nest.close();

      const halved = await app({ url: server.url }, 'local', [], 0.5);
      await server.stop();
      const admitted = [];
      for (let i = 0; i < 5; i++)
        admitted.push((await halved.get(RateLimiterService).consume('half', { limit: 5, windowMs: 60_000 })).allowed);
      expect(admitted).toEqual([true, true, false, false, false]);
      await halved.close();
      expect(unhandled).toEqual([]);
    });
  });

  describe('cluster', () => {
    let cluster: RedisClusterHarness;
    beforeAll(async () => {
      cluster = await RedisClusterHarness.start({ masters: 3 });
    }, 60_000);
    afterAll(async () => {
      await cluster.destroy();
    });

    it.each<[RateLimitFailMode, number]>([
      ['open', 200],
      ['closed', 503],
    ])('every master paused, failMode %s: answers %i within timeoutMs (plus the measured timer lateness)', async (failMode, status) => {
      const events: RateLimitUnavailableEvent[] = [];
      const nest = await app({ cluster: { nodes: cluster.nodes } }, failMode, events);
      const http = nest.getHttpServer();
      expect((await timed(http, '/limited')).status).toBe(200);
      cluster.servers.forEach((s) => s.pause());
      let res: Awaited<ReturnType<typeof timed>>;
      try {
        res = await timed(http, '/limited');
      } finally {
        cluster.servers.forEach((s) => s.resume());
      }
      expect(res.status).toBe(status);
      expect(res.ms).toBeLessThan(boundFor(TIMEOUT_MS, res.lateMs));
      expect(events).toHaveLength(1);
      expect((await timed(http, '/limited')).status).toBe(200);
      await nest.close();
      expect(unhandled).toEqual([]);
    });

    it('a process whose app closed after its cluster was unresponsive exits by itself (no slot-refresh timer left)', async () => {
      const pids = cluster.servers.map((server) => server.pid!);
      const child = await runTsChild(CLOSE_CHILD, [JSON.stringify(cluster.nodes), JSON.stringify(pids)], 60_000);
      cluster.servers.forEach((server) => server.resume());
      expect(child.stderr).toBe('');
      expect(child).toMatchObject({ timedOut: false, code: 0 });
      expect(JSON.parse(child.stdout.trim().split('\n').pop()!)).toEqual({ closed: true, degraded: 8 });
    });

    it("every master paused, failMode 'local' (limit 5): 10 requests → 5 × 200, 5 × 429", async () => {
      const nest = await app({ cluster: { nodes: cluster.nodes } }, 'local', []);
      const http = nest.getHttpServer();
      // Connected to every master first (Redis counts this one; the local limiter starts empty).
      expect((await timed(http, '/five')).status).toBe(200);
      cluster.servers.forEach((s) => s.pause());
      const statuses: number[] = [];
      try {
        for (let i = 0; i < 10; i++) statuses.push((await request(http).get('/five')).status);
      } finally {
        cluster.servers.forEach((s) => s.resume());
      }
      expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429, 429, 429, 429]);
      await nest.close();
      expect(unhandled).toEqual([]);
    });
  });
});

describe('rate limit options are checked early', () => {
  it('@RateLimit throws at decoration, naming the option and Controller.method', () => {
    const decorate = (options: Parameters<typeof RateLimit>[0]): void => {
      class UsersController {
        find(): void {}
      }
      const descriptor = Object.getOwnPropertyDescriptor(UsersController.prototype, 'find')!;
      RateLimit(options)(UsersController.prototype, 'find', descriptor);
    };
    expect(() => decorate({ limit: 0, windowMs: 1000 })).toThrow(
      /@RateLimit on UsersController\.find: option "limit" must be an integer between 1 and 1000000, got 0/,
    );
    expect(() => decorate({ limit: -5, windowMs: 1000 })).toThrow(/option "limit"/);
    expect(() => decorate({ limit: 1.5, windowMs: 1000 })).toThrow(/option "limit".*got 1\.5/);
    expect(() => decorate({ limit: 10, windowMs: 0.5 })).toThrow(/UsersController\.find: option "windowMs"/);
    expect(() => decorate({ limit: 10, windowMs: 1000, algorithm: 'leaky-bucket' as never })).toThrow(
      /UsersController\.find: option "algorithm" must be one of sliding-log, sliding-window, token-bucket, fixed-window, got "leaky-bucket"/,
    );
    expect(() =>
      decorate([
        { limit: 10, windowMs: 1000 },
        { limit: 10, windowMs: -1 },
      ]),
    ).toThrow(/option "rules\[1\]\.windowMs"/);
    expect(() => decorate({ limit: 10, windowMs: 1000, failMode: 'sometimes' as never })).toThrow(/option "failMode"/);
    expect(() => decorate({ limit: 10, windowMs: 1000, cost: 0 })).toThrow(/option "cost"/);
    expect(() => {
      @RateLimit({ limit: 10, windowMs: 1000, algorithm: 'nope' as never })
      class AdminController {}
      return AdminController;
    }).toThrow(/@RateLimit on AdminController: option "algorithm"/);
  });

  it('forRoot({ rateLimit }) fails at boot, naming the option', async () => {
    @Module({ imports: [RedisLuaModule.forRoot({ url: 'redis://127.0.0.1:1', lazyConnect: true, rateLimit: { limit: 10, windowMs: 0 } })] })
    class BadModule {}
    await expect(NestFactory.createApplicationContext(BadModule, { logger: false, abortOnError: false })).rejects.toThrow(
      /option "rateLimit\.windowMs" must be an integer/,
    );
    @Module({ imports: [RedisLuaModule.forRoot({ url: 'redis://127.0.0.1:1', lazyConnect: true, rateLimit: { localLimitFactor: 2 } })] })
    class BadFactorModule {}
    await expect(NestFactory.createApplicationContext(BadFactorModule, { logger: false, abortOnError: false })).rejects.toThrow(
      /option "rateLimit\.localLimitFactor" must be a number in \(0, 1\], got 2/,
    );
  });
  it('a route whose rule has no limit or window and no forRoot default fails boot, naming the route', async () => {
    @Controller('orphan')
    class OrphanController {
      @Get()
      @UseGuards(RateLimitGuard)
      @RateLimit({ windowMs: 1000 })
      list(): string {
        return 'ok';
      }
    }
    const { standalone } = harnessAddresses();
    @Module({
      imports: [RedisLuaModule.forRoot({ url: `redis://${standalone.host}:${standalone.port}` })],
      controllers: [OrphanController],
    })
    class OrphanModule {}
    const orphan = await NestFactory.create(OrphanModule, { logger: false, abortOnError: false });
    await expect(orphan.init()).rejects.toThrow(
      /@RateLimit on OrphanController\.list: option "limit" is missing and forRoot\(\{ rateLimit \}\) has no default/,
    );

    @Module({
      imports: [RedisLuaModule.forRoot({ url: `redis://${standalone.host}:${standalone.port}`, rateLimit: { limit: 5 } })],
      controllers: [OrphanController],
    })
    class DefaultedModule {}
    const app = await NestFactory.create(DefaultedModule, { logger: false, abortOnError: false });
    await app.init();
    await app.close();
  });
  it('checks names at decoration, and duplicate rules or a cost above the limit at boot, naming the route', async () => {
    const decorate = (options: Parameters<typeof RateLimit>[0]): void => {
      class ReportsController {
        export(): void {}
      }
      RateLimit(options)(ReportsController.prototype, 'export', Object.getOwnPropertyDescriptor(ReportsController.prototype, 'export')!);
    };
    expect(() => decorate({ limit: 5, windowMs: 1000, name: 'bad name!' })).toThrow(
      /ReportsController\.export: option "name" must be 1-64 characters/,
    );

    const { standalone } = harnessAddresses();
    const bootWith = async (options: Parameters<typeof RateLimit>[0]): Promise<Error | undefined> => {
      @Controller('reports')
      class ReportsController {
        @Get()
        @UseGuards(RateLimitGuard)
        @RateLimit(options)
        list(): string {
          return 'ok';
        }
      }
      @Module({
        imports: [RedisLuaModule.forRoot({ url: `redis://${standalone.host}:${standalone.port}` })],
        controllers: [ReportsController],
      })
      class ReportsModule {}
      const app = await NestFactory.create(ReportsModule, { logger: false, abortOnError: false });
      try {
        await app.init();
        return undefined;
      } catch (err) {
        return err as Error;
      } finally {
        await app.close();
      }
    };
    expect(
      (
        await bootWith([
          { limit: 5, windowMs: 1000 },
          { limit: 5, windowMs: 1000 },
        ])
      )?.message,
    ).toMatch(/@RateLimit on ReportsController\.list: two rules are the same/);
    expect((await bootWith({ limit: 5, windowMs: 1000, cost: 10 }))?.message).toMatch(
      /@RateLimit on ReportsController\.list: option "cost" \(10\) is above the smallest limit \(5\)/,
    );
    expect((await bootWith({ limit: 5000, windowMs: 1, algorithm: 'token-bucket' }))?.message).toMatch(
      /option "limit" of a token-bucket rule can be at most 1000 per ms/,
    );
    expect(await bootWith({ limit: 5, windowMs: 1000, cost: 5 })).toBeUndefined();
  });
});
