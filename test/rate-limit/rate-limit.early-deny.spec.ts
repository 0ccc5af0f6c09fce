/**
 * RateLimitMiddleware + `@RateLimit({ earlyDeny: true })`: a client the route has denied gets the same
 * 429 (status, headers, body) from the middleware, before Nest routes the request (no guard, no
 * limiter call), until it may pass; other clients and other routes go on; a reset forgets it; a route
 * whose requests skip the middleware fails loudly; Express and Fastify.
 */
import { Controller, Get, type INestApplication, type MiddlewareConsumer, Module, type NestModule } from '@nestjs/common';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import { RateLimit, RateLimiterService, RateLimitMiddleware, RedisLuaModule, type RateLimitRouteOptions } from 'nest-redis-lua';
import request from 'supertest';
import { describeTopologies, type TopologyContext } from '../harness/topologies';

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

function appModule(t: TopologyContext, withMiddleware: boolean): new () => NestModule {
  const prefix = t.prefix();
  @Module({ imports: [RedisLuaModule.forRoot({ ...t.connection(), keyPrefix: prefix })], controllers: [EarlyController] })
  class AppModule implements NestModule {
    configure(consumer: MiddlewareConsumer): void {
      if (withMiddleware) consumer.apply(RateLimitMiddleware).forRoutes('*');
    }
  }
  return AppModule;
}

async function start(t: TopologyContext, adapter: 'express' | 'fastify', withMiddleware = true): Promise<INestApplication> {
  const moduleRef = await Test.createTestingModule({ imports: [appModule(t, withMiddleware)] }).compile();
  const app =
    adapter === 'fastify'
      ? moduleRef.createNestApplication(new FastifyAdapter(), { logger: false })
      : moduleRef.createNestApplication({ logger: false });
  await app.init();
  if (adapter === 'fastify') await (app.getHttpAdapter().getInstance() as { ready(): Promise<void> }).ready();
  return app;
}

describeTopologies('RateLimitMiddleware (earlyDeny)', (t) => {
  it.each(['express', 'fastify'] as const)(
    '%s: a denied client is answered 429 before routing, the same answer, no limiter call',
    async (adapter) => {
      const app = await start(t, adapter);
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
        for (const header of ['ratelimit-policy', 'retry-after', 'content-type'])
          expect(early.headers[header]).toBe(denied.headers[header]);
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

  it('an earlyDeny route whose requests did not pass the middleware fails with an error naming it', async () => {
    const app = await start(t, 'express', false);
    try {
      const res = await request(app.getHttpServer()).get('/early').set('x-user', 'carol');
      expect(res.status).toBe(500);
      expect((await request(app.getHttpServer()).get('/late').set('x-user', 'carol')).status).toBe(200);
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
