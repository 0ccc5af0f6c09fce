/**
 * Redis gone (kill -9 of a standalone server, every node of a cluster): every feature answers with
 * the library's own error within its bound, never a raw ioredis error or a 500 — services reject with
 * RedisLuaUnavailableError, @WithLock and a fail-closed @RateLimit answer 503 + Retry-After, and
 * RedisLuaExceptionFilter maps what handlers' own service calls throw (503, and 400 for bad input).
 */
import { Controller, Get, type INestApplication, Post } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import {
  BoundedCounterService,
  CacheAsideService,
  LeaderboardService,
  LockService,
  LuaScriptEngine,
  RateLimit,
  RedisLuaExceptionFilter,
  RedisLuaModule,
  RedisLuaUnavailableError,
  WithLock,
  type RedisLuaModuleOptions,
} from 'nest-redis-lua';
import request from 'supertest';
import { RedisClusterHarness, RedisServer } from '../harness/redis-server';
import { recordScenario } from '../harness/scenario-summary';
import { boundFor, timeCall } from '../harness/timing';

jest.setTimeout(60_000);

@Controller()
class OutageController {
  constructor(private readonly counters: BoundedCounterService) {}

  @Post('locked')
  @WithLock('job', { waitMs: 1_000 })
  locked(): string {
    return 'ran';
  }

  @Get('closed')
  @RateLimit({ limit: 5, windowMs: 60_000, failMode: 'closed' })
  closed(): string {
    return 'ran';
  }

  @Post('count')
  async count(): Promise<number> {
    return (await this.counters.increment('stock', 1, 100)).value;
  }

  @Post('bad')
  async bad(): Promise<number> {
    return (await this.counters.increment('stock', 1.5, 100)).value;
  }
}

async function outageApp(connection: RedisLuaModuleOptions): Promise<INestApplication> {
  const moduleRef = await Test.createTestingModule({
    imports: [RedisLuaModule.forRoot({ ...connection, keyPrefix: 'unavailable' })],
    controllers: [OutageController],
    providers: [{ provide: APP_FILTER, useClass: RedisLuaExceptionFilter }],
  }).compile();
  const app = moduleRef.createNestApplication({ logger: false });
  await app.init();
  return app;
}

/** What every public call with a Redis round trip must do while Redis is gone, and the HTTP answers. */
async function expectUnavailable(app: INestApplication, topology: string): Promise<void> {
  let slowest = 0;
  let calls503 = 0;
  // The contract: a call queued while the client reconnects fails at the next attempt (at most
  // 500 ms apart on the module's connections), never waits for waitMs or the whole outage.
  const calls: Array<[string, () => Promise<unknown>]> = [
    ['LeaderboardService.submit', () => app.get(LeaderboardService).submit('board', 'ada', 10)],
    ['BoundedCounterService.increment', () => app.get(BoundedCounterService).increment('stock', 1, 100)],
    ['BoundedCounterService.get', () => app.get(BoundedCounterService).get('stock')],
    ['LockService.acquire', () => app.get(LockService).acquire('resource', { waitMs: 1_000 })],
    ['CacheAsideService.getOrLoad', () => app.get(CacheAsideService).getOrLoad('item', 60_000, () => 'loaded')],
  ];
  for (const [name, call] of calls) {
    const timed = await timeCall(call);
    expect({ name, error: timed.error }).toEqual({ name, error: expect.any(RedisLuaUnavailableError) });
    expect((timed.error as RedisLuaUnavailableError).message).toMatch(/^nest-redis-lua: .*Redis is unavailable: /);
    expect({ name, late: timed.ms >= boundFor(500, timed.lateMs, 1_000) }).toEqual({ name, late: false });
    slowest = Math.max(slowest, timed.ms);
  }

  const http = app.getHttpServer();
  for (const path of ['/locked', '/count']) {
    const timed = await timeCall(() => request(http).post(path));
    const res = timed.value!;
    expect({ path, status: res.status, retryAfter: res.headers['retry-after'] }).toEqual({ path, status: 503, retryAfter: '1' });
    expect(res.body).toEqual({ statusCode: 503, error: 'Service Unavailable', message: expect.any(String), retryAfter: 1 });
    expect({ path, late: timed.ms >= boundFor(500, timed.lateMs, 1_000) }).toEqual({ path, late: false });
    slowest = Math.max(slowest, timed.ms);
    calls503 += 1;
  }
  const closed = await request(http).get('/closed');
  expect([closed.status, closed.headers['retry-after']]).toEqual([503, '1']);
  // Input errors are refused before Redis is asked: 400 naming the field, outage or not.
  const bad = await request(http).post('/bad');
  expect(bad.status).toBe(400);
  expect(bad.body).toMatchObject({ statusCode: 400, error: 'Bad Request', field: 'amount' });
  expect(bad.body.message).toMatch(/^nest-redis-lua: BoundedCounterService\.increment: amount must be/);
  recordScenario({
    scenario: 'Redis gone: every service, @WithLock, filter',
    topology,
    operations: 5 + calls503 + 2,
    failures: 5 + calls503 + 1,
    unhandledRejections: 0,
    maxLatencyMs: Math.round(slowest),
    note: '5 services RedisLuaUnavailableError, routes 503 + Retry-After',
  });
}

describe('Redis unavailable: typed errors and 503s from every feature', () => {
  it('standalone, kill -9, long into the outage (reconnection attempts at their longest spacing)', async () => {
    const server = await RedisServer.start();
    const app = await outageApp({ url: server.url });
    try {
      expect((await request(app.getHttpServer()).post('/locked')).status).toBe(201);
      const client = app.get(LuaScriptEngine).client;
      // Wait until ioredis spaces its attempts at the module's cap (500 ms; ioredis's own default
      // grows to 2 s, which a queued call would wait).
      const atCap = new Promise<void>((resolve) => {
        const onReconnecting = (delay: number): void => {
          if (delay < 500) return;
          client.off('reconnecting', onReconnecting);
          resolve();
        };
        client.on('reconnecting', onReconnecting);
      });
      await server.stop();
      await atCap;
      await expectUnavailable(app, 'standalone');
      // Redis back: the same app works again.
      await server.restart();
      await new Promise<void>((resolve) => client.once('ready', () => resolve()));
      expect((await request(app.getHttpServer()).post('/count')).status).toBe(201);
    } finally {
      await app.close();
      await server.destroy();
    }
  });

  it('cluster, every node killed', async () => {
    const cluster = await RedisClusterHarness.start({ masters: 3 });
    const app = await outageApp({ cluster: { nodes: cluster.nodes } });
    try {
      expect((await request(app.getHttpServer()).post('/locked')).status).toBe(201);
      await Promise.all(cluster.servers.map((s) => s.stop()));
      await expectUnavailable(app, 'cluster');
    } finally {
      await app.close();
      await cluster.destroy();
    }
  });
});
