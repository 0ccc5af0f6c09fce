import { Controller, Get, Injectable, Module, UseGuards, type ExecutionContext, type INestApplication } from '@nestjs/common';
import { APP_GUARD, Reflector } from '@nestjs/core';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import { WsException } from '@nestjs/websockets';
import request from 'supertest';
import { RateLimit, RateLimitGuard, RateLimiterService, RedisLuaModule, SkipRateLimit, type RateLimitModuleOptions } from 'nest-redis-lua';
import { describeTopologies, type TopologyContext } from '../harness/topologies';
import { DECIDED } from '../harness/decided';

const MINUTE = 60_000;

const userHeader = (ctx: ExecutionContext): string =>
  String(ctx.switchToHttp().getRequest<{ headers: Record<string, string> }>().headers['x-user'] ?? 'anonymous');

@Controller('items')
@UseGuards(RateLimitGuard)
@RateLimit({ limit: 3, windowMs: MINUTE })
class ItemsController {
  @Get(':id')
  one(): { ok: true } {
    return { ok: true };
  }

  @Get()
  @RateLimit({ limit: 2, windowMs: MINUTE, name: 'list' })
  list(): { ok: true } {
    return { ok: true };
  }

  @Get('free/now')
  @SkipRateLimit()
  free(): { ok: true } {
    return { ok: true };
  }

  @Get('mine/all')
  @RateLimit({ limit: 1, windowMs: MINUTE, key: userHeader })
  mine(): { ok: true } {
    return { ok: true };
  }

  @Get('tiered/all')
  @RateLimit({ limit: (ctx) => (userHeader(ctx) === 'pro' ? 3 : 1), windowMs: MINUTE, key: userHeader })
  tiered(): { ok: true } {
    return { ok: true };
  }
}

@Controller('open')
class OpenController {
  @Get()
  get(): { ok: true } {
    return { ok: true };
  }

  @Get('skipped')
  @SkipRateLimit()
  skipped(): { ok: true } {
    return { ok: true };
  }

  @Get('own')
  @RateLimit({ limit: 5, windowMs: MINUTE, name: 'own' })
  own(): { ok: true } {
    return { ok: true };
  }
}

/** A guard registered twice (globally and on the controller) must count a request once. */
@Controller('twice')
@UseGuards(RateLimitGuard)
class TwiceController {
  @Get()
  get(): { ok: true } {
    return { ok: true };
  }
}

/** A subclass that identifies clients by a header instead of the IP. */
@Injectable()
class HeaderGuard extends RateLimitGuard {
  protected override getTracker(context: ExecutionContext): string {
    return userHeader(context);
  }
}

/** `@RateLimit` alone: no @UseGuards, no global guard. */
@Controller('alone')
class AloneController {
  @Get()
  @RateLimit({ limit: 3, windowMs: 3_000 })
  get(): { ok: true } {
    return { ok: true };
  }
}

/** The guard registered everywhere at once, a subclass included: a request still counts once. */
@Controller('everywhere')
@UseGuards(RateLimitGuard)
class EverywhereController {
  @Get()
  @UseGuards(RateLimitGuard, HeaderGuard)
  @RateLimit({ limit: 5, windowMs: MINUTE })
  get(): { ok: true } {
    return { ok: true };
  }
}

/** A subclass on the route, listed after the base guard @RateLimit applies: the subclass counts. */
@Controller('subclass')
class SubclassController {
  @Get()
  @UseGuards(HeaderGuard)
  @RateLimit({ limit: 1, windowMs: MINUTE })
  get(): { ok: true } {
    return { ok: true };
  }
}

@Injectable()
class Noop {}

type Platform = 'express' | 'fastify';

