/**
 * RateLimitMiddleware + `@RateLimit({ earlyDeny: true })`: a client the route has denied gets the same
 * 429 (status, headers, body) from the middleware, before Nest routes the request (no guard, no
 * limiter call), until it may pass; other clients and other routes go on; a reset forgets it; a route
 * whose requests skip the middleware fails loudly; Express and Fastify.
 */
import { Controller, Get, Logger, type INestApplication, type MiddlewareConsumer, Module, type NestModule } from '@nestjs/common';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import {
  RateLimit,
  RateLimiterService,
  RateLimitInputError,
  RateLimitMiddleware,
  RedisLuaModule,
  type RateLimitRouteOptions,
} from 'nest-redis-lua';
import request from 'supertest';
import { describeTopologies, type TopologyContext } from '../harness/topologies';
import { DECIDED } from '../harness/decided';

const userKey: RateLimitRouteOptions['key'] = (ctx) =>
  String(ctx.switchToHttp().getRequest<{ headers: Record<string, string | undefined> }>().headers['x-user'] ?? 'anonymous');

let handled = 0;

@Controller()
class EarlyController {
  @Get('early')
  @RateLimit({ limit: 2, windowMs: 60_000, key: userKey, earlyDeny: true })
  early(): string {
    handled += 1;
    return 'ok';
  }

  @Get('late')
  @RateLimit({ limit: 2, windowMs: 60_000, key: userKey })
  late(): string {
    return 'ok';
  }
}

/** How the test applies RateLimitMiddleware: in a module's configure, installed in main.ts style, or not at all. */
type Applied = 'consumer' | 'install' | 'install-after-init' | 'none';

function appModule(t: TopologyContext, withMiddleware: boolean): new () => NestModule {
  const prefix = t.prefix();
  @Module({
    imports: [RedisLuaModule.forRoot({ ...t.connection(), keyPrefix: prefix, rateLimit: DECIDED })],
    controllers: [EarlyController],
  })
  class AppModule implements NestModule {
    configure(consumer: MiddlewareConsumer): void {
      if (withMiddleware) consumer.apply(RateLimitMiddleware).forRoutes('*');
    }
  }
  return AppModule;
}

async function start(t: TopologyContext, adapter: 'express' | 'fastify', applied: Applied = 'consumer'): Promise<INestApplication> {
  const moduleRef = await Test.createTestingModule({ imports: [appModule(t, applied === 'consumer')] }).compile();
  const app =
    adapter === 'fastify'
      ? moduleRef.createNestApplication(new FastifyAdapter(), { logger: false })
      : moduleRef.createNestApplication({ logger: false });
  if (applied === 'install') RateLimitMiddleware.install(app);
  await app.init();
  if (applied === 'install-after-init') RateLimitMiddleware.install(app);
  if (adapter === 'fastify') await (app.getHttpAdapter().getInstance() as { ready(): Promise<void> }).ready();
  return app;
}

describeTopologies('RateLimitMiddleware (earlyDeny)', (t) => {
  it.each([
    ['express', 'consumer'],
    ['fastify', 'consumer'],
    ['express', 'install'],
    ['fastify', 'install'],
  ] as const)(
    '%s, applied by %s: a denied client is answered 429 before routing, the same answer, no limiter call',
    async (adapter, applied) => {
      const app = await start(t, adapter, applied);
      try {
        const http = app.getHttpServer();
        const limiter = app.get(RateLimiterService);
        const get = (path: string, user: string) => request(http).get(path).set('x-user', user);
        handled = 0;
        expect([(await get('/early', 'alice')).status, (await get('/early', 'alice')).status]).toEqual([200, 200]);
        const denied = await get('/early', 'alice');
        expect(denied.status).toBe(429);

        const consume = jest.spyOn(limiter, 'consume');
        const early = await get('/early?page=2', 'alice');
        expect(early.status).toBe(429);
        expect(consume).not.toHaveBeenCalled();
        expect(early.body).toEqual({ ...denied.body, retryAfterMs: expect.any(Number) });
        expect(early.body.retryAfterMs).toBeLessThanOrEqual(denied.body.retryAfterMs);
        for (const header of ['ratelimit-policy', 'content-type']) expect(early.headers[header]).toBe(denied.headers[header]);
        // Counted down from the guard's answer (it may cross a whole second in between).
        expect(Number(early.headers['retry-after'])).toBe(Math.max(1, Math.ceil(early.body.retryAfterMs / 1000)));
        expect(early.headers['ratelimit']).toMatch(/^"default";r=0;t=\d+$/);

        // Another client, and a route without earlyDeny, go through the guard as before.
        expect((await get('/early', 'bob')).status).toBe(200);
        expect((await get('/late', 'alice')).status).toBe(200);
        expect(consume).toHaveBeenCalledTimes(2);
        expect(handled).toBe(3);

        // A reset forgets the early denial too.
        await limiter.reset('alice\nGET /early', { limit: 2, windowMs: 60_000 });
        expect((await get('/early', 'alice')).status).toBe(200);
        consume.mockRestore();
      } finally {
        await app.close();
      }
    },
  );

  it.each(['none', 'install-after-init'] as const)(
    'an earlyDeny route whose requests did not pass the middleware before the guard (%s) fails with an error naming it',
    async (applied) => {
      const app = await start(t, 'express', applied);
      const errors = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
      try {
        const res = await request(app.getHttpServer()).get('/early').set('x-user', 'carol');
        expect(res.status).toBe(500);
        expect(errors.mock.calls.flat().join('\n')).toMatch(
          /@RateLimit on EarlyController\.early has option "earlyDeny" but RateLimitMiddleware did not run for this request before the guard/,
        );
        expect((await request(app.getHttpServer()).get('/late').set('x-user', 'carol')).status).toBe(200);
      } finally {
        errors.mockRestore();
        await app.close();
      }
    },
  );

  it('install refuses an HTTP adapter it cannot install on, naming it', async () => {
    const app = await start(t, 'express', 'none');
    try {
      const other = { get: app.get.bind(app), getHttpAdapter: () => ({ getType: () => 'h3' }) } as unknown as INestApplication;
      expect(() => RateLimitMiddleware.install(other)).toThrow(
        new RateLimitInputError('nest-redis-lua: RateLimitMiddleware.install: it supports the Express and Fastify adapters, not "h3"'),
      );
    } finally {
      await app.close();
    }
  });
});

describe('@RateLimit earlyDeny option', () => {
  const declare = (options: RateLimitRouteOptions) => {
    class Bad {
      handler(): void {}
    }
    RateLimit(options)(Bad.prototype, 'handler', Object.getOwnPropertyDescriptor(Bad.prototype, 'handler')!);
  };
  it('is checked at decoration time', () => {
    expect(() => declare({ limit: 1, windowMs: 1000, earlyDeny: 'yes' as unknown as boolean })).toThrow(
      /@RateLimit on Bad\.handler: option "earlyDeny" must be true or false, got "yes"/,
    );
    expect(() => declare({ limit: 1, windowMs: 1000, earlyDeny: true, cost: () => 2 })).toThrow(
      /@RateLimit on Bad\.handler: earlyDeny needs a constant cost/,
    );
  });
});