async function httpApp(
  t: TopologyContext,
  platform: Platform,
  rateLimit: RateLimitModuleOptions,
  controllers: Array<new () => object>,
  global: boolean | typeof RateLimitGuard = false,
): Promise<INestApplication> {
  @Module({
    imports: [RedisLuaModule.forRoot({ ...t.connection(), keyPrefix: t.prefix(), rateLimit: { ...DECIDED, ...rateLimit } })],
    controllers,
    providers: global ? [{ provide: APP_GUARD, useClass: global === true ? RateLimitGuard : global }] : [Noop],
  })
  class AppModule {}
  const moduleRef = await Test.createTestingModule({ imports: [AppModule] }).compile();
  const app =
    platform === 'fastify'
      ? moduleRef.createNestApplication(new FastifyAdapter(), { logger: false })
      : moduleRef.createNestApplication({ logger: false });
  opened.push(app);
  await app.init();
  if (platform === 'fastify') await (app.getHttpAdapter().getInstance() as { ready(): Promise<unknown> }).ready();
  return app;
}

const opened: INestApplication[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((app) => app.close()));
});

describeTopologies('@RateLimit over HTTP', (t) => {
  describe.each<Platform>(['express', 'fastify'])('%s', (platform) => {
    it('@RateLimit alone limits its route: 5 requests at limit 3 answer 200, 200, 200, 429, 429', async () => {
      const server = (await httpApp(t, platform, {}, [AloneController])).getHttpServer();
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) statuses.push((await request(server).get('/alone')).status);
      expect(statuses).toEqual([200, 200, 200, 429, 429]);
    });

    it('a request counts once with the guard as APP_GUARD (a subclass), on the class, on the handler and from @RateLimit: 6 at limit 5 pass 5', async () => {
      const server = (await httpApp(t, platform, {}, [EverywhereController], HeaderGuard)).getHttpServer();
      const statuses: number[] = [];
      for (let i = 0; i < 6; i++) statuses.push((await request(server).get('/everywhere').set('x-user', 'ann')).status);
      expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
      // The global subclass counted (by header): another user has a bucket of its own.
      await request(server).get('/everywhere').set('x-user', 'bob').expect(200);
    });

    it('a subclass registered on the route counts, also when the base guard @RateLimit applies runs first', async () => {
      const server = (await httpApp(t, platform, {}, [SubclassController])).getHttpServer();
      await request(server).get('/subclass').set('x-user', 'ann').expect(200);
      await request(server).get('/subclass').set('x-user', 'ann').expect(429);
      // Counted by the subclass's tracker (the header), not by the base guard's (the one client IP).
      await request(server).get('/subclass').set('x-user', 'bob').expect(200);
    });

    it('controller defaults, headers on 200 and 429, Retry-After, JSON body; the bucket is the route pattern', async () => {
      const app = await httpApp(t, platform, {}, [ItemsController]);
      const server = app.getHttpServer();
      const first = await request(server).get('/items/1').expect(200);
      expect(first.headers['ratelimit-policy']).toBe('"default";q=3;w=60');
      expect(first.headers['ratelimit']).toBe('"default";r=2;t=60');
      expect(first.headers['x-ratelimit-limit']).toBeUndefined();
      // Other URLs of the same route pattern share its bucket.
      await request(server).get('/items/2').expect(200);
      await request(server).get('/items/3').expect(200);
      const denied = await request(server).get('/items/4').expect(429);
      expect(denied.headers['retry-after']).toBe('60');
      expect(denied.headers['ratelimit']).toBe('"default";r=0;t=60');
      expect(denied.headers['ratelimit-policy']).toBe('"default";q=3;w=60');
      expect(denied.body).toMatchObject({
        statusCode: 429,
        message: 'Rate limit "default" exceeded: 3 per 60000 ms',
        limit: { name: 'default', limit: 3, windowMs: MINUTE, algorithm: 'sliding-log' },
      });
      expect(denied.body.retryAfterMs).toBeGreaterThan(59_000);
      // A handler's own @RateLimit wins over the controller's, with its own bucket and name.
      const list = await request(server).get('/items').expect(200);
      expect(list.headers['ratelimit-policy']).toBe('"list";q=2;w=60');
      expect(list.headers['ratelimit']).toBe('"list";r=1;t=60');
    });

    it('skip decorator, custom key and tiered limits', async () => {
      const app = await httpApp(t, platform, {}, [ItemsController]);
      const server = app.getHttpServer();
      for (let i = 0; i < 6; i++) {
        const res = await request(server).get('/items/free/now').expect(200);
        expect(res.headers['ratelimit']).toBeUndefined();
      }
      await request(server).get('/items/mine/all').set('x-user', 'ann').expect(200);
      await request(server).get('/items/mine/all').set('x-user', 'ann').expect(429);
      await request(server).get('/items/mine/all').set('x-user', 'bob').expect(200);
      for (let i = 0; i < 3; i++) await request(server).get('/items/tiered/all').set('x-user', 'pro').expect(200);
      await request(server).get('/items/tiered/all').set('x-user', 'pro').expect(429);
      await request(server).get('/items/tiered/all').set('x-user', 'free').expect(200);
      await request(server).get('/items/tiered/all').set('x-user', 'free').expect(429);
    });

    it('global guard with forRoot defaults, legacy headers, and a guard registered twice counting once', async () => {
      const app = await httpApp(
        t,
        platform,
        { limit: 2, windowMs: MINUTE, algorithm: 'fixed-window', headers: { legacy: true } },
        [OpenController, TwiceController],
        true,
      );
      const server = app.getHttpServer();
      const ok = await request(server).get('/open').expect(200);
      expect(ok.headers['x-ratelimit-limit']).toBe('2');
      expect(ok.headers['x-ratelimit-remaining']).toBe('1');
      expect(ok.headers['x-ratelimit-reset']).toBe('60');
      expect(ok.headers['ratelimit-policy']).toBe('"default";q=2;w=60');
      await request(server).get('/open').expect(200);
      const denied = await request(server).get('/open').expect(429);
      expect(denied.headers['x-ratelimit-remaining']).toBe('0');
      expect(Number(denied.headers['retry-after'])).toBeGreaterThanOrEqual(59);
      await request(server).get('/open/skipped').expect(200);
      const own = await request(server).get('/open/own').expect(200);
      expect(own.headers['ratelimit']).toBe('"own";r=4;t=60');
      await request(server).get('/twice').expect(200);
      await request(server).get('/twice').expect(200);
      await request(server).get('/twice').expect(429);
    });
  });

  it('outside HTTP: limits with a key function, answers a WsException in a gateway, and says what is missing without an address', async () => {
    const app = await httpApp(t, 'express', {}, [ItemsController]);
    const guard = new RateLimitGuard(app.get(RateLimiterService), app.get(Reflector));
    class Gateway {
      @RateLimit({ limit: 1, windowMs: MINUTE, key: (ctx) => ctx.switchToWs().getClient<{ id: string }>().id })
      onMessage(): void {}

      @RateLimit({ limit: 1, windowMs: MINUTE })
      noKey(): void {}
    }
    const context = (handler: keyof Gateway, clientId: string): ExecutionContext =>
      ({
        getType: () => 'ws',
        getClass: () => Gateway,
        getHandler: () => Gateway.prototype[handler],
        getArgs: () => [{ id: clientId }, {}],
        getArgByIndex: (i: number) => [{ id: clientId }, {}][i],
        switchToWs: () => ({ getClient: () => ({ id: clientId }), getData: () => ({}), getPattern: () => 'msg' }),
        switchToHttp: () => {
          throw new Error('not http');
        },
        switchToRpc: () => {
          throw new Error('not rpc');
        },
      }) as unknown as ExecutionContext;
    await expect(guard.canActivate(context('onMessage', 'socket-1'))).resolves.toBe(true);
    const denied = await Promise.resolve(guard.canActivate(context('onMessage', 'socket-1'))).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(denied).toBeInstanceOf(WsException);
    expect((denied as WsException).getError()).toMatchObject({ status: 'error', statusCode: 429, retryAfterMs: expect.any(Number) });
    await expect(guard.canActivate(context('onMessage', 'socket-2'))).resolves.toBe(true);
    // This fake client has neither a handshake address nor a socket.
    await expect(guard.canActivate(context('noKey', 'socket-1'))).rejects.toThrow(
      /@RateLimit on Gateway\.noKey: the request has no IP address \(ip undefined\); give a "key" function/,
    );
  });
});
